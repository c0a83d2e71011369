"""Drawing helpers: mask overlays with a legend, labelled boxes, keypoints, polylines (OpenCV only,
Hershey fonts, so nothing is fetched)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PALETTE = [
    (255, 56, 56),
    (255, 157, 151),
    (255, 112, 31),
    (255, 178, 29),
    (207, 210, 49),
    (72, 249, 10),
    (146, 204, 23),
    (61, 219, 134),
    (26, 147, 52),
    (0, 212, 187),
    (44, 153, 168),
    (0, 194, 255),
    (52, 69, 147),
    (100, 115, 255),
    (0, 24, 236),
    (132, 56, 255),
    (82, 0, 133),
    (203, 56, 255),
]


def color(i: int) -> tuple[int, int, int]:
    return PALETTE[int(i) % len(PALETTE)]


def overlay_mask(
    rgb: np.ndarray, mask: np.ndarray, colors: dict[int, tuple[int, int, int]], alpha: float = 0.45
) -> np.ndarray:
    """Blend class ids of ``mask`` (h, w) onto ``rgb`` with the given colour per class id."""
    paint = rgb.copy()
    sel = np.zeros(mask.shape, bool)
    for cls_id, col in colors.items():
        m = mask == cls_id
        paint[m] = col
        sel |= m
    out = rgb.copy()
    np.copyto(out, cv2.addWeighted(rgb, 1 - alpha, paint, alpha, 0), where=sel[..., None])
    return out


def draw_legend(rgb: np.ndarray, items: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """A small legend box in the bottom-left corner (viewers put their own badges at the top)."""
    out = rgb.copy()
    scale = max(0.4, min(out.shape[:2]) / 900)
    line = int(22 * scale / 0.5)
    width = int(max((len(n) for n, _ in items), default=0) * 11 * scale / 0.5) + 3 * line // 2
    top = out.shape[0] - 8 - line * len(items)
    cv2.rectangle(out, (4, top - 4), (8 + width, out.shape[0] - 4), (0, 0, 0), -1)
    for i, (name, col) in enumerate(items):
        y = top + i * line
        cv2.rectangle(out, (8, y + 3), (8 + line - 6, y + line - 3), col, -1)
        cv2.putText(
            out, name, (8 + line, y + line - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out


def draw_boxes(rgb: np.ndarray, boxes: np.ndarray, labels: Sequence[str], class_ids: Sequence[int]) -> np.ndarray:
    """Boxes (n, 4) xyxy with a filled label tag each."""
    out = rgb.copy()
    thick = max(1, round(min(out.shape[:2]) / 300))
    scale = max(0.35, min(out.shape[:2]) / 1200)
    for box, label, c in zip(np.asarray(boxes).reshape(-1, 4), labels, class_ids, strict=True):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        col = color(c)
        cv2.rectangle(out, (x1, y1), (x2, y2), col, thick, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + base - 2), col, -1)
        cv2.putText(out, label, (x1 + 1, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_keypoints(rgb: np.ndarray, points: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Points (n, k, 2) or (k, 2), one colour per keypoint index."""
    out = rgb.copy()
    pts = np.asarray(points).reshape(-1, np.asarray(points).shape[-2], 2)
    r = radius or max(2, round(min(out.shape[:2]) / 250))
    for person in pts:
        for k, (x, y) in enumerate(person):
            cv2.circle(out, (int(round(x)), int(round(y))), r, color(k + 3), -1, cv2.LINE_AA)
    return out


def draw_polylines(
    rgb: np.ndarray,
    lines: Sequence[np.ndarray],
    col: tuple[int, int, int] = (255, 40, 40),
    thickness: int | None = None,
) -> np.ndarray:
    """Open polylines, each (n, 2) in pixels."""
    out = rgb.copy()
    t = thickness or max(2, round(min(out.shape[:2]) / 150))
    for pts in lines:
        p = np.round(np.asarray(pts)).astype(np.int32).reshape(-1, 1, 2)
        if len(p) >= 2:
            cv2.polylines(out, [p], False, col, t, cv2.LINE_AA)
    return out


def put_text(rgb: np.ndarray, text: str, org: tuple[int, int] = (8, 24)) -> np.ndarray:
    """White text with a dark outline."""
    out = rgb.copy()
    scale = max(0.5, min(out.shape[:2]) / 700)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
