"""5-point alignment: a similarity transform (Umeyama least squares) onto the 112x112 ArcFace template.

>>> pts = TEMPLATE_112 * 2.0 + 10.0            # the template, scaled and shifted
>>> m = similarity_transform(pts, TEMPLATE_112)
>>> bool(np.allclose(transform_points(pts, m), TEMPLATE_112, atol=1e-4))
True
"""

from __future__ import annotations

import cv2
import numpy as np

#: ArcFace / InsightFace reference points in a 112x112 crop: left eye, right eye, nose, mouth corners
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
CROP_SIZE = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation that maps ``src`` points onto ``dst`` (least squares).

    Umeyama (1991): closed form from the SVD of the cross-covariance; no RANSAC, so every point counts.
    """
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError("need at least two matching point pairs")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("source points coincide")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (n, 2) points."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def align_face(rgb: np.ndarray, points: np.ndarray, size: int = CROP_SIZE, margin: float = 1.0) -> np.ndarray:
    """The ``size`` x ``size`` aligned crop of the face whose 5 points are given (image pixels).

    ``margin`` > 1 zooms out about the crop centre: the same layout with more of the head around the
    inner face (hair, ears, chin), which the ArcFace crop (``margin`` 1) leaves out.

    >>> align_face(np.zeros((100, 100, 3), np.uint8), TEMPLATE_112 * 0.8).shape
    (112, 112, 3)
    >>> align_face(np.zeros((100, 100, 3), np.uint8), TEMPLATE_112 * 0.8, size=128, margin=1.3).shape
    (128, 128, 3)
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    dst = (TEMPLATE_112 - CROP_SIZE / 2) * (size / CROP_SIZE / margin) + size / 2
    m = similarity_transform(points, dst)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
