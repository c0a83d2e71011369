"""Single-shot face detector on the shared encoder: one pass gives boxes, scores and the 5 points.

The YuNet / RetinaFace / SCRFD idea with the project's parts: an ImageNet EfficientNet-Lite encoder, the
FPN-PAN neck and the core pose head (:class:`polyhead.heads.PoseHead`: ultralytics' anchor-free Pose head
and its loss) on strides 8, 16 and 32, one class (``face``) and 5 keypoints (left eye, right eye, nose, left
and right mouth corner, as the cascade's). It has the cascade's interface (``detect(images)`` -> per image
``boxes`` (n, 4) xyxy, ``scores`` (n,), ``points`` (n, 5, 2) in original pixels), so the app, the crowd
val, alignment and the attributes use either. See ``docs/face.md`` for the measured comparison.

>>> det = SingleShotDetector(build_single_shot_model(pretrained=False).eval())
>>> out = det.detect([np.zeros((120, 160, 3), np.uint8)])[0]
>>> out["boxes"].shape[1], out["points"].shape[1:]
(4, (5, 2))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from ultralytics.utils.nms import non_max_suppression

from polyhead.model import MultiTaskModel, build_model
from polyhead.preprocess import Letterbox, to_tensor

TASK = "faces"
NUM_POINTS = 5
#: horizontal flip: left and right eye swap, nose stays, mouth corners swap
FLIP_ORDER = (1, 0, 2, 4, 3)
STRIDE = 32


def single_shot_config(encoder: str = "efficientnet_lite0", neck_channels: int = 48) -> dict:
    """The model config: encoder -> FPN-PAN neck (strides 8-32) -> a one-class pose head with 5 points.

    The visibility term is off (``kobj_gain`` 0): box-only face sets (the VOC photos) carry no points, and
    the points of a found face are always reported.
    """
    return {
        "encoder": encoder,
        "neck_channels": neck_channels,
        "strides": [8, 16, 32],
        "heads": {TASK: {"type": "pose", "num_classes": 1, "num_points": NUM_POINTS, "kobj_gain": 0.0, "reg_max": 8}},
    }


def build_single_shot_model(encoder: str = "efficientnet_lite0", pretrained: bool = True) -> MultiTaskModel:
    return build_model(single_shot_config(encoder), pretrained=pretrained)


@dataclass
class SingleShotConfig:
    """Inference settings (stored in the card under ``single_shot``)."""

    long_side: int = 640  # images are scaled (up or down) so their long side is this, then padded to /32
    conf: float = 0.4  # face score threshold
    iou: float = 0.4  # NMS IoU
    min_size: float = 20.0  # faces shorter than this many original pixels are dropped (the cascade's meaning)
    max_det: int = 1000


@dataclass
class SingleShotTimes:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, t0: float) -> float:
        t = time.perf_counter()
        self.seconds[key] = self.seconds.get(key, 0.0) + t - t0
        return t


def input_size(hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Network input (h, w) for an image: long side ``long_side``, the other scaled and rounded up to /32.

    >>> input_size((280, 400), 640)
    (448, 640)
    """
    h, w = hw
    k = long_side / max(h, w)
    return tuple(int(np.ceil(max(1.0, v * k) / STRIDE) * STRIDE) for v in (h, w))


class SingleShotDetector:
    """``detect(images)`` with the cascade's output format; images of one input size run as one batch."""

    def __init__(self, model: torch.nn.Module, config: SingleShotConfig | None = None, norm=None, batch: int = 8):
        self.model = model.eval() if hasattr(model, "eval") else model
        self.config = config or SingleShotConfig()
        self.norm = norm or getattr(model, "normalisation", None) or ((0.5,) * 3, (0.5,) * 3)
        self.batch = batch
        self.times = SingleShotTimes()

    @torch.inference_mode()
    def detect(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        cfg = self.config
        out: list[dict[str, np.ndarray] | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(input_size(im.shape[:2], cfg.long_side), []).append(i)
        for size, idx in groups.items():
            for start in range(0, len(idx), self.batch):
                chunk = idx[start : start + self.batch]
                t0 = time.perf_counter()
                boxes = [Letterbox.fit(images[i].shape[:2], size) for i in chunk]
                x = torch.stack(
                    [to_tensor(lb.apply(images[i]), *self.norm) for i, lb in zip(chunk, boxes, strict=True)]
                )
                t0 = self.times.add("prepare", t0)
                pred = self.model(x)
                pred = pred[TASK] if isinstance(pred, dict) else torch.as_tensor(pred)
                t0 = self.times.add("network", t0)
                kept = non_max_suppression(pred.float(), cfg.conf, cfg.iou, nc=1, max_det=cfg.max_det)
                for i, lb, det in zip(chunk, boxes, kept, strict=True):
                    out[i] = self._to_original(det.numpy(), lb)
                self.times.add("nms", t0)
        return out  # type: ignore[return-value]

    def _to_original(self, det: np.ndarray, lb: Letterbox) -> dict[str, np.ndarray]:
        boxes = lb.to_original_boxes(det[:, :4]).astype(np.float32)
        points = lb.to_original_points(det[:, 6:].reshape(-1, NUM_POINTS, 3)[..., :2]).astype(np.float32)
        keep = (boxes[:, 3] - boxes[:, 1]) >= self.config.min_size
        return {"boxes": boxes[keep], "scores": det[keep, 4].astype(np.float32), "points": points[keep]}
