"""Masks -> vectors: walls (outline polygons and centre-lines with thickness), door and window segments,
one polygon per room with its type and area; JSON, SVG and a 3D mesh (extruded walls with openings,
room floors).

>>> from polyhead.apps.floorplan.synthetic import synthetic_plan
>>> plan = synthetic_plan(np.random.default_rng(0), (320, 320))
>>> result = vectorise(plan.boundary, plan.room, scale=40.0)
>>> len(result.rooms) == len(plan.rooms)
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from polyhead.apps.floorplan.geometry import (
    WALL_HEIGHT,
    neighbours,
    plan_mesh,
    room_polygon,
    rooms_geojson,
    write_mesh_file,
)
from polyhead.apps.floorplan.model import ROOM_CLASSES, ROOM_RGB

WALL_RGB, DOOR_RGB, WINDOW_RGB = (40, 40, 40), (255, 60, 128), (40, 140, 255)
#: wall thickness assumed when no scale is known (to size the 3D model only; areas stay in px)
ASSUMED_WALL_M = 0.2


@dataclass
class FloorplanResult:
    """Vectorised plan in original image pixels (and metres when ``scale`` px/m is known: given by the
    user, or estimated from the dimension strings printed in the rooms, see :func:`apply_text`)."""

    size: tuple[int, int]  # (h, w) of the original image
    scale: float | None = None
    rooms: list[dict] = field(default_factory=list)
    walls: list[dict] = field(default_factory=list)
    openings: list[dict] = field(default_factory=list)
    wall_outlines: list[list[list[float]]] = field(default_factory=list)
    boundary: np.ndarray | None = None  # masks at the working resolution (not in JSON)
    room_mask: np.ndarray | None = None
    room_ids: np.ndarray | None = None  # room id + 1 per pixel at the working resolution (0: no room)
    wall_thickness_px: float = 0.0
    mesh: bool = False  # batch predict also writes the 3-D model
    scale_info: dict = field(default_factory=dict)  # JSON "scale": where the scale came from, its support
    text: dict = field(default_factory=lambda: {"status": "off"})  # JSON "text": OCR lines, gross area
    shares: list[dict] = field(default_factory=list)  # per room: the network's vote share per type
    unit: float = 1.0  # original pixels per pixel of the working masks

    def artifacts(self) -> dict:
        """The files batch predict writes beside the overlay and JSON: ``.svg`` and ``.geojson`` always,
        ``.glb`` + ``.ply`` (one mesh built for both) when the mesh was asked for and the plan has walls or rooms."""
        import json

        out: dict = {".svg": self.to_svg().encode(), ".geojson": json.dumps(self.to_geojson()).encode()}
        if self.mesh and (self.rooms or self.walls):
            built: list = []

            def mesh():
                if not built:
                    built.append(self.to_mesh())
                return built[0]

            out[".glb"] = lambda path: write_glb(path, mesh())
            out[".ply"] = lambda path: write_mesh_file(path, mesh())
        return out

    @classmethod
    def empty(cls, size: tuple[int, int], scale: float | None = None) -> FloorplanResult:
        result = cls(tuple(size))
        result.apply_scale(scale, "user" if scale else None)
        return result

    def apply_scale(self, scale: float | None, source: str | None, **info) -> None:
        """Use ``scale`` px/m (None: unknown) for every metric figure; ``source`` is ``"user"`` or
        ``"dimensions"``; ``info`` (support, spread, ...) goes into the JSON's ``scale``."""
        self.scale = float(scale) if scale else None
        self.scale_info = {"px_per_m": self.scale, "source": source if self.scale else None, **info}
        s = self.scale
        for r in self.rooms:
            r["area_m2"] = round(r["area_px"] / s**2, 2) if s else None
        for w in self.walls:
            w["length_m"] = round(w["length_px"] / s, 2) if s else None
        for o in self.openings:
            o["width_m"] = round(o["width_px"] / s, 2) if s else None

    # ------------------------------------------------------------ serialisation
    def to_json(self) -> dict:
        area_px = sum(r["area_px"] for r in self.rooms)
        doc = {
            "image_size": {"width": int(self.size[1]), "height": int(self.size[0])},
            "scale_px_per_m": self.scale,
            "rooms": self.rooms,
            "walls": self.walls,
            "openings": self.openings,
            "wall_outlines": self.wall_outlines,
            "scale": self.scale_info or {"px_per_m": self.scale, "source": "user" if self.scale else None},
            "text": self.text,
            "totals": {
                "rooms": len(self.rooms),
                "walls": len(self.walls),
                "doors": sum(o["kind"] == "door" for o in self.openings),
                "windows": sum(o["kind"] == "window" for o in self.openings),
                "area_px": int(area_px),
                "area_m2": round(area_px / self.scale**2, 2) if self.scale else None,
            },
        }
        return doc

    def to_geojson(self) -> dict:
        """The rooms as a GeoJSON FeatureCollection (image pixels; properties type, area_m2, text, ...)."""
        return rooms_geojson(self.rooms, self.scale, self.size)

    def to_svg(self) -> str:
        """The vectors as a standalone SVG in image pixels (rooms filled by type, walls, openings, labels)."""
        h, w = self.size
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
        ]
        for r in self.rooms:
            rgb = ROOM_RGB[ROOM_CLASSES.index(r["type"])]
            out.append(
                f'<polygon class="room {r["type"]}" points="{_pts(r["polygon"])}" '
                f'fill="rgb{rgb}" stroke="#888" stroke-width="1"/>'
            )
        for poly in self.wall_outlines:
            out.append(f'<polygon class="wall" points="{_pts(poly)}" fill="rgb{WALL_RGB}"/>')
        for o in self.openings:
            (x1, y1), (x2, y2) = o["segment"]
            rgb = DOOR_RGB if o["kind"] == "door" else WINDOW_RGB
            out.append(
                f'<line class="{o["kind"]}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="rgb{rgb}" '
                f'stroke-width="{max(2.0, o["thickness_px"]):.1f}"/>'
            )
        for r in self.rooms:
            cx, cy = r["centroid"]
            label = r["type"].replace("_", "/") + (f" {r['area_m2']:.1f} m²" if r.get("area_m2") else "")
            out.append(f'<text x="{cx}" y="{cy}" font-size="{max(8, w // 60)}" text-anchor="middle">{label}</text>')
        out.append("</svg>")
        return "\n".join(out)

    def plot(self, image: np.ndarray) -> np.ndarray:
        """Rooms coloured by type, walls dark, doors pink, windows blue, room labels; legend bottom-left."""
        from polyhead.viz import draw_legend

        img = image[..., :3].copy() if image.ndim == 3 else np.stack([image] * 3, -1)
        h, w = img.shape[:2]
        if self.room_mask is not None and self.boundary is not None:
            room = cv2.resize(self.room_mask, (w, h), interpolation=cv2.INTER_NEAREST)
            bnd = cv2.resize(self.boundary, (w, h), interpolation=cv2.INTER_NEAREST)
            colour = np.array(ROOM_RGB, np.uint8)[room]
            sel = room > 0
            img[sel] = (0.45 * img[sel] + 0.55 * colour[sel]).astype(np.uint8)
            img[bnd == 1] = (0.3 * img[bnd == 1] + 0.7 * np.array(WALL_RGB)).astype(np.uint8)
        for o in self.openings:
            (x1, y1), (x2, y2) = o["segment"]
            rgb = DOOR_RGB if o["kind"] == "door" else WINDOW_RGB
            cv2.line(img, (round(x1), round(y1)), (round(x2), round(y2)), rgb, max(2, round(o["thickness_px"])))
        fs = max(0.3, min(w, h) / 1400)
        for r in self.rooms:
            pts = np.round(np.array(r["polygon"])).astype(np.int32)
            cv2.polylines(img, [pts], True, (90, 90, 90), 1, cv2.LINE_AA)
            cx, cy = (round(v) for v in r["centroid"])
            text = r["type"].split("_")[0] + (f" {r['area_m2']:.1f}m2" if r.get("area_m2") else "")
            cv2.putText(img, text, (cx - 20, cy), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), 1, cv2.LINE_AA)
        items = [(n.split("_")[0], ROOM_RGB[i]) for i, n in enumerate(ROOM_CLASSES) if i]
        return draw_legend(img, [*items, ("wall", WALL_RGB), ("door", DOOR_RGB), ("window", WINDOW_RGB)])

    # ------------------------------------------------------------ 3D
    def to_mesh(self, wall_height_m: float = WALL_HEIGHT):
        """The plan in 3-D as a ``trimesh.Trimesh`` (:func:`geometry.plan_mesh`): walls extruded to
        ``wall_height_m``; over doors only a lintel (from 2.1 m), over windows a sill (to 0.9 m) and a
        lintel; each room's floor (with its holes) coloured by type.

        Units are metres when ``scale`` is known, else the scale is estimated from the wall thickness
        (walls assumed 0.2 m). Axes: x right, y up, z towards the viewer (image rows).
        """
        ppm = self.scale or max(1e-6, self.wall_thickness_px / ASSUMED_WALL_M if self.wall_thickness_px else 50.0)
        grey = np.clip(np.array(WALL_RGB) / 255 + 0.45, 0, 1)
        floors = [
            (room_polygon(r["polygon"], r.get("holes", ())), np.array(ROOM_RGB[ROOM_CLASSES.index(r["type"])]) / 255)
            for r in self.rooms
        ]
        return plan_mesh(self.walls, self.openings, floors, ppm, grey, wall_height_m)


def _pts(poly) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in poly)


def write_glb(path: str | Path, mesh) -> Path:
    """A binary glTF 2.0 of a trimesh mesh (positions, normals, vertex colours), written atomically;
    trimesh's exporter replaces the hand-written one this module had."""
    if Path(path).suffix.lower() != ".glb":
        raise ValueError(f"{path}: a .glb path is needed")
    return write_mesh_file(path, mesh)


def write_mesh_files(result: FloorplanResult, stem: str | Path, formats=("glb", "ply")) -> list[Path]:
    """``<stem>.glb`` / ``.ply`` / ``.obj`` of ``result``'s mesh (built once), each written atomically."""
    mesh = result.to_mesh()
    return [write_mesh_file(Path(f"{stem}.{fmt}"), mesh) for fmt in formats]


# ---------------------------------------------------------------- vectorisation
def _components(mask: np.ndarray, connectivity: int = 4):
    n, labels, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=connectivity)
    return n, labels, stats, cent


def wall_thickness(boundary_any: np.ndarray) -> float:
    """Typical wall thickness in px: twice the median distance-to-background on the wall skeleton."""
    if not boundary_any.any():
        return 0.0
    from skimage.morphology import skeletonize

    dist = cv2.distanceTransform(boundary_any.astype(np.uint8), cv2.DIST_L2, 3)
    skel = skeletonize(boundary_any)
    limit = 0.1 * min(boundary_any.shape)  # a page that is all "wall" (e.g. an untrained model)
    vals = np.minimum(dist[skel].astype(np.float64), limit)
    return min(2 * float(np.median(vals)), limit) if len(vals) else 1.0


def _axis_segments(mask: np.ndarray, k: int, min_len: float) -> list[dict]:
    """Horizontal and vertical runs of ``mask`` longer than ``k`` -> centre-line segments with thickness."""
    segs = []
    for horizontal in (True, False):
        kernel = np.ones((1, k) if horizontal else (k, 1), np.uint8)
        runs = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        n, labels, stats, _ = _components(runs, 8)
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            length, thick = (w, area / max(w, 1)) if horizontal else (h, area / max(h, 1))
            if length < min_len:
                continue
            if horizontal:
                ys = np.nonzero(labels[y : y + h, x : x + w] == i)[0] + y
                yc = float(ys.mean()) + 0.5
                line = [[float(x), yc], [float(x + w), yc]]
            else:
                xs = np.nonzero(labels[y : y + h, x : x + w] == i)[1] + x
                xc = float(xs.mean()) + 0.5
                line = [[xc, float(y)], [xc, float(y + h)]]
            segs.append({"centreline": line, "thickness_px": float(thick), "length_px": float(length)})
    return segs


def _opening_segments(mask: np.ndarray, min_area: int) -> list[dict]:
    """Each door/window blob -> its long axis (min-area rectangle) as a segment with thickness."""
    out = []
    n, labels, stats, _ = _components(mask, 8)
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            continue
        ys, xs = np.nonzero(labels == i)
        (cx, cy), (rw, rh), ang = cv2.minAreaRect(np.c_[xs, ys].astype(np.float32))
        rw, rh = rw + 1, rh + 1
        a = np.deg2rad(ang if rw >= rh else ang + 90)
        length, thick = max(rw, rh), min(rw, rh)
        dx, dy = np.cos(a) * length / 2, np.sin(a) * length / 2
        cx, cy = cx + 0.5, cy + 0.5
        out.append(
            {
                "segment": [[cx - dx, cy - dy], [cx + dx, cy + dy]],
                "width_px": float(length),
                "thickness_px": float(thick),
                "label": i,
            }
        )
    return out, labels


def vectorise(
    boundary: np.ndarray,
    room: np.ndarray,
    scale: float | None = None,
    unit: float = 1.0,
    original_size: tuple[int, int] | None = None,
    min_room_frac: float = 0.002,
) -> FloorplanResult:
    """Boundary ids (0/1/2) + room ids -> :class:`FloorplanResult`.

    Rooms are the 4-connected regions of free space (not wall, door or window) whose pixels vote
    mostly for a room type (regions voting background, e.g. outside the plan, are dropped); each
    room's area is its pixel count. ``unit`` multiplies coordinates (pixels of a downscaled
    working image -> original pixels); ``scale`` (original px per metre) adds m².
    """
    boundary = np.asarray(boundary, np.uint8)
    room = np.asarray(room, np.uint8)
    h, w = boundary.shape
    size = tuple(original_size or (h, w))
    result = FloorplanResult(size, boundary=boundary, room_mask=room)
    result.apply_scale(scale, "user" if scale else None)
    solid = boundary > 0
    if not solid.any() and not (room > 0).any():
        return result
    u = float(unit)
    thick = wall_thickness(solid)
    result.wall_thickness_px = thick * u
    result.unit = u

    def px(pt) -> list[float]:
        return [round(float(pt[0]) * u, 1), round(float(pt[1]) * u, 1)]

    # rooms: regions of free space, after closing small gaps in the predicted walls
    min_area = max(16, int(min_room_frac * h * w))
    gap = int(max(3, round(1.5 * max(thick, 1.0))))
    closed = cv2.morphologyEx(solid.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((gap, gap), np.uint8)) > 0
    n, labels, stats, _ = _components(~closed, 4)
    n_types = len(ROOM_CLASSES)
    room = smooth_labels(room, n_types, int(max(5, round(3 * max(thick, 1.0)))) | 1)
    votes = np.zeros((n, n_types), np.int64)
    np.add.at(votes, (labels.ravel(), np.minimum(room.ravel(), n_types - 1)), 1)
    on_border = np.zeros(n, bool)
    on_border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    clean_room = np.zeros_like(room)
    room_ids = np.zeros(room.shape, np.int32)
    outside = np.zeros(n, bool)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < min_area:
            continue
        v = votes[i]
        typ = int(np.argmax(v[1:]) + 1)
        if v[1:].sum() < 0.5 * area:  # mostly background: outside the plan, or not a room
            outside[i] = True
            if on_border[i]:
                continue
        region = labels[y : y + bh, x : x + bw] == i
        if v[typ] >= 0.6 * v[1:].sum() and not on_border[i]:
            pieces = [(typ, region)]  # a closed region with one clear type: one room
        else:  # leaky walls or several types: one room per type component inside the region
            sub = room[y : y + bh, x : x + bw]
            pieces = []
            for t in range(1, n_types):
                m, lab, st, _ = _components(region & (sub == t), 4)
                pieces += [(t, lab == j) for j in range(1, m) if st[j, cv2.CC_STAT_AREA] >= 3 * min_area]
        for t, piece in pieces:
            room_area = int(piece.sum())
            if room_area < min_area:
                continue
            contours, hier = cv2.findContours(piece.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
            outer = [i for i in range(len(contours)) if hier[0][i][3] < 0]
            k_out = max(outer, key=lambda i: cv2.contourArea(contours[i]))
            c = contours[k_out]
            eps = max(1.0, 0.01 * cv2.arcLength(c, True))
            poly = cv2.approxPolyDP(c, eps, True).reshape(-1, 2).astype(np.float64) + [x, y]
            if len(poly) < 3:
                continue
            holes = []  # walls, columns or voids enclosed by the room
            for i in range(len(contours)):
                if hier[0][i][3] == k_out and cv2.contourArea(contours[i]) >= max(9.0, thick * thick):
                    ring = cv2.approxPolyDP(contours[i], max(1.0, eps / 2), True).reshape(-1, 2) + [x, y]
                    if len(ring) >= 3:
                        holes.append([px(p) for p in ring])
            shape = room_polygon([px(p) for p in poly], holes)
            if shape.is_empty:
                continue
            rid = len(result.rooms)
            clean_room[y : y + bh, x : x + bw][piece] = t
            room_ids[y : y + bh, x : x + bw][piece] = rid + 1
            ys, xs = np.nonzero(piece)
            area_px = float(room_area) * u * u
            sub_votes = room[y : y + bh, x : x + bw][piece]
            counts = np.bincount(sub_votes, minlength=n_types)[1:]
            total = max(1, int(counts.sum()))
            result.shares.append({ROOM_CLASSES[j + 1]: float(c_) / total for j, c_ in enumerate(counts) if c_})
            result.rooms.append(
                {
                    "id": rid,
                    "type": ROOM_CLASSES[t],
                    "network_type": ROOM_CLASSES[t],
                    "type_source": "network",
                    "text": [],
                    "polygon": [[round(a, 1), round(b, 1)] for a, b in shape.exterior.coords[:-1]],
                    "holes": [[[round(a, 1), round(b, 1)] for a, b in h.coords[:-1]] for h in shape.interiors],
                    "centroid": px((xs.mean() + x + 0.5, ys.mean() + y + 0.5)),
                    "size_px": [round((xs.max() - xs.min() + 1) * u, 1), round((ys.max() - ys.min() + 1) * u, 1)],
                    "area_px": round(area_px, 1),
                    "area_m2": None,
                    "confidence": round(float((sub_votes == t).mean()), 3),
                    "neighbours": [],
                }
            )
    result.room_mask = clean_room
    result.room_ids = room_ids
    shapes = [room_polygon(r["polygon"], r["holes"]) for r in result.rooms]
    for r, near in zip(result.rooms, neighbours(shapes, thick * u), strict=True):
        r["neighbours"] = near
    # walls: centre-lines of the wall class (openings are separate); outlines of walls + openings
    k = int(max(5, round(2.5 * max(thick, 1.0))))
    min_len = max(2.0, 1.2 * thick)
    for s in _axis_segments(boundary == 1, k, min_len):
        result.walls.append(
            {
                "centreline": [px(p) for p in s["centreline"]],
                "thickness_px": round(s["thickness_px"] * u, 1),
                "length_px": round(s["length_px"] * u, 1),
                "length_m": None,
            }
        )
    contours, _ = cv2.findContours(solid.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    for c in contours:
        if cv2.contourArea(c) >= 4:
            poly = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2)
            result.wall_outlines.append([px(p) for p in poly])
    # openings: windows touch the outside (exterior free space or the image border), doors do not
    segs, op_labels = _opening_segments(boundary == 2, max(4, int(0.25 * thick * thick)))
    exterior = np.isin(labels, np.nonzero(outside)[0]) | ((labels > 0) & _touches_border(labels))
    exterior &= ~solid & (clean_room == 0)
    ring = cv2.dilate(exterior.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, round(thick / 2))) > 0
    for s in segs:
        blob = op_labels == s.pop("label")
        if s["thickness_px"] > 3 * max(thick, 1.0) + 2:  # a wide blob is not an opening in a wall
            continue
        kind = "window" if (blob & ring).any() else "door"
        result.openings.append(
            {
                "kind": kind,
                "segment": [px(p) for p in s["segment"]],
                "width_px": round(s["width_px"] * u, 1),
                "width_m": None,
                "thickness_px": round(min(s["thickness_px"], 1.5 * max(thick, 1.0)) * u, 1),  # it sits in a wall
            }
        )
    result.apply_scale(scale, "user" if scale else None)
    return result


def smooth_labels(labels: np.ndarray, n: int, k: int) -> np.ndarray:
    """Majority label in a ``k x k`` window (removes speckle from the room-type prediction)."""
    if k <= 1 or not labels.any():
        return labels
    scores = np.stack([cv2.blur((labels == c).astype(np.float32), (k, k)) for c in range(n)])
    return scores.argmax(0).astype(labels.dtype)


def _touches_border(labels: np.ndarray) -> np.ndarray:
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


# ---------------------------------------------------------------- batch predict


# ---------------------------------------------------------------- printed text
#: dimension units in order of preference when a room prints several (metric is printed exactly)
_UNIT_RANK = {"m": 0, "none": 1, "ft": 2}
#: a lone length ("3.5m") counts for a room when one of its sides agrees with the pairs' scale this well
LONE_AGREEMENT = 0.1


def apply_text(result: FloorplanResult, lines, engine: str = "rapidocr", user_scale: bool = False) -> FloorplanResult:
    """Fuse the text read on the plan (``polyhead.ocr.TextLine`` objects, original pixels) into
    ``result``: each line belongs to the room whose polygon holds its centre; a room's words reweight
    its type (:func:`text.fuse_type`), its dimension string gives its size in metres, the rooms' sizes
    give the scale (:func:`text.estimate_scale`) unless the user gave one (``user_scale``: kept, the
    estimate reported beside it), and a printed gross area is reported as a cross-check.

    >>> from polyhead.ocr import TextLine
    >>> walls = np.pad(np.zeros((96, 96), np.uint8), 2, constant_values=1)  # one room, 96 px inside
    >>> r = vectorise(walls, np.pad(np.full((96, 96), 4, np.uint8), 2))  # the network says bedroom
    >>> r = apply_text(r, [TextLine("KITCHEN", (30, 40, 70, 50), 0.9), TextLine("4.80 x 4.80", (30, 52, 70, 60), 0.9)])
    >>> r.rooms[0]["type"], r.rooms[0]["type_source"], r.scale_info["source"], r.scale
    ('living_kitchen_dining', 'text', 'dimensions', 20.0)
    """
    from polyhead.apps.floorplan.geometry import contains
    from polyhead.apps.floorplan.text import (
        FOOT,
        estimate_scale,
        fuse_type,
        match_word,
        parse_dimensions,
        parse_gross_area,
        room_scale,
        words_of,
    )

    shapes = [room_polygon(r["polygon"], r.get("holes", ())) for r in result.rooms]
    mine: list[list] = [[] for _ in result.rooms]
    doc_lines = []
    for ln in lines:
        cx, cy = ln.centre
        rid = next((i for i, sh in enumerate(shapes) if contains(sh, cx, cy)), None)
        doc_lines.append({**ln.to_json(), "room": rid})
        if rid is not None:
            mine[rid].append(ln)
    every = [d for ln in lines for d in parse_dimensions(ln.text, singles=False)]
    feet_plan = any(d.unit == "ft" for d in every) and not any(d.unit == "m" for d in every)
    pairs: dict[int, float] = {}
    lone: dict[int, float] = {}
    for rid, r in enumerate(result.rooms):
        own = mine[rid]
        r["text"] = [ln.text for ln in own]
        scores: dict[str, float] = {}
        for ln in own:
            for w in words_of(ln.text):
                typ, sim, _ = match_word(w)
                if typ is not None:
                    scores[typ] = max(scores.get(typ, 0.0), round(ln.score * sim, 3))
        r["text_type"] = max(sorted(scores), key=scores.get) if scores else None
        final, source = fuse_type(result.shares[rid] if rid < len(result.shares) else {r["type"]: 1.0}, scores)
        if final != r["type"] and final in ROOM_CLASSES:
            r["type"] = final
            if result.room_mask is not None and result.room_ids is not None:
                result.room_mask[result.room_ids == rid + 1] = ROOM_CLASSES.index(final)
        r["type_source"] = source
        dims = [(d, ln.centre) for ln in own for d in parse_dimensions(ln.text)]
        if own and not any(len(d.metres) == 2 for d, _ in dims):  # a string split over lines
            middle = tuple(np.mean([ln.centre for ln in own], axis=0))
            dims += [(d, middle) for d in parse_dimensions(" ".join(ln.text for ln in own), singles=False)]
        two = sorted((x for x in dims if len(x[0].metres) == 2), key=lambda x: _UNIT_RANK[x[0].unit])
        one = [x for x in dims if len(x[0].metres) == 1]
        r["dimensions"] = None
        if two:
            d, at = two[0]
            # no unit printed on a plan that prints feet: whole numbers are feet ("14 x 17"), decimals
            # metres (the "(4.1 x 3.3)" beside "13'6 x 10'10")
            as_feet = d.unit == "none" and feet_plan and not re.search(r"\d\.\d", d.text)
            metres = tuple(round(v * FOOT, 3) for v in d.metres) if as_feet else d.metres
            r["dimensions"] = {
                "text": d.text,
                "m": list(metres),
                "unit": "ft" if as_feet else d.unit,
            }
            span = wall_to_wall(result, *at)
            r["dimensions"]["wall_to_wall_px"] = span
            ppm = room_scale(tuple(span), metres) if span else None
            if ppm is None:  # the walls around the string are not the room's: the room's own extents
                ppm = room_scale(tuple(r["size_px"]), metres)
            if ppm is not None:
                pairs[rid] = ppm
        elif one:
            d, at = one[0]
            span = wall_to_wall(result, *at)
            r["dimensions"] = {"text": d.text, "m": list(d.metres), "unit": d.unit, "wall_to_wall_px": span}
            lone[rid] = (d.metres[0], span or r["size_px"])
    samples = dict(pairs)
    first = estimate_scale(pairs)
    if first is not None:  # a lone length is the side of its room that agrees with the pairs' scale
        for rid, (length, sides) in lone.items():
            ppm = min((s / length for s in sides), key=lambda v: abs(v / first["px_per_m"] - 1))
            if abs(ppm / first["px_per_m"] - 1) <= LONE_AGREEMENT:
                samples[rid] = ppm
    est = estimate_scale(samples)
    grosses = [g for g in (parse_gross_area(ln.text) for ln in lines) if g]
    gross = max(grosses, key=lambda g: g["m2"]) if grosses else None
    result.text = {"status": "on", "engine": engine, "lines": doc_lines, "gross_area": gross}
    info = {k: est[k] for k in ("rooms", "candidates", "spread", "support", "rejected")} if est else {"rooms": 0}
    if user_scale:
        result.scale_info["estimate"] = {"px_per_m": est["px_per_m"], **info} if est else None
    elif est:
        result.apply_scale(est["px_per_m"], "dimensions", **info)
    else:
        result.scale_info.update(info)
    if gross and result.scale:
        rooms_m2 = sum(r["area_px"] for r in result.rooms) / result.scale**2
        result.scale_info["gross_area_check"] = {
            "printed_m2": gross["m2"],
            "rooms_m2": round(rooms_m2, 2),
            "ratio": round(rooms_m2 / gross["m2"], 3),
        }
    return result


def wall_to_wall(result: FloorplanResult, x: float, y: float, rays: int = 5) -> list[float] | None:
    """The free span around ``(x, y)`` (original pixels) between the walls/openings of the boundary
    mask, ``[width, height]`` in original pixels: the median over ``rays`` parallel rays each way
    (text, furniture and a stray wall pixel move one ray, not the median). None off the plan or when
    a ray runs out of the image (no wall on that side)."""
    if result.boundary is None:
        return None
    solid = result.boundary > 0
    h, w = solid.shape
    u = result.unit or 1.0
    cx, cy = int(round(x / u)), int(round(y / u))
    if not (0 <= cx < w and 0 <= cy < h):
        return None
    step = max(2, int(round(result.wall_thickness_px / u)))
    spans = []
    for horizontal in (True, False):
        runs = []
        for k in range(-(rays // 2), rays // 2 + 1):
            if horizontal:
                line, at = solid[min(h - 1, max(0, cy + k * step))], cx
            else:
                line, at = solid[:, min(w - 1, max(0, cx + k * step))], cy
            if line[at]:
                continue
            lo = np.nonzero(line[:at])[0]
            hi = np.nonzero(line[at:])[0]
            if len(lo) and len(hi):
                runs.append(float(at + hi[0] - lo[-1] - 1))
        if len(runs) <= rays // 2:
            return None
        spans.append(round(float(np.median(runs)) * u, 1))
    return spans


def text_off(result: FloorplanResult, reason: str) -> FloorplanResult:
    """Mark text reading as off in the JSON (OCR not installed, or not asked for), with the reason."""
    result.text = {"status": "off", "reason": reason}
    return result
