"""P-Net / R-Net / O-Net (MTCNN-style cascade) and their joint losses with online hard-sample mining.

Every net returns ``{"cls": logits (N, 2, ...), "box": (N, 4, ...), "lmk": (N, 10, ...)}``: face /
non-face logits, box offsets relative to the input window (x1, y1, x2, y2 as a fraction of its side)
and 5 landmarks (x1..x5, y1..y5 as fractions of the window). P-Net is fully convolutional (12x12
windows, stride 2); R-Net and O-Net take 24x24 and 48x48 crops.

>>> out = PNet()(torch.zeros(1, 3, 12, 12))
>>> [tuple(v.shape) for v in out.values()]
[(1, 2, 1, 1), (1, 4, 1, 1), (1, 10, 1, 1)]
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

STAGES = ("pnet", "rnet", "onet")
INPUT_SIZES = {"pnet": 12, "rnet": 24, "onet": 48}
#: loss weights (classification, box, landmark) per stage, as in the MTCNN paper
LOSS_WEIGHTS = {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}
HARD_RATIO = 0.7  # share of the classification losses kept per batch (online hard-sample mining)


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


class PNet(nn.Module):
    """Proposal net: fully convolutional over any image, one 12x12 window per output cell (stride 2)."""

    stride = 2
    cell = 12

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 10, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_conv(10, 16, 3), *_conv(16, 32, 3)
        )
        self.cls = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)
        self.lmk = nn.Conv2d(32, 10, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {"cls": self.cls(f), "box": self.box(f), "lmk": self.lmk(f)}


class RNet(nn.Module):
    """Refine net over 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 28, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(28, 48, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(48, 64, 2),
            nn.Flatten(),
            nn.Linear(64 * 3 * 3, 128),
            nn.PReLU(128),
        )
        self.cls = nn.Linear(128, 2)
        self.box = nn.Linear(128, 4)
        self.lmk = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {"cls": self.cls(f), "box": self.box(f), "lmk": self.lmk(f)}


class ONet(nn.Module):
    """Output net over 48x48 crops: final score, box and the 5 landmarks."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 32, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(32, 64, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(64, 64, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv(64, 128, 2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(128 * 3 * 3, 256),
            nn.PReLU(256),
        )
        self.cls = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.lmk = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {"cls": self.cls(f), "box": self.box(f), "lmk": self.lmk(f)}


NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def build_net(stage: str) -> nn.Module:
    """A fresh (random) net of a stage: ``pnet``, ``rnet`` or ``onet``."""
    if stage not in NETS:
        raise ValueError(f"unknown stage '{stage}'; one of {', '.join(STAGES)}")
    return NETS[stage]()


class InferenceNet(nn.Module):
    """An equivalent copy of a cascade net, rearranged for fast inference.

    - A PReLU whose slopes are all >= 0 that feeds a max-pool moves after the pool: a non-decreasing
      function commutes with max, so the output is the same, and the PReLU runs on a map 4x smaller.
    - The three heads (face, box, landmarks) run as one layer and are split afterwards.

    >>> net = PNet().eval()
    >>> x = torch.randn(1, 3, 30, 40)
    >>> all(torch.allclose(a, b, atol=1e-5) for a, b in zip(net(x).values(), InferenceNet(net)(x).values()))
    True
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        layers = [copy.deepcopy(m) for m in net.body if not isinstance(m, nn.Dropout)]
        i = 0
        while i < len(layers) - 1:
            a, b = layers[i], layers[i + 1]
            if isinstance(a, nn.PReLU) and isinstance(b, nn.MaxPool2d) and bool((a.weight >= 0).all()):
                layers[i], layers[i + 1] = b, a
                i += 2
            else:
                i += 1
        self.body = nn.Sequential(*layers)
        heads = [net.cls, net.box, net.lmk]
        self.sizes = [h.weight.shape[0] for h in heads]
        if isinstance(net.cls, nn.Conv2d):
            self.head = nn.Conv2d(heads[0].in_channels, sum(self.sizes), 1)
        else:
            self.head = nn.Linear(heads[0].in_features, sum(self.sizes))
        with torch.no_grad():
            self.head.weight.copy_(torch.cat([h.weight for h in heads]))
            self.head.bias.copy_(torch.cat([h.bias for h in heads]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, box, lmk = self.head(self.body(x)).split(self.sizes, 1)
        return {"cls": cls, "box": box, "lmk": lmk}


def hard_mining(losses: torch.Tensor, ratio: float = HARD_RATIO) -> torch.Tensor:
    """Mean of the hardest ``ratio`` share of per-sample losses (at least one).

    >>> float(hard_mining(torch.tensor([1.0, 2.0, 3.0, 10.0]), 0.5))
    6.5
    """
    if losses.numel() == 0:
        return losses.sum()
    k = max(1, int(round(losses.numel() * ratio)))
    return torch.topk(losses, k, sorted=False).values.mean()


def cascade_loss(
    out: dict[str, torch.Tensor],
    label: torch.Tensor,
    box: torch.Tensor,
    lmk: torch.Tensor,
    stage: str = "pnet",
    ratio: float = HARD_RATIO,
) -> dict[str, torch.Tensor]:
    """Joint MTCNN loss of one batch.

    ``label``: 1 face, 0 non-face, -1 part face (no classification), -2 landmark-only sample.
    Box targets count for faces and part faces, landmark targets wherever ``lmk`` is finite (NaN rows
    carry no landmarks). Classification is cross-entropy over faces + non-faces with online hard-sample
    mining (the hardest ``ratio`` per batch); box and landmarks are L2 (MSE). Returns the weighted
    ``total`` and the parts.
    """
    cls, pbox, plmk = (out[k].flatten(1) for k in ("cls", "box", "lmk"))
    label = label.long()
    wc, wb, wl = LOSS_WEIGHTS[stage]
    cmask = label >= 0
    ce = F.cross_entropy(cls[cmask], label[cmask], reduction="none") if bool(cmask.any()) else cls.sum() * 0
    l_cls = hard_mining(ce, ratio) if bool(cmask.any()) else ce
    bmask = (label == 1) | (label == -1)
    l_box = ((pbox[bmask] - box[bmask]) ** 2).sum(1).mean() if bool(bmask.any()) else pbox.sum() * 0
    lmask = torch.isfinite(lmk).all(1)
    l_lmk = ((plmk[lmask] - lmk[lmask]) ** 2).sum(1).mean() if bool(lmask.any()) else plmk.sum() * 0
    total = wc * l_cls + wb * l_box + wl * l_lmk
    return {"total": total, "cls": l_cls.detach(), "box": l_box.detach(), "lmk": l_lmk.detach()}
