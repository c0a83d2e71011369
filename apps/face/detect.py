"""Cascade inference: image pyramid -> P-Net (batched per level across images) -> R-Net -> O-Net.

A batch of images is split into one group per core (:func:`polyhead.parallel.map_on_cores`); each
group runs the whole cascade batched: P-Net once per pyramid level over the group's images (small
levels stacked, large ones in cache-sized chunks), then R-Net and O-Net over all candidate crops of
the group in chunks. Crops are cut with ``torchvision.ops.roi_align`` (zero = mid-grey outside the
image) and suppressed with ``torchvision.ops.batched_nms`` (one group per image). Results are in
original pixels.

>>> det = FaceDetector(nets)                                   # doctest: +SKIP
>>> faces = det.detect([rgb1, rgb2])                           # doctest: +SKIP
>>> faces[0]["boxes"].shape, faces[0]["points"].shape          # doctest: +SKIP
((3, 4), (3, 5, 2))
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, roi_align

from polyhead.parallel import map_on_cores, split_evenly

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


#: the 5 points mirrored: left eye <-> right eye, nose, left mouth corner <-> right mouth corner
MIRRORED_POINTS = [1, 0, 2, 4, 3]


def average_mirrored(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One net's outputs for ``2n`` crops (the ``n`` crops, then their mirror images) -> ``n`` averaged rows:
    face probability ``p``, box offsets (the mirror's left and right edges swapped and negated) and points
    (the mirror's x as ``1 - x``, left and right swapped).

    >>> o = {"cls": torch.zeros(2, 2), "box": torch.tensor([[0.1, 0, -0.2, 0], [0.2, 0, -0.1, 0]]),
    ...      "lmk": torch.tensor([[0.3] * 5 + [0.5] * 5, [0.7] * 5 + [0.5] * 5])}  # a crop and its mirror
    >>> a = average_mirrored(o)
    >>> torch.allclose(a["box"][0], torch.tensor([0.1, 0, -0.2, 0])), torch.allclose(a["lmk"][0, :5], torch.tensor(0.3))
    (True, True)
    """
    n = len(out["cls"]) // 2
    prob = out["cls"].softmax(1)[:, 1]
    box, lmk = out["box"], out["lmk"]
    mbox = torch.stack([-box[n:, 2], box[n:, 1], -box[n:, 0], box[n:, 3]], 1)
    mx, my = 1.0 - lmk[n:, :5][:, MIRRORED_POINTS], lmk[n:, 5:][:, MIRRORED_POINTS]
    return {
        "p": (prob[:n] + prob[n:]) / 2,
        "box": (box[:n] + mbox) / 2,
        "lmk": (lmk[:n] + torch.cat([mx, my], 1)) / 2,
    }


def crop_windows(images: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """Crops (n, 3, size, size) of ``rois`` (n, 5: image index, x1, y1, x2, y2) from a padded batch."""
    if len(rois) == 0:
        return images.new_zeros((0, 3, size, size))
    return roi_align(images, rois.float(), (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


class CropPyramid:
    """A padded image batch plus its 2x area-averaged reductions (built on demand), for cutting crops.

    A window is cut from the level where it spans 2-4x the crop size, so ``roi_align`` averages a few
    samples per output pixel instead of up to hundreds for a large face; on 3000 random windows over
    640x480 photos the crops differ from :func:`crop_windows` at full resolution by 0.4 grey levels on
    average (24 px crops), at a sixth of the time.

    >>> pyr = CropPyramid(torch.zeros(1, 3, 64, 64))
    >>> pyr.crop(torch.tensor([[0, 0, 0, 64, 64.]]), 12).shape
    torch.Size([1, 3, 12, 12])
    """

    def __init__(self, batch: torch.Tensor, max_level: int = 5):
        self.levels = [batch]
        self.max_level = max_level

    def level(self, k: int) -> torch.Tensor:
        while len(self.levels) <= k:
            self.levels.append(F.avg_pool2d(self.levels[-1], 2, ceil_mode=True, count_include_pad=False))
        return self.levels[k]

    def crop(self, rois: torch.Tensor, size: int) -> torch.Tensor:
        """Crops (n, 3, size, size) of ``rois`` (n, 5: image index, x1, y1, x2, y2 in level-0 pixels)."""
        if len(rois) == 0:
            return self.levels[0].new_zeros((0, 3, size, size))
        rois = rois.float()
        side = torch.maximum(rois[:, 3] - rois[:, 1], rois[:, 4] - rois[:, 2]).clamp(min=1.0)
        lv = torch.floor(torch.log2(side / (2 * size))).clamp(0, self.max_level).long()
        out = self.levels[0].new_empty((len(rois), 3, size, size))
        for k in lv.unique().tolist():
            m = lv == k
            out[m] = roi_align(self.level(k), rois[m], (size, size), 1 / 2**k, sampling_ratio=-1, aligned=True)
        return out


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


def resize_aa(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """uint8 RGB resized to (h, w) with antialiased bilinear filtering, as P-Net was trained.

    Torch's uint8 channels-last path: within 1 grey level of the float version at a quarter of its
    time. (OpenCV's pixel-area resize is as fast but blurs differently; it cost 2 of 25 faces on
    dlib's test photos.)
    """
    if rgb.shape[:2] == tuple(hw):
        return rgb
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]  # channels-last view, no copy
    out = F.interpolate(t, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def chunks_by_pixels(sizes: list[tuple[int, int]], budget: int) -> list[list[int]]:
    """Consecutive indices grouped so each group's padded pixel count stays within ``budget`` (>= 1 each).

    Large pyramid levels run one image at a time (their feature maps fit the CPU cache); small ones stack.

    >>> chunks_by_pixels([(100, 100), (100, 100), (10, 10), (10, 10)], 15_000)
    [[0], [1], [2, 3]]
    """
    out: list[list[int]] = []
    cur: list[int] = []
    hm = wm = 0
    for i, (h, w) in enumerate(sizes):
        nh, nw = max(hm, h), max(wm, w)
        if cur and nh * nw * (len(cur) + 1) > budget:
            out.append(cur)
            cur, nh, nw = [], h, w
        cur.append(i)
        hm, wm = nh, nw
    if cur:
        out.append(cur)
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
    nms_levels: float = 0.7  # P-Net proposals across pyramid levels (IoU)
    max_proposals: int = 1500  # per image after P-Net
    parallel: bool = True  # split a batch of images across the cores (one torch thread each)
    pixel_budget: int = 65_536  # P-Net input pixels per call (keeps feature maps in cache)
    crop_chunk: int = 256  # R-Net / O-Net crops per call
    final_flip: bool = False  # O-Net also sees each crop mirrored; scores, boxes and points are averaged


@dataclass
class StageTimes:
    """Seconds spent per stage over calls (``polyhead bench face`` reports them)."""

    seconds: dict[str, float] = field(default_factory=lambda: {"pyramid+pnet": 0.0, "rnet": 0.0, "onet": 0.0})
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, key: str, t0: float) -> float:
        """Add the seconds since ``t0`` to ``key`` (summed over parallel workers) and return now."""
        now = time.perf_counter()
        with self.lock:
            self.seconds[key] += now - t0
        return now


class FaceDetector:
    """The three nets plus the search settings; :meth:`detect` takes any number of RGB images."""

    def __init__(self, nets: dict[str, torch.nn.Module], config: DetectorConfig | None = None):
        # channels-last convolutions run about 2x faster on CPU here (measured for P-Net and R-Net)
        from polyhead.apps.face.cascade import InferenceNet

        def prepare(net):  # ONNX Runtime nets (polyhead.export.OnnxModel) come already arranged
            if not isinstance(net, torch.nn.Module):
                return net
            return InferenceNet(net.eval()).eval().to(memory_format=torch.channels_last)

        self.pnet, self.rnet, self.onet = (prepare(nets[k]) for k in ("pnet", "rnet", "onet"))
        self.config = config or DetectorConfig()
        self.times = StageTimes()

    def detect(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """RGB uint8 images -> per image ``{"boxes" (n, 4) xyxy, "scores" (n,), "points" (n, 5, 2)}``."""
        if not images:
            return []
        workers = torch.get_num_threads() if self.config.parallel else 1
        groups = split_evenly(list(images), workers)
        return [r for group in map_on_cores(self._detect_group, groups) for r in group]

    @torch.inference_mode()
    def windows_reaching(self, rgb: np.ndarray, stage: str) -> np.ndarray:
        """The windows (n, 4, xyxy) of one image that reach ``stage`` (``rnet``: P-Net's proposals;
        ``onet``: what R-Net keeps of them). Hard-example mining trains the next stage on them."""
        if stage not in ("rnet", "onet"):
            raise ValueError(f"stage must be rnet or onet, got '{stage}'")
        rois = self._stage1([rgb])
        if stage == "onet" and len(rois):
            cfg = self.config
            batch = CropPyramid(stack_padded([normalise(rgb)]))
            rois = self._refine(self.rnet, batch, rois, 24, cfg.thresholds[1], cfg.nms[1])[0]
        return rois[:, 1:].numpy().astype(np.float32)

    @torch.inference_mode()
    def detect_traced(self, rgb: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """One image through the cascade, plus what each stage passed on (for recall diagnostics):
        ``trace["levels"][k]``: P-Net rows (image, x1, y1, x2, y2, 4 offsets, score) of pyramid level k
        after its NMS, ``trace["scales"]``; rows after the cross-level NMS (``pnet_nms``) and the cap
        (``pnet_cap``); boxes (image, x1, y1, x2, y2) that R-Net keeps (``rnet``) and O-Net keeps (``onet``).
        Boxes are in the searched image's pixels (``trace["factor"]`` maps them back)."""
        trace: dict = {}
        return self._detect_group([rgb], trace)[0], trace

    @torch.inference_mode()
    def _detect_group(self, images: list[np.ndarray], trace: dict | None = None) -> list[dict[str, np.ndarray]]:
        """The whole cascade over one group of images, batched (``trace``: see :meth:`detect_traced`)."""
        cfg = self.config
        factors, scaled = [], []
        for rgb in images:
            f = min(1.0, cfg.max_side / max(rgb.shape[:2]))
            if f < 1.0:
                rgb = resize_aa(rgb, (round(rgb.shape[0] * f), round(rgb.shape[1] * f)))
            factors.append(f)
            scaled.append(rgb)
        t0 = time.perf_counter()
        rois = self._stage1(scaled, trace)
        t0 = self.times.add("pyramid+pnet", t0)
        batch = CropPyramid(stack_padded([normalise(rgb) for rgb in scaled]))
        rois = self._refine(self.rnet, batch, rois, 24, cfg.thresholds[1], cfg.nms[1])[0]
        t0 = self.times.add("rnet", t0)
        if trace is not None:
            trace["rnet"], trace["factor"] = rois.clone(), factors[0]
        rois, scores, points = self._refine(self.onet, batch, rois, 48, cfg.thresholds[2], cfg.nms[2], final=True)
        self.times.add("onet", t0)
        if trace is not None:
            trace["onet"] = rois.clone()
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

    def _stage1(self, images: list[np.ndarray], trace: dict | None = None) -> torch.Tensor:
        """P-Net over every pyramid level of every image; per level, cache-sized padded batches."""
        cfg = self.config
        scales = [pyramid_scales(im.shape[0], im.shape[1], cfg.min_size, cfg.factor) for im in images]
        if trace is not None:
            trace["scales"], trace["levels"] = scales[0], {}
        found: list[torch.Tensor] = []
        for level in range(max((len(s) for s in scales), default=0)):
            members = [i for i, s in enumerate(scales) if level < len(s)]
            sizes = [
                (
                    max(12, round(images[i].shape[0] * scales[i][level])),
                    max(12, round(images[i].shape[1] * scales[i][level])),
                )
                for i in members
            ]
            for chunk in chunks_by_pixels(sizes, cfg.pixel_budget):
                resized = [normalise(resize_aa(images[members[j]], sizes[j])) for j in chunk]
                out = self.pnet(stack_padded(resized).contiguous(memory_format=torch.channels_last))
                prob = out["cls"].softmax(1)[:, 1]
                for k, j in enumerate(chunk):
                    i, (hs, ws) = members[j], sizes[j]
                    rows = self._level_candidates(i, scales[i][level], prob[k], out["box"][k], hs, ws)
                    found.extend(rows)
                    if trace is not None:
                        trace["levels"][level] = torch.cat(rows) if rows else torch.zeros((0, 10))
        if not found:
            return torch.zeros((0, 5))
        cand = torch.cat(found)
        keep = batched_nms(cand[:, 1:5], cand[:, 9], cand[:, 0].long(), cfg.nms_levels)
        cand = cand[keep]
        if trace is not None:
            trace["pnet_nms"] = cand
        kept = []
        for i in range(len(images)):  # cap proposals per image (highest scores first; keep is score-sorted)
            kept.append(torch.nonzero(cand[:, 0] == i).flatten()[: cfg.max_proposals])
        cand = cand[torch.cat(kept)]
        if trace is not None:
            trace["pnet_cap"] = cand
        boxes = square(apply_offsets(cand[:, 1:5], cand[:, 5:9]))
        return torch.cat([cand[:, :1], boxes], 1)

    def _level_candidates(
        self, image: int, s: float, prob: torch.Tensor, reg: torch.Tensor, hs: int, ws: int
    ) -> list[torch.Tensor]:
        """Windows of one image at one level above the P-Net threshold, after per-level NMS:
        rows (image, x1, y1, x2, y2, 4 offsets, score)."""
        cfg = self.config
        ys, xs = torch.nonzero(prob > cfg.thresholds[0], as_tuple=True)
        # windows whose centre lies in the padding belong to no image
        ok = (ys * 2 + 6 < hs) & (xs * 2 + 6 < ws)
        ys, xs = ys[ok], xs[ok]
        if len(ys) == 0:
            return []
        x1, y1 = xs.float() * 2 / s, ys.float() * 2 / s
        boxes = torch.stack([x1, y1, x1 + 12 / s, y1 + 12 / s], 1)
        score = prob[ys, xs]
        keep = batched_nms(boxes, score, torch.zeros_like(score, dtype=torch.long), cfg.nms[0])
        reg = reg[:, ys[keep], xs[keep]].T
        return [torch.cat([torch.full((len(keep), 1), float(image)), boxes[keep], reg, score[keep, None]], 1)]

    def _refine(self, net, batch, rois, size, threshold, iou, final=False):
        """R-Net / O-Net over all candidate crops of the group, ``crop_chunk`` crops per call (at the last
        stage with ``final_flip``, each crop and its mirror image, averaged: :func:`average_mirrored`)."""
        if len(rois) == 0:
            return rois, torch.zeros(0), torch.zeros((0, 5, 2))
        flip = final and self.config.final_flip
        step = self.config.crop_chunk // (2 if flip else 1)
        parts = []
        for i in range(0, len(rois), step):
            crops = batch.crop(rois[i : i + step], size)
            if flip:
                crops = torch.cat([crops, crops.flip(-1)])
            out = net(crops.contiguous(memory_format=torch.channels_last))
            if flip:
                parts.append(average_mirrored(out))
            else:
                parts.append({"p": out["cls"].softmax(1)[:, 1], "box": out["box"], "lmk": out["lmk"]})
        out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        score = out["p"]
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
