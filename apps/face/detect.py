"""Cascade inference: image pyramid -> P-Net (batched per level across images) -> R-Net -> O-Net.

All candidate crops of all images go through R-Net in one batch and O-Net in one batch; crops are
cut with ``torchvision.ops.roi_align`` (zero = mid-grey outside the image) and suppressed with
``torchvision.ops.batched_nms`` (one group per image). Results are in original pixels.

>>> det = FaceDetector(nets)                                   # doctest: +SKIP
>>> faces = det.detect([rgb1, rgb2])                           # doctest: +SKIP
>>> faces[0]["boxes"].shape, faces[0]["points"].shape          # doctest: +SKIP
((3, 4), (3, 5, 2))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, roi_align

MEAN, SCALE = 127.5, 1 / 128.0


def normalise(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 (h, w, 3) -> float (3, h, w) in about [-1, 1] (0 = mid-grey, also the crop padding)."""
    return (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() - MEAN) * SCALE


def pyramid_scales(h: int, w: int, min_size: float = 20.0, factor: float = 0.709, cell: int = 12) -> list[float]:
    """Scales at which P-Net's 12-pixel window sees faces from ``min_size`` pixels up to the image size.

    >>> [round(s, 3) for s in pyramid_scales(48, 64, min_size=24, factor=0.5)]
    [0.5, 0.25]
    """
    if not 0 < factor < 1:
        raise ValueError(f"scale factor must be in (0, 1), got {factor}")
    if min_size < cell / 2:
        raise ValueError(f"min face size must be at least {cell / 2} px, got {min_size}")
    scales, s = [], cell / float(min_size)
    while min(h, w) * s >= cell:
        scales.append(s)
        s *= factor
    return scales


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes (n, 4) made square around their centres (side = the longer side)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


def apply_offsets(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Box regression: each edge moves by its offset times the box width / height."""
    w, h = (boxes[:, 2] - boxes[:, 0])[:, None], (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + reg * torch.cat([w, h, w, h], 1)


def crop_windows(images: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """Crops (n, 3, size, size) of ``rois`` (n, 5: image index, x1, y1, x2, y2) from a padded batch."""
    if len(rois) == 0:
        return images.new_zeros((0, 3, size, size))
    return roi_align(images, rois.float(), (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def nms_min(boxes: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices kept by greedy suppression on intersection / smaller area (boxes sorted by score already).

    >>> nms_min(torch.tensor([[0, 0, 10, 10.], [2, 2, 6, 6.], [20, 20, 30, 30.]]), torch.zeros(3).long(), 0.7)
    tensor([0, 2])
    """
    n = len(boxes)
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    over = inter / torch.minimum(area[:, None], area[None, :]).clamp(min=1e-6)
    same = groups[:, None] == groups[None, :]
    alive = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        if alive[i]:
            drop = (over[i] > threshold) & same[i]
            drop[: i + 1] = False
            alive &= ~drop
    return torch.nonzero(alive).flatten()


def stack_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    """(3, h_i, w_i) tensors -> (n, 3, max h, max w), zero-padded right and bottom."""
    hm, wm = max(t.shape[1] for t in tensors), max(t.shape[2] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), 3, hm, wm))
    for i, t in enumerate(tensors):
        out[i, :, : t.shape[1], : t.shape[2]] = t
    return out


@dataclass
class DetectorConfig:
    """Pyramid and per-stage thresholds (``thresholds`` are face probabilities for P/R/O-Net)."""

    min_size: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9)
    nms: tuple[float, float, float] = (0.5, 0.7, 0.4)
    nms_min: float = 0.7  # last stage: intersection over the smaller box
    max_side: int = 2000  # larger images are searched at reduced size (results still in original pixels)
    max_proposals: int = 1500  # per image after P-Net


@dataclass
class StageTimes:
    """Seconds spent per stage over calls (``polyhead bench face`` reports them)."""

    seconds: dict[str, float] = field(default_factory=lambda: {"pyramid+pnet": 0.0, "rnet": 0.0, "onet": 0.0})

    def add(self, key: str, t0: float) -> float:
        now = time.perf_counter()
        self.seconds[key] += now - t0
        return now


class FaceDetector:
    """The three nets plus the search settings; :meth:`detect` takes any number of RGB images."""

    def __init__(self, nets: dict[str, torch.nn.Module], config: DetectorConfig | None = None):
        # channels-last convolutions run about 2x faster on CPU here (measured for P-Net and R-Net)
        self.pnet, self.rnet, self.onet = (
            nets[k].eval().to(memory_format=torch.channels_last) for k in ("pnet", "rnet", "onet")
        )
        self.config = config or DetectorConfig()
        self.times = StageTimes()

    @torch.inference_mode()
    def detect(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """RGB uint8 images -> per image ``{"boxes" (n, 4) xyxy, "scores" (n,), "points" (n, 5, 2)}``."""
        cfg = self.config
        if not images:
            return []
        factors, tensors = [], []
        for rgb in images:
            f = min(1.0, cfg.max_side / max(rgb.shape[:2]))
            if f < 1.0:
                import cv2

                rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
            factors.append(f)
            tensors.append(normalise(rgb))
        t0 = time.perf_counter()
        rois = self._stage1(tensors)
        t0 = self.times.add("pyramid+pnet", t0)
        batch = stack_padded(tensors)
        rois = self._refine(self.rnet, batch, rois, 24, cfg.thresholds[1], cfg.nms[1])[0]
        t0 = self.times.add("rnet", t0)
        rois, scores, points = self._refine(self.onet, batch, rois, 48, cfg.thresholds[2], cfg.nms[2], final=True)
        self.times.add("onet", t0)
        out = []
        for i, f in enumerate(factors):
            keep = rois[:, 0] == i
            out.append(
                {
                    "boxes": (rois[keep, 1:] / f).numpy().astype(np.float32),
                    "scores": scores[keep].numpy().astype(np.float32),
                    "points": (points[keep] / f).numpy().astype(np.float32),
                }
            )
        return out

    def _stage1(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """P-Net over every pyramid level of every image; one padded batch per level."""
        cfg = self.config
        scales = [pyramid_scales(t.shape[1], t.shape[2], cfg.min_size, cfg.factor) for t in tensors]
        found: list[torch.Tensor] = []
        for level in range(max((len(s) for s in scales), default=0)):
            members = [i for i, s in enumerate(scales) if level < len(s)]
            sizes = [
                (
                    max(12, round(tensors[i].shape[1] * scales[i][level])),
                    max(12, round(tensors[i].shape[2] * scales[i][level])),
                )
                for i in members
            ]
            resized = [
                F.interpolate(tensors[i][None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0]
                for i, hw in zip(members, sizes, strict=True)
            ]
            out = self.pnet(stack_padded(resized).contiguous(memory_format=torch.channels_last))
            prob = out["cls"].softmax(1)[:, 1]
            for j, i in enumerate(members):
                hs, ws = sizes[j]
                s = scales[i][level]
                p = prob[j]
                ys, xs = torch.nonzero(p > cfg.thresholds[0], as_tuple=True)
                # windows whose centre lies in the padding belong to no image
                ok = (ys * 2 + 6 < hs) & (xs * 2 + 6 < ws)
                ys, xs = ys[ok], xs[ok]
                if len(ys) == 0:
                    continue
                x1, y1 = xs.float() * 2 / s, ys.float() * 2 / s
                boxes = torch.stack([x1, y1, x1 + 12 / s, y1 + 12 / s], 1)
                reg = out["box"][j, :, ys, xs].T
                score = p[ys, xs]
                keep = batched_nms(boxes, score, torch.zeros_like(score, dtype=torch.long), cfg.nms[0])
                found.append(
                    torch.cat([torch.full((len(keep), 1), float(i)), boxes[keep], reg[keep], score[keep, None]], 1)
                )
        if not found:
            return torch.zeros((0, 5))
        cand = torch.cat(found)
        keep = batched_nms(cand[:, 1:5], cand[:, 9], cand[:, 0].long(), 0.7)
        cand = cand[keep]
        kept = []
        for i in range(len(tensors)):  # cap proposals per image (highest scores first; keep is score-sorted)
            kept.append(torch.nonzero(cand[:, 0] == i).flatten()[: cfg.max_proposals])
        cand = cand[torch.cat(kept)]
        boxes = square(apply_offsets(cand[:, 1:5], cand[:, 5:9]))
        return torch.cat([cand[:, :1], boxes], 1)

    def _refine(self, net, batch, rois, size, threshold, iou, final=False):
        """R-Net / O-Net on all candidate crops of all images in one batch."""
        if len(rois) == 0:
            return rois, torch.zeros(0), torch.zeros((0, 5, 2))
        out = net(crop_windows(batch, rois, size).contiguous(memory_format=torch.channels_last))
        score = out["cls"].softmax(1)[:, 1]
        keep = score > threshold
        rois, score, reg, lmk = rois[keep], score[keep], out["box"][keep], out["lmk"][keep]
        boxes = rois[:, 1:]
        w, h = (boxes[:, 2] - boxes[:, 0])[:, None], (boxes[:, 3] - boxes[:, 1])[:, None]
        points = torch.stack([boxes[:, :1] + lmk[:, :5] * w, boxes[:, 1:2] + lmk[:, 5:] * h], 2)
        boxes = apply_offsets(boxes, reg)
        keep = batched_nms(boxes, score, rois[:, 0].long(), iou)
        if final:  # also drop boxes mostly inside a better one (MTCNN's "min" overlap at the last stage)
            keep = keep[nms_min(boxes[keep], rois[keep, 0].long(), self.config.nms_min)]
        else:
            boxes = square(boxes)
        return torch.cat([rois[keep, :1], boxes[keep]], 1), score[keep], points[keep]
