"""Classical lane finding for lane pseudo-labels (colour + edges + ROI + Hough + polynomial fits).

Real lane labels are scarce (six TuSimple frames), so highway frames without labels are labelled by a
classical pipeline and kept only when the result is plausible:

1. ``marking_mask``: bright thin structures (white top-hat on grey) that are white or yellow in HLS,
   inside a trapezoid region of interest below the horizon, kept only near Canny edges.
2. ``find_lanes``: probabilistic Hough segments on that mask, grouped into lanes by where their line
   meets the bottom row and the ROI top (lanes converge to one vanishing point), refined by a robust
   polynomial ``x = p(y)`` fitted to the marking pixels in a band around each group (degree 2 when the
   support is long enough to show curvature, else 1).
3. ``check_plausible``: at least one lane on each side of the car, an ego lane of sensible width, lanes
   that do not cross, a vanishing point near the horizon and (for video) no jump against the last
   accepted frame.
4. ``draw_lanes``: lanes drawn as continuous lines (through dash gaps, like TuSimple's labels) of
   ``8 * width / 1280`` pixels, the width of TuSimple's own lines at 1280x720.

Lanes the pipeline misses stay background in the mask (there is no "ignore" value in the layout), so
only frames where the fit is confident are accepted; the acceptance rate is reported by the converter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Region of interest, as fractions of the image: the horizon line and the half-width of the ROI top.
HORIZON_FRAC = 0.60
ROI_TOP_HALF_WIDTH = 0.25
# Lane widths are drawn at 8 px for a 1280 px wide image (TuSimple's line width), scaled with width.
LINE_WIDTH_AT_1280 = 8


@dataclass(frozen=True)
class Lane:
    """One lane line: ``x = polyval(coeffs, y)`` for ``y_top <= y <= y_bottom`` (image pixels)."""

    coeffs: tuple[float, ...]
    y_top: float
    y_bottom: float
    support: int

    def x_at(self, y: np.ndarray | float) -> np.ndarray:
        return np.polyval(np.asarray(self.coeffs), np.asarray(y, np.float64))


@dataclass
class LaneFinding:
    """Lanes found in one frame, sorted left to right at the bottom row, and the verdict."""

    lanes: list[Lane]
    accepted: bool = False
    reason: str = ""
    ego: tuple[int, int] | None = None  # indices of the ego lane's left and right lines
    stats: dict = field(default_factory=dict)


def roi_polygon(h: int, w: int, horizon: float = HORIZON_FRAC) -> np.ndarray:
    """Road region below the horizon: full width up to half the way to the horizon, then narrowing to
    ``2 * ROI_TOP_HALF_WIDTH`` of the width at the horizon."""
    yt = int(round(horizon * h))
    ys = int(round(h - 0.55 * (h - yt)))
    xl, xr = int((0.5 - ROI_TOP_HALF_WIDTH) * w), int((0.5 + ROI_TOP_HALF_WIDTH) * w)
    return np.array([[0, h - 1], [0, ys], [xl, yt], [xr, yt], [w - 1, ys], [w - 1, h - 1]], np.int32)


def marking_mask(rgb: np.ndarray, horizon: float = HORIZON_FRAC) -> np.ndarray:
    """Boolean mask of white/yellow painted markings inside the ROI.

    >>> img = np.zeros((90, 160, 3), np.uint8); img[60:90, 40:43] = 255
    >>> bool(marking_mask(img)[80, 41])
    True
    """
    h, w = rgb.shape[:2]
    hls = cv2.cvtColor(rgb, cv2.COLOR_RGB2HLS)
    hue, light, sat = hls[..., 0].astype(np.int16), hls[..., 1].astype(np.int16), hls[..., 2].astype(np.int16)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # Yellow paint is darker than white in grey: lift it with R+G-B before the top-hat.
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    bright = np.maximum(grey.astype(np.int16), np.clip((r + g) // 2 - b // 2 + 40, 0, 255)).astype(np.uint8)
    k = max(9, int(round(w * 0.03)) | 1)  # wider than any marking
    tophat = cv2.morphologyEx(bright, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    white = (light >= 150) & (sat <= 120)
    yellow = (hue >= 12) & (hue <= 40) & (sat >= 70) & (light >= 90)
    mask = (tophat >= 35) & (white | yellow)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 50, 150)
    near_edge = cv2.dilate(edges, np.ones((5, 5), np.uint8)) > 0
    roi = np.zeros((h, w), np.uint8)
    cv2.fillPoly(roi, [roi_polygon(h, w, horizon)], 1)
    mask &= near_edge & (roi > 0)
    # Drop specks and blobs far too large to be paint (car bodies, signs).
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    for i in range(1, n):
        bh, area = st[i, cv2.CC_STAT_HEIGHT], st[i, cv2.CC_STAT_AREA]
        keep[i] = 6 <= area <= 0.02 * h * w and bh >= 2
    return keep[lab]


def _hough_segments(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    seg = cv2.HoughLinesP(
        mask.astype(np.uint8) * 255,
        1,
        np.pi / 180,
        threshold=12,
        minLineLength=max(8, int(0.015 * w)),
        maxLineGap=max(6, int(0.03 * w)),
    )
    if seg is None:
        return np.zeros((0, 4), np.float64)
    seg = seg.reshape(-1, 4).astype(np.float64)
    dx, dy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    steep = np.abs(dy) >= 0.35 * np.abs(dx)  # lane lines are never near-horizontal in a forward camera
    return seg[steep & (np.abs(dy) > 0)]


def _group_segments(seg: np.ndarray, h: int, w: int, y_ref: float) -> list[np.ndarray]:
    """Greedy grouping by (x at the bottom row, x at the ROI top), longest segments first."""
    a = (seg[:, 2] - seg[:, 0]) / (seg[:, 3] - seg[:, 1])
    b = seg[:, 0] - a * seg[:, 1]
    xb, xt = a * (h - 1) + b, a * y_ref + b
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    groups: list[list[int]] = []
    centres: list[tuple[float, float]] = []
    for i in np.argsort(-length):
        for gi, (cb, ct) in enumerate(centres):
            if abs(xb[i] - cb) < 0.06 * w and abs(xt[i] - ct) < 0.025 * w:
                groups[gi].append(i)
                wts = length[groups[gi]]
                centres[gi] = (
                    float(np.average(xb[groups[gi]], weights=wts)),
                    float(np.average(xt[groups[gi]], weights=wts)),
                )
                break
        else:
            groups.append([i])
            centres.append((float(xb[i]), float(xt[i])))
    return [seg[g] for g in groups if length[g].sum() >= 0.06 * h]


def _fit_lane(mask: np.ndarray, segs: np.ndarray, y_roi: float) -> Lane | None:
    h, w = mask.shape
    ys = np.r_[segs[:, 1], segs[:, 3]]
    xs = np.r_[segs[:, 0], segs[:, 2]]
    wts = np.repeat(np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1]), 2)
    if np.ptp(ys) < 2:
        return None
    coarse = np.polyfit(ys, xs, 1, w=np.sqrt(wts))
    py, px = np.nonzero(mask)
    # Horizontal band around the coarse line: wider near the camera and for shallow lines.
    band = max(4.0, 0.012 * w) * np.hypot(1.0, coarse[0])
    near = np.abs(px - np.polyval(coarse, py)) <= band * (0.5 + (py - y_roi) / max(1.0, h - y_roi))
    py, px = py[near].astype(np.float64), px[near].astype(np.float64)
    if len(py) < 20 or np.ptp(py) < 0.05 * (h - y_roi):
        return None
    span = np.ptp(py)
    deg = 2 if span >= 0.4 * (h - y_roi) else 1
    coeffs = np.polyfit(py, px, deg)
    resid = np.abs(px - np.polyval(coeffs, py))
    inl = resid <= max(2.0, 2.5 * np.median(resid) * 1.4826)
    coeffs = np.polyfit(py[inl], px[inl], deg)
    if deg == 2 and abs(coeffs[0]) * span**2 > 0.15 * w:  # wild bend: keep the straight fit
        coeffs = np.polyfit(py[inl], px[inl], 1)
    return Lane(tuple(float(c) for c in coeffs), float(py.min()), float(h - 1), int(inl.sum()))


def find_lanes(rgb: np.ndarray, horizon: float = HORIZON_FRAC) -> LaneFinding:
    """Find lane lines in an RGB road frame (no plausibility verdict yet; see ``check_plausible``).

    >>> img = np.full((270, 480, 3), 60, np.uint8)
    >>> for x0 in (60, 420):
    ...     _ = cv2.line(img, (x0, 269), (240, 160), (255, 255, 255), 4)
    >>> len(find_lanes(img).lanes)
    2
    """
    h, w = rgb.shape[:2]
    mask = marking_mask(rgb, horizon)
    y_roi = horizon * h
    groups = _group_segments(_hough_segments(mask), h, w, y_roi)
    lanes = [ln for g in groups if (ln := _fit_lane(mask, g, y_roi))]
    lanes = _merge_duplicates(lanes, w)
    lanes.sort(key=lambda ln: float(ln.x_at(h - 1)))
    vp = _ego_vanishing_point(lanes, h, w)
    if vp is not None:  # outer lanes: shallow dashes that Hough grouping misses, found around the VP
        lanes = _merge_duplicates(lanes + _lanes_through(mask, vp, lanes, y_roi), w)
        lanes.sort(key=lambda ln: float(ln.x_at(h - 1)))
    return LaneFinding(lanes, stats={"marking_px": int(mask.sum()), "vanishing_point": vp})


def _ego_vanishing_point(lanes: list[Lane], h: int, w: int) -> tuple[float, float] | None:
    left = [ln for ln in lanes if ln.x_at(h - 1) < w / 2 and _slope(ln, h) < 0]
    right = [ln for ln in lanes if ln.x_at(h - 1) >= w / 2 and _slope(ln, h) > 0]
    if not left or not right:
        return None
    return _intersection(left[-1], right[0], h)


def _lanes_through(mask: np.ndarray, vp: tuple[float, float], known: list[Lane], y_roi: float) -> list[Lane]:
    """Straight lanes through the vanishing point: peaks of a histogram of marking-pixel angles seen from it.

    A peak must hold pixels spread over at least two separate rows bands (two dashes or one long line),
    so a lone blob is not a lane.
    """
    h, w = mask.shape
    py, px = np.nonzero(mask)
    keep = py > vp[1] + 2
    for ln in known:  # pixels already explained by a lane
        keep &= np.abs(px - ln.x_at(py)) > max(4.0, 0.015 * w)
    py, px = py[keep].astype(np.float64), px[keep].astype(np.float64)
    if len(py) < 20:
        return []
    ang = np.degrees(np.arctan2(px - vp[0], py - vp[1]))  # 0 = straight down from the VP
    hist, edges = np.histogram(ang, bins=np.arange(-89.0, 89.5, 1.0))
    hist = np.convolve(hist, [1, 1, 1], mode="same")  # pixels within +-1.5 degrees
    min_px = max(40, int(2e-4 * h * w))
    out: list[Lane] = []
    for k in np.argsort(-hist):
        if hist[k] < min_px:
            break
        if k > 0 and hist[k - 1] > hist[k] or k + 1 < len(hist) and hist[k + 1] > hist[k]:
            continue
        sel = np.abs(ang - (edges[k] + 0.5)) <= 1.5
        ys, xs = py[sel], px[sel]
        if len(ys) < min_px or np.ptp(ys) < 0.1 * (h - y_roi):
            continue
        rows = np.unique((ys // max(2, int(0.02 * h))).astype(int))
        if len(rows) < 3:
            continue
        # Line through the VP and the pixels (least squares on the slope only).
        dy = ys - vp[1]
        s = float(np.sum((xs - vp[0]) * dy) / np.sum(dy * dy))
        ln = Lane((s, vp[0] - s * vp[1]), float(ys.min()), float(h - 1), int(sel.sum()))
        if all(not _same_line(ln, o, w) for o in known + out):
            out.append(ln)
    return out


def _merge_duplicates(lanes: list[Lane], w: int) -> list[Lane]:
    """Two fits of one painted line (its two edges, or a part of it) run within a few pixels of each other
    over their common rows: keep the better supported one."""
    out: list[Lane] = []
    for ln in sorted(lanes, key=lambda ln: -ln.support):
        if all(not _same_line(ln, o, w) for o in out):
            out.append(ln)
    return out


def _same_line(a: Lane, b: Lane, w: int) -> bool:
    y0, y1 = max(a.y_top, b.y_top), min(a.y_bottom, b.y_bottom)
    if y1 <= y0:
        return False
    ys = np.linspace(y0, y1, 12)
    return float(np.median(np.abs(a.x_at(ys) - b.x_at(ys)))) < 0.02 * w


def check_plausible(
    found: LaneFinding, h: int, w: int, previous: LaneFinding | None = None, max_jump: float = 0.05
) -> LaneFinding:
    """Set ``found.accepted`` / ``reason``: >= 1 lane each side, sane ego width, no crossings, VP, no jump.

    ``previous`` is the last accepted finding of the same video; the ego lines may move at most
    ``max_jump * w`` at the bottom row between the two.
    """
    lanes = found.lanes
    xb = np.array([float(ln.x_at(h - 1)) for ln in lanes])
    left = [i for i, ln in enumerate(lanes) if xb[i] < w / 2 and _slope(ln, h) < 0]
    right = [i for i, ln in enumerate(lanes) if xb[i] >= w / 2 and _slope(ln, h) > 0]
    found.accepted, found.ego = False, None
    if len(lanes) < 2 or not left or not right:
        found.reason = f"need a lane on each side (found {len(left)} left, {len(right)} right)"
        return found
    if len(left) + len(right) != len(lanes):
        found.reason = "a lane slopes the wrong way for its side"
        return found
    il, ir = left[-1], right[0]
    width = xb[ir] - xb[il]
    if not 0.3 * w <= width <= 1.3 * w:
        found.reason = f"ego lane width {width / w:.2f} of the image width"
        return found
    for i in range(len(lanes)):
        for j in range(i + 1, len(lanes)):
            y0 = max(lanes[i].y_top, lanes[j].y_top)
            ys = np.linspace(y0, h - 1, 16)
            d = lanes[j].x_at(ys) - lanes[i].x_at(ys)
            if d.min() <= 0.004 * w:
                found.reason = "lanes cross or touch"
                return found
    vp = _intersection(lanes[il], lanes[ir], h)
    if vp is None or not (0.3 * h <= vp[1] <= HORIZON_FRAC * h + 0.05 * h and 0.25 * w <= vp[0] <= 0.75 * w):
        found.reason = f"vanishing point implausible: {vp}"
        return found
    if previous is not None and previous.ego is not None:
        pl, pr = previous.lanes[previous.ego[0]], previous.lanes[previous.ego[1]]
        jump = max(abs(xb[il] - float(pl.x_at(h - 1))), abs(xb[ir] - float(pr.x_at(h - 1))))
        if jump > max_jump * w:
            found.reason = f"ego lines jumped {jump:.0f} px since the last accepted frame"
            return found
    found.accepted, found.ego, found.reason = True, (il, ir), "ok"
    return found


def _slope(lane: Lane, h: int) -> float:
    """dx/dy near the bottom of the lane."""
    y = lane.y_bottom
    return float(lane.x_at(y) - lane.x_at(y - 0.1 * h))


def _intersection(a: Lane, b: Lane, h: int) -> tuple[float, float] | None:
    """Where the straight tangents of two lanes (taken over their lower halves) meet."""

    def line(ln: Lane) -> tuple[float, float]:
        y1, y2 = ln.y_bottom, (ln.y_top + ln.y_bottom) / 2
        x1, x2 = float(ln.x_at(y1)), float(ln.x_at(y2))
        s = (x1 - x2) / max(1e-6, y1 - y2)
        return s, x1 - s * y1

    (sa, ba), (sb, bb) = line(a), line(b)
    if abs(sa - sb) < 1e-6:
        return None
    y = (bb - ba) / (sa - sb)
    return sa * y + ba, y


def line_width(w: int) -> int:
    """Drawn lane width in pixels for an image ``w`` pixels wide (8 px at 1280)."""
    return max(2, int(round(LINE_WIDTH_AT_1280 * w / 1280)))


def draw_lanes(lanes: list[Lane], h: int, w: int, thickness: int | None = None) -> np.ndarray:
    """Render lanes as a uint8 mask (0 background, 255 lane) of size ``h x w``.

    >>> m = draw_lanes([Lane((0.0, 50.0), 10.0, 99.0, 1)], 100, 100, thickness=3)
    >>> int(m[50, 50]), int(m[50, 60])
    (255, 0)
    """
    out = np.zeros((h, w), np.uint8)
    t = thickness or line_width(w)
    for ln in lanes:
        ys = np.arange(ln.y_top, ln.y_bottom + 1, 2.0)
        pts = np.stack([ln.x_at(ys), ys], 1)
        cv2.polylines(out, [np.round(pts).astype(np.int32)], False, 255, t, cv2.LINE_8)
    return out


def overlay(rgb: np.ndarray, lane_mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 255)) -> np.ndarray:
    """The image with lane pixels painted in ``colour`` (for contact sheets)."""
    out = rgb.copy()
    out[lane_mask > 0] = colour
    return out
