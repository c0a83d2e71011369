"""Tensors -> a DrivingResult: boxes after NMS, drivable mask and share, lane polylines."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from polyhead.heads.detection import nms
from polyhead.heads.segmentation import foreground
from polyhead.preprocess import Letterbox
from polyhead.viz import draw_boxes, draw_legend, draw_polylines, overlay_mask

DRIVABLE_COLOR = (40, 200, 60)
LANE_COLOR = (255, 60, 60)
LANE_MASK_COLOR = (255, 200, 0)


@dataclass
class Lane:
    """One lane line: ordered points (bottom to top) in original pixels and ``x = poly(y)``."""

    points: np.ndarray  # (n, 2)
    coeffs: list[float]  # highest power first, in original pixels

    def to_json(self) -> dict:
        return {"points": np.round(self.points, 1).tolist(), "poly_x_of_y": self.coeffs}


@dataclass
class DrivingResult:
    image_size: tuple[int, int]  # (h, w)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # xyxy, original pixels
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    names: list[str] = field(default_factory=list)
    drivable: np.ndarray | None = None  # bool (h, w)
    lane_mask: np.ndarray | None = None  # bool (h, w)
    lanes: list[Lane] = field(default_factory=list)
    track_ids: np.ndarray | None = None  # per box, video only (-1: not yet a track)

    @property
    def drivable_share(self) -> float | None:
        return None if self.drivable is None else float(self.drivable.mean())

    def to_json(self) -> dict:
        out: dict = {"image_size": {"height": self.image_size[0], "width": self.image_size[1]}}
        out["objects"] = [
            {
                "class": self.names[int(c)],
                "class_id": int(c),
                "score": round(float(s), 4),
                "box_xyxy": [round(float(v), 1) for v in b],
            }
            for b, s, c in zip(self.boxes, self.scores, self.classes, strict=True)
        ]
        if self.track_ids is not None:
            for obj, t in zip(out["objects"], self.track_ids, strict=True):
                obj["track_id"] = int(t) if t >= 0 else None
        if self.drivable is not None:
            out["drivable_share"] = round(self.drivable_share, 4)
        if self.lane_mask is not None:
            out["lanes"] = [lane.to_json() for lane in self.lanes]
        return out

    def artifacts(self) -> dict:
        """The files batch predict writes beside the overlay and JSON for an image: the drivable-area and
        lane masks as 8-bit PNGs (255 = the class, 0 = not), in original pixels."""
        out: dict = {}
        if self.drivable is not None:
            out["_drivable.png"] = self.drivable.astype(np.uint8) * 255
        if self.lane_mask is not None:
            out["_lane.png"] = self.lane_mask.astype(np.uint8) * 255
        return out

    def plot(self, image: np.ndarray) -> np.ndarray:
        legend, colors = [], {}
        classes = np.zeros(image.shape[:2], np.uint8)
        if self.drivable is not None:
            classes[self.drivable] = 1
            colors[1] = DRIVABLE_COLOR
            legend.append(("drivable", DRIVABLE_COLOR))
        if self.lane_mask is not None:
            classes[self.lane_mask] = 2
            colors[2] = LANE_MASK_COLOR
        out = overlay_mask(image, classes, colors, alpha=0.45) if colors else image.copy()  # one blend pass
        if self.lane_mask is not None:
            out = draw_polylines(out, [lane.points for lane in self.lanes], LANE_COLOR)
            legend.append(("lane", LANE_COLOR))
        if len(self.boxes):
            labels = [f"{self.names[int(c)]} {s:.2f}" for s, c in zip(self.scores, self.classes, strict=True)]
            if self.track_ids is not None:
                labels = [f"#{t} {lab}" if t >= 0 else lab for t, lab in zip(self.track_ids, labels, strict=True)]
            out = draw_boxes(out, self.boxes, labels, self.classes.tolist())
        return draw_legend(out, legend) if legend else out


def postprocess(
    outputs: dict[str, torch.Tensor], boxes: list[Letterbox], names: list[str], conf: float = 0.25, iou: float = 0.45
) -> list[DrivingResult]:
    """Batch outputs (boxes in input pixels, mask logits at any stride) -> one result per image in
    original pixels."""
    n = len(boxes)
    dets = nms(outputs["det"], conf, iou) if "det" in outputs else [None] * n
    results = []
    for i, lb in enumerate(boxes):
        r = DrivingResult(lb.original, names=list(names))
        if dets[i] is not None and len(dets[i]):
            d = dets[i].cpu().numpy()
            r.boxes, r.scores, r.classes = lb.to_original_boxes(d[:, :4]), d[:, 4], d[:, 5].astype(int)
        if "drivable" in outputs:
            r.drivable = lb.to_original_map(_mask(outputs["drivable"][i], lb)).astype(bool)
        if "lane" in outputs:
            m = _mask(outputs["lane"][i], lb)
            x0, y0, x1, y1 = lb.inner
            r.lanes = [
                Lane(lb.to_original_points(p), _coeffs_to_original(c, lb))
                for p, c in fit_lanes(m[y0:y1, x0:x1], offset=(x0, y0))
            ]
            r.lane_mask = lb.to_original_map(m).astype(bool)
        results.append(r)
    return results


def _mask(logits: torch.Tensor, lb: Letterbox) -> np.ndarray:
    """(C, h, w) logits at the head's stride -> uint8 foreground mask at the network input size."""
    return foreground(logits, lb.size).to(torch.uint8).cpu().numpy()


def _coeffs_to_original(c: np.ndarray, lb: Letterbox) -> list[float]:
    """x_in = p(y_in) with x_in = s*x + px, y_in = s*y + py  ->  x = q(y)."""
    s, (px, py) = lb.scale, lb.pad
    y_in = np.poly1d([s, py])
    q = (np.poly1d(c)(y_in) - px) / s
    return [round(float(v), 8) for v in np.atleast_1d(q.coeffs)]


def fit_lanes(
    mask: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    min_height: float = 0.08,
    min_pixels: int = 30,
    n_points: int = 24,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a binary lane mask into lanes and fit ``x = poly(y)`` to each.

    Connected pieces (dashes) are chained when the straight-line fit of one, extended, runs through
    the other (within ``max(4 px, 2% of the width)``); chains shorter than ``min_height`` of the image
    or with fewer than ``min_pixels`` are dropped. Each lane gets a 2nd-order fit (1st-order when it
    spans few rows) to its per-row median x. Returns ``(points (n, 2) bottom to top, coeffs)`` per
    lane, left to right at the bottom, in mask pixels plus ``offset``.
    """
    h, w = mask.shape
    binary = (mask > 0).astype(np.uint8)
    if binary.sum() < min_pixels:
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.argsort(-areas)[:40]  # the largest pieces; bounds the pairwise chaining on noisy masks
    keep = keep[stats[keep, cv2.CC_STAT_AREA] >= 4]
    ys_all, xs_all = np.nonzero(binary)
    lab = labels[ys_all, xs_all]
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(count + 1))
    pieces = []
    for k in keep:
        idx = order[bounds[k] : bounds[k + 1]]
        ys, xs = ys_all[idx], xs_all[idx]
        rows, med = _row_centres(ys, xs)
        line = np.polyfit(rows, med, 1) if len(rows) >= 3 else np.array([0.0, med.mean()])
        pieces.append({"ys": ys, "xs": xs, "rows": rows, "med": med, "line": line})
    chains = _chain_pieces(pieces, tol=max(4.0, 0.02 * w), max_gap=0.15 * h)
    lanes = []
    for chain in chains:
        ys = np.concatenate([pieces[i]["ys"] for i in chain])
        xs = np.concatenate([pieces[i]["xs"] for i in chain])
        if len(ys) < min_pixels or (ys.max() - ys.min()) < min_height * h:
            continue
        rows, med = _row_centres(ys, xs)
        degree = 2 if len(rows) >= 12 and (rows.max() - rows.min()) > 0.15 * h else 1
        c = np.polyfit(rows + offset[1], med + offset[0], degree)
        residual = float(np.mean(np.abs(np.polyval(c, rows + offset[1]) - med - offset[0])))
        slope = np.abs(np.polyval(np.polyder(np.poly1d(c)), rows + offset[1])).max() if degree else 0.0
        if residual > max(3.0, 0.012 * w) or slope > 4.0:  # scattered specks or near-horizontal marks
            continue
        yy = np.linspace(rows.max(), rows.min(), n_points) + offset[1]
        pts = np.stack([np.polyval(c, yy), yy], 1)
        pts = pts[(pts[:, 0] >= offset[0] - 1) & (pts[:, 0] <= offset[0] + w + 1)]
        if len(pts) >= 2:
            lanes.append((pts, c))
    return sorted(lanes, key=lambda lc: lc[0][0, 0])


def _row_centres(ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows and the mean x of the mask pixels on each."""
    rows, inv = np.unique(ys, return_inverse=True)
    return rows, np.bincount(inv, weights=xs) / np.bincount(inv)


def _chain_pieces(pieces: list[dict], tol: float, max_gap: float) -> list[list[int]]:
    """Union pieces whose line fits agree where the other piece lies (dashes of one lane), when the
    vertical gap between them is at most ``max_gap`` rows."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def agrees(a: dict, b: dict) -> bool:
        if len(a["rows"]) < 3:
            return False
        k, c = a["line"]  # x = k * row + c
        return float(np.abs(k * b["rows"] + c - b["med"]).mean()) < tol

    n = len(pieces)
    lo = np.array([p["rows"].min() for p in pieces]).reshape(n)
    hi = np.array([p["rows"].max() for p in pieces]).reshape(n)
    overlap = np.minimum(hi[:, None], hi[None]) - np.maximum(lo[:, None], lo[None])
    # one above the other, not side by side, not far apart: only those pairs get the fit check
    candidate = (overlap >= -max_gap) & (overlap < 3) & ~np.eye(n, dtype=bool)
    rank = np.argsort([-len(p["rows"]) for p in pieces], kind="stable")  # long pieces lead
    position = np.empty(n, int)
    position[rank] = np.arange(n)
    pairs = sorted(zip(*np.nonzero(candidate), strict=True), key=lambda ab: (position[ab[0]], position[ab[1]]))
    for ai, bi in pairs:
        if root(ai) != root(bi) and agrees(pieces[ai], pieces[bi]):
            parent[root(bi)] = root(ai)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())
