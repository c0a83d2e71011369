"""Training augmentation for the driving model: geometry that moves boxes and both masks together,
weather and light that dash-cams meet, 2x2 mosaics, class-balanced repeats, and lane negatives.

- :func:`build_augment`: albumentations pipeline (flip, random scale / crop / shift, photometric changes
  covering night, rain, glare, blur, sensor noise and compression);
- :func:`mosaic`: four letterboxed samples in one frame (more objects and scales per step, the idea of
  YOLOv4's mosaic); missing labels of a tile stay unlabelled (255) so partial labels stay honest;
- :func:`lane_negatives`: a frame with a drivable-area label and no lane label still says where lanes are
  *not*: lane markings lie on the road, so every pixel off the (slightly dilated) drivable area is
  "no lane", and so is plain asphalt (no brighter than the road around it); possible paint stays
  unlabelled;
- :func:`repeat_factors`: LVIS-style repeat-factor sampling, so frames with rare classes (pedestrians,
  cyclists) come back more often.

>>> aug = build_augment()
>>> out = aug(image=np.zeros((64, 96, 3), np.uint8), masks=[np.zeros((64, 96), np.uint8)] * 2, bboxes=[], cls=[])
>>> out["image"].shape
(64, 96, 3)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

IGNORE = 255  # unlabelled pixel in a task mask (the segmentation loss ignores it)


def build_augment(strength: float = 1.0):
    """One albumentations pipeline that moves image, both masks and boxes together.

    ``strength`` scales the probabilities of the photometric groups (0 leaves only the geometry).
    """
    import albumentations as A

    s = float(strength)
    low_light = A.Sequential(  # night: darker (gamma > 1 on 0..1), noisier, slightly blue
        [A.RandomGamma((170, 320), p=1.0), A.GaussNoise(std_range=(0.02, 0.07), p=1.0), A.ToGray(p=0.1)], p=1.0
    )
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(  # random scale, crop (zoom in) and shift: objects at many sizes
                scale=(0.6, 1.5),
                translate_percent=(-0.12, 0.12),
                rotate=(-3, 3),
                p=0.8,
                border_mode=cv2.BORDER_CONSTANT,
                fill=114,
                fill_mask=0,
            ),
            A.OneOf(
                [
                    A.RandomBrightnessContrast((-0.35, 0.25), (-0.3, 0.3), p=1.0),
                    A.RandomGamma((60, 160), p=1.0),
                    low_light,
                ],
                p=min(1.0, 0.8 * s),
            ),
            A.HueSaturationValue(8, 25, 20, p=0.4 * s),
            A.OneOf(
                [
                    A.RandomRain(drop_width=1, blur_value=3, brightness_coefficient=0.8, p=1.0),
                    A.RandomSunFlare(flare_roi=(0, 0, 1, 0.6), src_radius=120, num_flare_circles_range=(2, 5), p=1.0),
                    A.RandomFog(fog_coef_range=(0.1, 0.35), alpha_coef=0.08, p=1.0),
                ],
                p=0.15 * s,
            ),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 5)),
                    A.MotionBlur(blur_limit=(3, 7)),
                    A.GaussNoise(std_range=(0.02, 0.06)),
                    A.ISONoise(),
                    A.ImageCompression(quality_range=(30, 80)),
                ],
                p=0.35 * s,
            ),
        ],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["cls"], min_visibility=0.3, min_area=16),
    )


#: white top-hat (grey levels above the local road surface) from which a road pixel may be paint
PAINT_TOPHAT = 28


def lane_negatives(
    drivable: np.ndarray, image: np.ndarray | None = None, margin: int = 7, paint_tophat: int = PAINT_TOPHAT
) -> np.ndarray:
    """A lane target from a drivable-area mask alone: 0 (no lane) off the road grown by ``margin`` pixels
    (edge lines sit on the road's border), :data:`IGNORE` on it.

    With the frame's ``image`` (RGB), the road itself says where lanes are not too: lane markings are
    paint, brighter than the asphalt around them, so a road pixel (``margin`` inside the road) whose white
    top-hat (grey level above the opening by a square about 1/24 of the frame wide) stays below
    ``paint_tophat`` is "no lane"; possible paint (grown by 2 px) and the border band stay unlabelled.
    Without it a head trained on road-only frames (CamVid) learns to paint the whole road as lane.

    >>> lane_negatives(np.pad(np.ones((4, 4), np.uint8), 8), margin=1)[8, :8].tolist()
    [0, 0, 0, 0, 0, 0, 0, 255]
    >>> road = np.zeros((60, 96), np.uint8); road[20:] = 1
    >>> rgb = np.full((60, 96, 3), 80, np.uint8); rgb[20:, 46:50] = 230   # a painted line on grey asphalt
    >>> t = lane_negatives(road, rgb, margin=2); int(t[40, 20]), int(t[40, 48]), int(t[5, 20])
    (0, 255, 0)
    """
    road = (drivable > 0).astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)) if margin > 0 else None
    grown = cv2.dilate(road, disc) if disc is not None else road
    out = np.where(grown > 0, IGNORE, 0).astype(np.uint8)
    if image is not None:
        inner = cv2.erode(road, disc) if disc is not None else road
        k = max(9, int(round(road.shape[1] / 24)) | 1)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        top = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        paint = cv2.dilate((top >= paint_tophat).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        out[(inner > 0) & (paint == 0)] = 0
    return out


def repeat_factors(class_sets: list[set[int]], threshold: float = 0.3, cap: float = 4.0) -> np.ndarray:
    """LVIS repeat factor per image: ``max over its classes of max(1, sqrt(threshold / f(c)))`` where ``f(c)``
    is the share of images holding class ``c`` (capped at ``cap``); images without boxes get 1.

    >>> repeat_factors([{0}, {0}, {0}, {0, 1}], threshold=0.5).round(3).tolist()
    [1.0, 1.0, 1.0, 1.414]
    """
    n = max(len(class_sets), 1)
    freq: dict[int, float] = {}
    for classes in class_sets:
        for c in classes:
            freq[c] = freq.get(c, 0) + 1 / n
    r = [max([1.0] + [min(cap, max(1.0, math.sqrt(threshold / freq[c]))) for c in classes]) for classes in class_sets]
    return np.array(r, np.float64)


def repeated_indices(factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's index list: image ``i`` appears ``floor(r_i)`` times plus once more with probability
    ``frac(r_i)`` (stochastic rounding, so the expected count is ``r_i``)."""
    whole = np.floor(factors).astype(int)
    extra = rng.random(len(factors)) < (factors - whole)
    return np.repeat(np.arange(len(factors)), whole + extra)


def mosaic(tiles: list[dict], size: tuple[int, int], rng: np.random.Generator) -> dict:
    """Four samples ``{"image" (h, w, 3) uint8, "boxes" (n, 5) cls x1 y1 x2 y2 | None, "drivable" | None,
    "lane" | None}`` in one ``size`` frame around a random centre; each tile is scaled to fit its quarter.

    A task that some tiles lack is :data:`IGNORE` over those tiles (masks); boxes are kept only if every
    tile has box labels (a tile without box labels may hold unlabelled objects), else ``None``.
    """
    H, W = size
    cy, cx = int(rng.uniform(0.3, 0.7) * H), int(rng.uniform(0.3, 0.7) * W)
    canvas = np.full((H, W, 3), 114, np.uint8)
    masks = {k: np.full((H, W), IGNORE, np.uint8) for k in ("drivable", "lane")}
    has = {k: any(t[k] is not None for t in tiles) for k in masks}
    all_boxes = all(t["boxes"] is not None for t in tiles)
    boxes = []
    regions = [(0, 0, cx, cy), (cx, 0, W, cy), (0, cy, cx, H), (cx, cy, W, H)]
    for tile, (x0, y0, x1, y1) in zip(tiles, regions, strict=True):
        th, tw = tile["image"].shape[:2]
        rw, rh = x1 - x0, y1 - y0
        if rw < 2 or rh < 2:
            continue
        scale = max(rw / tw, rh / th)  # cover the quarter; crop the overflow around the tile's centre
        nw, nh = max(1, round(tw * scale)), max(1, round(th * scale))
        ox, oy = (nw - rw) // 2, (nh - rh) // 2
        img = cv2.resize(tile["image"], (nw, nh), interpolation=cv2.INTER_LINEAR)
        canvas[y0:y1, x0:x1] = img[oy : oy + rh, ox : ox + rw]
        for k in masks:
            if tile[k] is not None:
                m = cv2.resize(tile[k], (nw, nh), interpolation=cv2.INTER_NEAREST)
                masks[k][y0:y1, x0:x1] = m[oy : oy + rh, ox : ox + rw]
        if all_boxes and len(tile["boxes"]):
            b = tile["boxes"].astype(np.float32).copy()
            b[:, [1, 3]] = b[:, [1, 3]] * scale - ox + x0
            b[:, [2, 4]] = b[:, [2, 4]] * scale - oy + y0
            area = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
            b[:, [1, 3]] = b[:, [1, 3]].clip(x0, x1)
            b[:, [2, 4]] = b[:, [2, 4]].clip(y0, y1)
            kept = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
            ok = (kept > 0.35 * np.maximum(area, 1e-6)) & (b[:, 3] - b[:, 1] >= 2) & (b[:, 4] - b[:, 2] >= 2)
            boxes.append(b[ok])
    out_boxes = (np.concatenate(boxes) if boxes else np.zeros((0, 5), np.float32)) if all_boxes else None
    return {
        "image": canvas,
        "boxes": out_boxes,
        "drivable": masks["drivable"] if has["drivable"] else None,
        "lane": masks["lane"] if has["lane"] else None,
    }
