"""The floor-plan network: shared encoder + FPN neck, a room-boundary decoder and a room-type decoder
that is steered by the boundary decoder through room-boundary-guided attention.

Both decoders live in one registered head (``type: floorplan``) so that :func:`polyhead.model.build_model`
and :func:`polyhead.weights.load_model` rebuild the whole network from the model card. The head returns one
tensor: ``B`` boundary logits followed by ``R`` room-type logits, at input resolution.

>>> model = build_floorplan_model("lcnet_100").eval()
>>> out = model(torch.zeros(1, 3, 128, 128))["floorplan"]
>>> out.shape
torch.Size([1, 10, 128, 128])
>>> split_logits(out)[0].shape, split_logits(out)[1].shape
(torch.Size([1, 3, 128, 128]), torch.Size([1, 7, 128, 128]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.encoders import DEFAULT_ENCODER
from polyhead.heads import register_head
from polyhead.heads.base import Head, zero_loss
from polyhead.layers import ConvBNAct, DWSeparable
from polyhead.model import MultiTaskModel, build_model

TASK = "floorplan"
BOUNDARY_CLASSES = ["background", "wall", "door_window"]
ROOM_CLASSES = ["background", "closet", "bathroom", "living_kitchen_dining", "bedroom", "hall", "balcony"]
#: R3D room colours (RGB), index = room class id; masks are drawn in them
ROOM_RGB = [
    (0, 0, 0),
    (192, 192, 224),
    (192, 255, 255),
    (224, 255, 192),
    (255, 224, 128),
    (255, 160, 96),
    (255, 224, 224),
]
INPUT_SIZE = (384, 384)  # (h, w); any multiple of 32 works
IGNORE_INDEX = 255
LEVELS = (32, 16, 8, 4)


class BoundaryGuidedAttention(nn.Module):
    """Room-boundary-guided attention at one decoder level.

    The boundary features are turned into per-channel spatial attention maps (sigmoid, 0..1) that
    reweight the room features: ``room * (1 + a)``, so wall/door-aware locations are emphasised while
    the room path keeps an identity route for gradients. A second, direction-aware map from the boundary
    features' horizontal and vertical context (pooled along rows and columns) gates the same features,
    so that a pixel "sees" the walls that enclose it along both axes.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.local = nn.Sequential(ConvBNAct(channels, channels, 3), nn.Conv2d(channels, channels, 1))
        self.context = nn.Conv2d(2 * channels, channels, 1)
        self.fuse = DWSeparable(channels, channels)

    def forward(self, room: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        local = torch.sigmoid(self.local(boundary))
        h, w = boundary.shape[-2:]
        rows = boundary.mean(3, keepdim=True).expand(-1, -1, h, w)  # context along each row
        cols = boundary.mean(2, keepdim=True).expand(-1, -1, h, w)  # and each column
        ctx = torch.sigmoid(self.context(torch.cat([rows, cols], 1)))
        return self.fuse(room * (1 + local * ctx))


class FloorplanHead(Head):
    """Two top-down decoders over neck levels 32 -> 16 -> 8 -> 4.

    Args:
        in_channels: neck width.
        boundary_classes / room_classes: output classes of each decoder (3 and 7 for R3D).
        mid_channels: decoder width.
        boundary_weights / room_weights: per-class cross-entropy weights (from the training set's pixel
            frequencies); ``None`` derives them from each batch's pixel counts.
    """

    target_kind = "dense"

    def __init__(
        self,
        in_channels: int,
        boundary_classes: int = len(BOUNDARY_CLASSES),
        room_classes: int = len(ROOM_CLASSES),
        mid_channels: int = 48,
        boundary_weights: Sequence[float] | None = None,
        room_weights: Sequence[float] | None = None,
    ):
        super().__init__()
        self.boundary_classes, self.room_classes = boundary_classes, room_classes
        c = mid_channels
        self.b_lateral = nn.ModuleDict({str(s): ConvBNAct(in_channels, c, 1) for s in LEVELS})
        self.r_lateral = nn.ModuleDict({str(s): ConvBNAct(in_channels, c, 1) for s in LEVELS})
        self.b_refine = nn.ModuleDict({str(s): DWSeparable(c, c) for s in LEVELS})
        self.attention = nn.ModuleDict({str(s): BoundaryGuidedAttention(c) for s in LEVELS})
        self.b_out = nn.Sequential(ConvBNAct(c, c, 3), nn.Conv2d(c, boundary_classes, 1))
        self.r_out = nn.Sequential(ConvBNAct(c, c, 3), nn.Conv2d(c, room_classes, 1))
        for name, w, n in (
            ("boundary_weights", boundary_weights, boundary_classes),
            ("room_weights", room_weights, room_classes),
        ):
            if w is not None:
                if len(w) != n:
                    raise ValueError(f"{name} has {len(w)} values for {n} classes")
                self.register_buffer(name, torch.tensor(list(w), dtype=torch.float32))
            else:
                setattr(self, name, None)

    def decode(self, feats: dict[int, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stride-4 boundary and room logits."""
        b = r = None
        for s in LEVELS:
            key = str(s)
            fb, fr = self.b_lateral[key](feats[s]), self.r_lateral[key](feats[s])
            if b is not None:
                fb = fb + F.interpolate(b, size=fb.shape[-2:], mode="bilinear", align_corners=False)
                fr = fr + F.interpolate(r, size=fr.shape[-2:], mode="bilinear", align_corners=False)
            b = self.b_refine[key](fb)
            r = self.attention[key](fr, b)
        return self.b_out(b), self.r_out(r)

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        logits = torch.cat(self.decode(feats), 1)
        return F.interpolate(logits, size=image_size, mode="bilinear", align_corners=False)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Class-balanced CE within each task, then the two tasks balanced against each other.

        ``target`` is ``(B, 2, H, W)``: boundary ids, room ids (255 = ignore). Across tasks each loss is
        weighted by the other's share of the total (detached), so neither task dominates the gradient.
        """
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present], target[present].long()
        lb = balanced_ce(pred[:, : self.boundary_classes], target[:, 0], self.boundary_weights)
        lr = balanced_ce(pred[:, self.boundary_classes :], target[:, 1], self.room_weights)
        return task_balanced(lb, lr)


def task_balanced(lb: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """``wb * lb + wr * lr`` with ``wb = lr / (lb + lr)`` and ``wr = lb / (lb + lr)`` (weights detached)."""
    total = (lb + lr).detach().clamp_min(1e-8)
    return (lr.detach() / total) * lb + (lb.detach() / total) * lr


def frequency_weights(counts: torch.Tensor | Sequence[float], lo: float = 0.1, hi: float = 10.0) -> torch.Tensor:
    """Median-frequency class weights ``median(f) / f_c`` from pixel counts, clipped to ``[lo, hi]``;
    classes without pixels get weight ``hi`` (they cannot contribute anyway).

    >>> frequency_weights([800, 150, 50]).tolist()
    [0.1875, 1.0, 3.0]
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    freq = counts / counts.sum().clamp_min(1)
    seen = freq > 0
    if not bool(seen.any()):
        return torch.ones_like(freq, dtype=torch.float32)
    med = freq[seen].median()
    w = torch.full_like(freq, hi)
    w[seen] = (med / freq[seen]).clamp(lo, hi)
    return w.float()


def balanced_ce(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy with the given class weights, or weights from this batch's pixel frequencies."""
    if weights is None:
        valid = target[target != IGNORE_INDEX]
        weights = frequency_weights(torch.bincount(valid.flatten(), minlength=logits.shape[1])[: logits.shape[1]])
        weights = weights.to(logits.device)
    return F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE_INDEX)


register_head(TASK, FloorplanHead)


def floorplan_config(
    encoder: str = DEFAULT_ENCODER,
    neck_channels: int = 64,
    mid_channels: int = 48,
    boundary_weights: Sequence[float] | None = None,
    room_weights: Sequence[float] | None = None,
) -> dict:
    """Architecture config stored in the model card."""
    head: dict = {"type": TASK, "boundary_classes": len(BOUNDARY_CLASSES), "room_classes": len(ROOM_CLASSES)}
    head["mid_channels"] = mid_channels
    if boundary_weights is not None:
        head["boundary_weights"] = [round(float(v), 4) for v in boundary_weights]
    if room_weights is not None:
        head["room_weights"] = [round(float(v), 4) for v in room_weights]
    return {"encoder": encoder, "neck_channels": neck_channels, "heads": {TASK: head}}


def build_floorplan_model(encoder: str = DEFAULT_ENCODER, **kwargs) -> MultiTaskModel:
    """The floor-plan model (random init; nothing is downloaded)."""
    return build_model(floorplan_config(encoder, **kwargs))


def split_logits(out: torch.Tensor, boundary_classes: int = len(BOUNDARY_CLASSES)) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's output -> ``(boundary_logits, room_logits)``."""
    return out[:, :boundary_classes], out[:, boundary_classes:]
