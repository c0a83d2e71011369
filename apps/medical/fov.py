"""Fundus field of view (FOV): find it, measure its diameter, bring an image to a common FOV scale.

Fundus sets are photographed with different cameras and resolutions (DRIVE 565x584, STARE 700x605, HRF
3504x2336); the retina always fills a disc, so the disc's diameter is a ruler: scaling every image so its
FOV is as wide as DRIVE's makes vessel widths (in pixels) match across sets.

>>> disc = np.zeros((200, 300), np.uint8); _ = cv2.circle(disc, (150, 100), 80, 1, -1)
>>> abs(fov_diameter(disc) - 161) <= 1                     # a disc of radius 80 spans 161 pixels
True
>>> img = np.zeros((200, 300, 3), np.uint8); img[disc > 0] = (180, 90, 40)
>>> bool((fov_from_red(img) != disc).mean() < 0.001)
True
"""

from __future__ import annotations

import cv2
import numpy as np

#: how much a measured scale may differ from 1 before an image is resampled (DRIVE's own discs vary ~1%)
SCALE_TOLERANCE = 0.03


def fov_from_red(rgb: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The FOV of a fundus photo without a FOV mask (STARE): the red channel is bright inside the disc and
    near black outside. ``threshold`` defaults to 15% of the red channel's 99th percentile (at least 20,
    above the noise of the black border); the largest component, holes filled, is kept (noise specks go)."""
    red = rgb[..., 0] if rgb.ndim == 3 else rgb
    if threshold is None:
        threshold = max(20.0, 0.15 * float(np.percentile(red, 99)))
    m = (red > threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return np.zeros(red.shape, np.uint8)
    largest = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
    m = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(m)
    cv2.drawContours(filled, contours, -1, 1, -1)
    return filled


def fov_diameter(fov: np.ndarray) -> float:
    """The disc's diameter in pixels: a least-squares circle (Kasa's algebraic fit) through the FOV's
    outline, leaving out the outline where it runs along the image border. Fundus discs are often cut
    by the frame (HRF at the top and bottom, some STARE images at a side), so neither the mask's width
    nor its area measures them; the arcs that remain do. 0 for an empty mask.

    >>> cut = np.zeros((120, 300), np.uint8); _ = cv2.circle(cut, (150, 60), 100, 1, -1)   # cut top and bottom
    >>> abs(fov_diameter(cut) - 201) <= 1
    True
    """
    m = (np.asarray(fov) > 0).astype(np.uint8)
    if not m.any():
        return 0.0
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c[:, 0, :] for c in contours]).astype(np.float64)
    h, w = m.shape
    inside = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
    pts = pts[inside]
    if len(pts) < 20:  # (almost) no free outline: the widest row
        return float(max(np.ptp(np.where(r)[0]) + 1 for r in m.astype(bool) if r.any()))
    x, y = pts[:, 0], pts[:, 1]
    a = np.stack([x, y, np.ones_like(x)], 1)
    (d, e, f), *_ = np.linalg.lstsq(a, -(x**2 + y**2), rcond=None)
    r2 = (d * d + e * e) / 4 - f
    # the outline's pixel centres lie on average a pixel inside the disc's edge (half a pixel to the
    # centre of the edge pixel, half from the staircase): +2 gives the width in pixels (checked on drawn discs)
    return float(2 * np.sqrt(max(r2, 0.0)) + 2)


def fov_scale(fov: np.ndarray, target: float) -> float:
    """The factor that makes this FOV ``target`` pixels wide (1.0 within :data:`SCALE_TOLERANCE`)."""
    d = fov_diameter(fov)
    if d <= 0:
        raise ValueError("field of view is empty")
    s = float(target) / d
    return 1.0 if abs(s - 1) < SCALE_TOLERANCE else s


def rescale(
    image: np.ndarray, mask: np.ndarray | None, fov: np.ndarray | None, factor: float
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Resize image (area averaging when shrinking), binary / class masks and the FOV by ``factor``.

    Masks are resized per class as coverage maps and a pixel takes the class covering most of it
    (at least half for the foreground), so thin vessels survive a 3x reduction (nearest-neighbour
    sampling would break them up)."""
    if factor == 1.0:
        return image, mask, fov
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, size, interpolation=interp)
    return out, _resize_labels(mask, size, interp), _resize_labels(fov, size, interp)


def _resize_labels(m: np.ndarray | None, size: tuple[int, int], interp: int) -> np.ndarray | None:
    if m is None:
        return None
    ids = np.unique(m)
    if len(ids) <= 2 and ids.max(initial=0) <= 1:
        return (cv2.resize(m.astype(np.float32), size, interpolation=interp) >= 0.5).astype(np.uint8)
    cover = np.stack([cv2.resize((m == c).astype(np.float32), size, interpolation=interp) for c in ids])
    return ids[cover.argmax(0)].astype(np.uint8)
