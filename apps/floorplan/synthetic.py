"""Generated rectilinear floor plans with exact masks (made by the project, not third-party data).

Thick outer and inner walls from a random binary space partition, doors as wall gaps with a leaf and a
swing arc, windows on outer walls, room names, furniture outlines, dimension lines and noise. The
boundary mask (0 background, 1 wall, 2 door/window) and room mask (R3D room ids) come from the same
geometry that draws the image, so they are exact.

>>> plan = synthetic_plan(np.random.default_rng(0), (320, 320))
>>> plan.image.shape, int(plan.boundary.max()), len(plan.rooms) >= 2
((320, 320, 3), 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from polyhead.apps.floorplan.model import ROOM_CLASSES

LABELS = {1: "CLOSET", 2: "BATH", 3: "LIVING", 4: "BEDROOM", 5: "HALL", 6: "BALCONY"}
ALT_LABELS = {1: "WIC", 2: "WC", 3: "KITCHEN", 4: "BED", 5: "ENTRY", 6: "TERRACE"}


@dataclass
class Room:
    type_id: int
    cell: tuple[int, int, int, int]  # x0, y0, x1, y1 of the wall centre-lines around it
    area_px: int = 0

    @property
    def type(self) -> str:
        return ROOM_CLASSES[self.type_id]


@dataclass
class Plan:
    image: np.ndarray  # RGB uint8
    boundary: np.ndarray  # uint8 0/1/2
    room: np.ndarray  # uint8 room ids
    rooms: list[Room] = field(default_factory=list)
    doors: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1 of each gap
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)


def _split(rng: np.random.Generator, cell, min_side: int, depth: int = 0) -> list[tuple[int, int, int, int]]:
    x0, y0, x1, y1 = cell
    w, h = x1 - x0, y1 - y0
    can_v, can_h = w >= 2 * min_side, h >= 2 * min_side
    if depth >= 2 and (not (can_v or can_h) or rng.random() < 0.25 + 0.1 * depth):
        return [cell]
    if not (can_v or can_h):
        return [cell]
    vertical = can_v and (not can_h or w > h or (w == h and rng.random() < 0.5))
    if vertical:
        x = int(rng.integers(x0 + min_side, x1 - min_side + 1))
        return _split(rng, (x0, y0, x, y1), min_side, depth + 1) + _split(rng, (x, y0, x1, y1), min_side, depth + 1)
    y = int(rng.integers(y0 + min_side, y1 - min_side + 1))
    return _split(rng, (x0, y0, x1, y), min_side, depth + 1) + _split(rng, (x0, y, x1, y1), min_side, depth + 1)


def _box(mask: np.ndarray, x0: float, y0: float, x1: float, y1: float, value) -> None:
    """Fill pixels whose centres lie in [x0, x1) x [y0, y1) (integer bounds, clipped)."""
    h, w = mask.shape[:2]
    xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
    ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
    if xa < xb and ya < yb:
        mask[ya:yb, xa:xb] = value


def synthetic_plan(
    rng: np.random.Generator, size: tuple[int, int] = (384, 384), clutter: bool = True, text: bool = True
) -> Plan:
    """One random plan of ``size = (h, w)`` with exact boundary and room masks."""
    h, w = size
    m = int(min(h, w) * rng.uniform(0.08, 0.14))
    outer = (m, m, int(w - m * rng.uniform(1.0, 1.5)), int(h - m * rng.uniform(1.0, 1.5)))
    t_out = max(3, int(round(min(h, w) * rng.uniform(0.016, 0.026))))
    t_in = max(2, int(round(t_out * rng.uniform(0.5, 0.8))))
    min_side = max(int(min(h, w) * 0.16), 6 * t_out)
    cells = _split(rng, outer, min_side)
    boundary = np.zeros((h, w), np.uint8)
    room = np.zeros((h, w), np.uint8)
    types = rng.choice([1, 2, 3, 4, 5, 6], size=len(cells), p=[0.1, 0.2, 0.25, 0.25, 0.12, 0.08])
    if 3 not in types:
        types[int(np.argmax([(c[2] - c[0]) * (c[3] - c[1]) for c in cells]))] = 3
    for (x0, y0, x1, y1), t in zip(cells, types, strict=True):
        _box(room, x0, y0, x1, y1, int(t))
    # walls: every cell edge; edges on the outer rectangle are thicker
    ox0, oy0, ox1, oy1 = outer
    segments = []  # (x0, y0, x1, y1, thickness, is_outer) of wall rectangles
    for x0, y0, x1, y1 in cells:
        for a, b, c, d in ((x0, y0, x1, y0), (x0, y1, x1, y1), (x0, y0, x0, y1), (x1, y0, x1, y1)):
            is_outer = (a == c and a in (ox0, ox1)) or (b == d and b in (oy0, oy1))
            t = t_out if is_outer else t_in
            half = t / 2
            rect = (a - half, b - half, c + half, d + half)
            segments.append((*rect, t, is_outer, (a, b, c, d)))
            _box(boundary, *rect, 1)
    plan = Plan(np.zeros((h, w, 3), np.uint8), boundary, room)
    # doors between adjacent cells
    gap = max(int(min(h, w) * rng.uniform(0.06, 0.08)), 3 * t_out)
    arcs = []
    for i, a in enumerate(cells):
        for b in cells[i + 1 :]:
            for vertical in (True, False):
                if vertical and a[2] == b[0] or vertical and b[2] == a[0]:
                    x = a[2] if a[2] == b[0] else a[0]
                    lo, hi = max(a[1], b[1]), min(a[3], b[3])
                elif not vertical and (a[3] == b[1] or b[3] == a[1]):
                    x = a[3] if a[3] == b[1] else a[1]
                    lo, hi = max(a[0], b[0]), min(a[2], b[2])
                else:
                    continue
                if hi - lo < gap + 4 * t_out or rng.random() < 0.2:
                    continue
                s = int(rng.integers(lo + 2 * t_out, hi - gap - 2 * t_out + 1))
                half = t_in / 2 + 1
                rect = (x - half, s, x + half, s + gap) if vertical else (s, x - half, s + gap, x + half)
                _box(boundary, *rect, 2)
                plan.doors.append(tuple(int(round(v)) for v in rect))
                arcs.append((vertical, x, s, gap, rng.random() < 0.5))
    # windows on outer walls
    for seg in segments:
        x0, y0, x1, y1, t, is_outer, (a, b, c, d) = seg
        length = max(c - a, d - b)
        wl = int(length * rng.uniform(0.3, 0.5))
        if not is_outer or length < wl + 6 * t_out or rng.random() < 0.3:
            continue
        s = int(rng.integers(2 * t_out, length - wl - 2 * t_out + 1))
        rect = (a - t / 2, b + s, a + t / 2, b + s + wl) if a == c else (a + s, b - t / 2, a + s + wl, b + t / 2)
        # a window must not take a corner or a door
        sub = boundary[int(round(rect[1])) : int(round(rect[3])), int(round(rect[0])) : int(round(rect[2]))]
        if sub.size and (sub == 1).all():
            _box(boundary, *rect, 2)
            plan.windows.append(tuple(int(round(v)) for v in rect))
    room[boundary > 0] = 0  # rooms are the floor between walls
    for (x0, y0, x1, y1), t in zip(cells, types, strict=True):
        cell_mask = np.zeros((h, w), bool)
        _box(cell_mask, x0, y0, x1, y1, True)
        plan.rooms.append(Room(int(t), (x0, y0, x1, y1), int((cell_mask & (room == t)).sum())))
    plan.image = _draw(rng, plan, arcs, t_in, clutter, text)
    return plan


def _draw(rng: np.random.Generator, plan: Plan, arcs, t_in: int, clutter: bool, text: bool) -> np.ndarray:
    h, w = plan.boundary.shape
    paper = np.array([255, 255, 255]) - rng.integers(0, 12, 3)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = paper
    if rng.random() < 0.4:  # tinted floors per room type, as some listings draw them
        tints = {k: paper - rng.integers(0, 40, 3) for k in range(1, 7)}
        for k, c in tints.items():
            img[plan.room == k] = c
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    style = rng.choice(["solid", "grey", "outline"])
    wall = plan.boundary == 1
    if style == "solid":
        img[wall] = ink
    elif style == "grey":
        img[wall] = tuple(int(v) for v in rng.integers(90, 150, 3))
    else:
        img[wall] = paper - 60
        edge = wall & ~cv2.erode(wall.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        img[edge] = ink
    lw = 1
    for x0, y0, x1, y1 in plan.windows:  # window: frame + glass line(s)
        img[y0:y1, x0:x1] = paper
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), ink, lw)
        if x1 - x0 > y1 - y0:
            cv2.line(img, (x0, (y0 + y1) // 2), (x1 - 1, (y0 + y1) // 2), ink, lw)
        else:
            cv2.line(img, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1 - 1), ink, lw)
    for (x0, y0, x1, y1), (vertical, x, s, gap, flip) in zip(plan.doors, arcs, strict=True):
        img[y0:y1, x0:x1] = paper
        side = 1 if flip else -1
        if vertical:  # hinge at (x, s); leaf swings into one room
            hinge = (int(x), int(s))
            tip = (int(x + side * gap), int(s))
            angles = (0, 90) if side > 0 else (90, 180)
        else:
            hinge = (int(s), int(x))
            tip = (int(s), int(x + side * gap))
            angles = (0, 90) if side > 0 else (270, 360)
        cv2.line(img, hinge, tip, ink, lw)
        cv2.ellipse(img, hinge, (gap, gap), 0, angles[0], angles[1], ink, 1)
    if clutter:
        grey = tuple(int(v) for v in rng.integers(110, 180, 3))
        for r in plan.rooms:  # furniture outlines inside rooms
            x0, y0, x1, y1 = r.cell
            if rng.random() < 0.6 and x1 - x0 > 40 and y1 - y0 > 40:
                fw, fh = int((x1 - x0) * rng.uniform(0.2, 0.4)), int((y1 - y0) * rng.uniform(0.2, 0.4))
                fx = int(rng.integers(x0 + 3 * t_in, max(x0 + 3 * t_in + 1, x1 - fw - 3 * t_in)))
                fy = int(rng.integers(y0 + 3 * t_in, max(y0 + 3 * t_in + 1, y1 - fh - 3 * t_in)))
                if rng.random() < 0.5:
                    cv2.rectangle(img, (fx, fy), (fx + fw, fy + fh), grey, 1)
                else:
                    cv2.ellipse(img, (fx + fw // 2, fy + fh // 2), (fw // 2, fh // 2), 0, 0, 360, grey, 1)
        ys, xs = np.nonzero(plan.boundary)
        if len(xs):  # a dimension line above the plan
            y = max(2, int(ys.min()) - 10)
            cv2.line(img, (int(xs.min()), y), (int(xs.max()), y), grey, 1)
            for x in (int(xs.min()), int(xs.max())):
                cv2.line(img, (x, y - 4), (x, y + 4), grey, 1)
            if text:
                cv2.putText(
                    img,
                    f"{rng.integers(8, 20)}.{rng.integers(0, 10)} m",
                    ((int(xs.min()) + int(xs.max())) // 2 - 15, max(8, y - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.3,
                    grey,
                    1,
                    cv2.LINE_AA,
                )
    if text:
        for r in plan.rooms:
            x0, y0, x1, y1 = r.cell
            label = (LABELS if rng.random() < 0.6 else ALT_LABELS)[r.type_id]
            scale = float(rng.uniform(0.28, 0.4))
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            if tw < (x1 - x0) - 4 * t_in:
                org = ((x0 + x1 - tw) // 2, (y0 + y1 + th) // 2)
                cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(0, 5), img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def write_r3d_dataset(root: str | Path, n: int = 12, size: tuple[int, int] = (256, 256), seed: int = 0) -> Path:
    """Generated plans in the R3D layout (``N.jpg``, ``N_wall.png``, ``N_close.png``, ``N_rooms.png``)
    plus a dataset YAML; returns the YAML's path."""
    from polyhead.apps.floorplan.data import ROOM_COLOURS

    root = Path(root)
    folder = root / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = np.array(ROOM_COLOURS, np.uint8)
    for i in range(n):
        p = synthetic_plan(rng, size)
        cv2.imwrite(str(folder / f"{i}.jpg"), p.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(folder / f"{i}_wall.png"), (p.boundary == 1).astype(np.uint8) * 255)
        cv2.imwrite(str(folder / f"{i}_close.png"), (p.boundary == 2).astype(np.uint8) * 255)
        cv2.imwrite(str(folder / f"{i}_rooms.png"), palette[p.room][..., ::-1])
    yaml_path = root / "floorplan.yaml"
    yaml_path.write_text(f"format: r3d\npath: plans\nval_count: {max(1, n // 5)}\nseed: 0\n")
    return yaml_path


#: printed room names per R3D room id, as listings write them (for :func:`labelled_plan`)
PRINTED_NAMES = {
    1: ["Closet", "Wardrobe", "Storage", "Store", "Walk-in Closet"],
    2: ["Bathroom", "Bath", "WC", "Shower Room", "En-suite"],
    3: ["Kitchen", "Living Room", "Lounge", "Dining Room", "Reception", "Kitchen/Dining"],
    4: ["Bedroom", "Bedroom 2", "Master Bedroom", "Bed 3"],
    5: ["Hall", "Entrance Hall", "Landing", "Corridor", "Entry"],
    6: ["Balcony", "Terrace", "Roof Terrace"],
}
#: the font the labelled plans print with: DejaVu Sans, shipped inside the matplotlib wheel
FONT_NAME = "DejaVuSans.ttf"


@dataclass
class LabelledPlan:
    """A generated plan with printed room names and dimension strings, and the truth behind them."""

    plan: Plan
    px_per_m: float
    labels: list[dict] = field(default_factory=list)  # room index, name, dims text, dims in m, box
    gross_text: str = ""

    @property
    def image(self) -> np.ndarray:
        return self.plan.image


def format_length(metres: float, unit: str) -> str:
    """``4.953, "ft"`` -> ``16'3``; ``"m"`` -> ``4.95``.

    >>> format_length(4.953, "ft"), format_length(3.4712, "m")
    ("16'3", '3.47')
    """
    if unit == "m":
        return f"{metres:.2f}"
    inches = round(metres / 0.0254)
    return f"{inches // 12}'{inches % 12}"


def labelled_plan(
    rng: np.random.Generator, size: tuple[int, int] = (640, 640), font_px: int | None = None
) -> LabelledPlan:
    """A plan from :func:`synthetic_plan` printed the way estate-agent plans are: a room name and its
    inner size ("4.96 x 3.47m", "16'3 x 11'5", "(4.9m x 3.5m)") centred in each room that fits them,
    the gross area in the margin; ``px_per_m`` is the truth the dimension strings were printed from.

    >>> lp = labelled_plan(np.random.default_rng(0), (480, 480))
    >>> lp.px_per_m > 0 and all(lab["name"] for lab in lp.labels)
    True
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    plan = synthetic_plan(rng, size, clutter=False, text=False)
    h, w = size
    ppm = float(min(h, w) / rng.uniform(9.0, 16.0))  # the plan spans 9-16 m
    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_NAME
    fpx = font_px or max(10, int(round(min(h, w) / 48)))
    font = ImageFont.truetype(str(font_path), fpx)
    img = Image.fromarray(plan.image)
    draw = ImageDraw.Draw(img)
    out = LabelledPlan(plan, ppm)
    style = rng.choice(["m", "m_units", "ft", "ft_m"])
    for i, r in enumerate(plan.rooms):
        x0, y0, x1, y1 = r.cell
        ys, xs = np.nonzero(plan.room[y0:y1, x0:x1] == r.type_id)
        if not len(xs):
            continue
        wm, hm = (xs.max() - xs.min() + 1) / ppm, (ys.max() - ys.min() + 1) / ppm
        name = str(rng.choice(PRINTED_NAMES[r.type_id]))
        name = name.upper() if rng.random() < 0.5 else name
        a, b = format_length(wm, "m"), format_length(hm, "m")
        if style == "m":
            dims = [f"{a} x {b}"]
        elif style == "m_units":
            dims = [f"{a}m x {b}m"]
        elif style == "ft":
            dims = [f"{format_length(wm, 'ft')} x {format_length(hm, 'ft')}"]
        else:
            dims = [f"{format_length(wm, 'ft')} x {format_length(hm, 'ft')}", f"({wm:.1f}m x {hm:.1f}m)"]
        lines = [name, *dims]
        boxes = [draw.textbbox((0, 0), t, font=font) for t in lines]
        tw = max(bx[2] - bx[0] for bx in boxes)
        lh = fpx + 3
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if tw > (x1 - x0) - 6 * fpx / 10 or lh * len(lines) > (y1 - y0) * 0.8:
            continue
        top = cy - lh * len(lines) / 2
        for k, t in enumerate(lines):
            bw = boxes[k][2] - boxes[k][0]
            draw.text((cx - bw / 2, top + k * lh), t, fill=(20, 20, 20), font=font)
        out.labels.append(
            {
                "room": i,
                "type": r.type,
                "name": name,
                "dims": dims,
                "size_m": (round(wm, 3), round(hm, 3)),
                "box": [cx - tw / 2, top, cx + tw / 2, top + lh * len(lines)],
            }
        )
    area = sum(r.area_px for r in plan.rooms) / ppm**2
    out.gross_text = f"Gross internal area {area:.1f} m2 / {area * 10.7639:.0f} sq ft"
    draw.text((4, 2), out.gross_text, fill=(20, 20, 20), font=font)
    out.plan.image = np.asarray(img).copy()
    return out
