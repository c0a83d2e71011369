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

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from polyhead.apps.floorplan.model import ROOM_CLASSES, ROOM_RGB

WALL_RGB, DOOR_RGB, WINDOW_RGB = (40, 40, 40), (255, 60, 128), (40, 140, 255)
#: 3D defaults in metres
WALL_HEIGHT, DOOR_HEIGHT, SILL_HEIGHT, WINDOW_TOP = 2.6, 2.1, 0.9, 2.1
#: wall thickness assumed when no scale is given (to size the 3D model only; areas stay in px)
ASSUMED_WALL_M = 0.2


@dataclass
class FloorplanResult:
    """Vectorised plan in original image pixels (and metres when ``scale`` px/m is known)."""

    size: tuple[int, int]  # (h, w) of the original image
    scale: float | None = None
    rooms: list[dict] = field(default_factory=list)
    walls: list[dict] = field(default_factory=list)
    openings: list[dict] = field(default_factory=list)
    wall_outlines: list[list[list[float]]] = field(default_factory=list)
    boundary: np.ndarray | None = None  # masks at the working resolution (not in JSON)
    room_mask: np.ndarray | None = None
    wall_thickness_px: float = 0.0
    mesh: bool = False  # batch predict also writes the 3-D model

    def artifacts(self) -> dict:
        """The files batch predict writes beside the overlay and JSON: ``.svg`` always, ``.glb`` + ``.ply``
        (writers that build the mesh once) when the mesh was asked for and the plan has walls or rooms."""
        out: dict = {".svg": self.to_svg().encode()}
        if self.mesh and (self.rooms or self.walls):
            from polyhead.io import write_mesh

            built: list = []

            def mesh():
                if not built:
                    built.append(self.to_mesh())
                return built[0]

            out[".glb"] = lambda path: write_glb(path, mesh())
            out[".ply"] = lambda path: write_mesh(path, mesh())
        return out

    @classmethod
    def empty(cls, size: tuple[int, int], scale: float | None = None) -> FloorplanResult:
        return cls(tuple(size), scale)

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
        """Triangle mesh (open3d): walls extruded to ``wall_height_m``; over doors only a lintel (from 2.1 m),
        over windows a sill (to 0.9 m) and a lintel; a floor polygon per room coloured by type.

        Units are metres when ``scale`` is known, else the scale is estimated from the wall thickness
        (walls assumed 0.2 m). Axes: x right, y up, z towards the viewer (image rows).
        """
        from polyhead.open3d_loader import open3d

        o3d = open3d()

        ppm = self.scale or max(1e-6, self.wall_thickness_px / ASSUMED_WALL_M if self.wall_thickness_px else 50.0)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        grey = np.clip(np.array(WALL_RGB) / 255 + 0.45, 0, 1)
        for wseg in self.walls:
            parts.append(_box(wseg["centreline"], wseg["thickness_px"], 0.0, wall_height_m, ppm, grey))
        for o in self.openings:
            t = o["thickness_px"] * 1.05
            top = DOOR_HEIGHT if o["kind"] == "door" else WINDOW_TOP
            parts.append(_box(o["segment"], t, top, wall_height_m, ppm, grey))
            if o["kind"] == "window":
                parts.append(_box(o["segment"], t, 0.0, SILL_HEIGHT, ppm, grey))
        for r in self.rooms:
            parts.append(_floor(r["polygon"], ppm, np.array(ROOM_RGB[ROOM_CLASSES.index(r["type"])]) / 255))
        verts, tris, cols, offset = [], [], [], 0
        for v, t, c in parts:
            verts.append(v)
            tris.append(t + offset)
            cols.append(np.repeat(c[None], len(v), 0))
            offset += len(v)
        mesh = o3d.geometry.TriangleMesh()
        if parts:
            mesh.vertices = o3d.utility.Vector3dVector(np.concatenate(verts))
            mesh.triangles = o3d.utility.Vector3iVector(np.concatenate(tris).astype(np.int32))
            mesh.vertex_colors = o3d.utility.Vector3dVector(np.concatenate(cols))
            mesh.compute_vertex_normals()
        return mesh


def _pts(poly) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in poly)


def _box(segment, thickness_px: float, z0: float, z1: float, ppm: float, rgb) -> tuple:
    """An oriented box around a 2-point centre-line, from height z0 to z1 (metres): (vertices, triangles, rgb)."""
    (x1, y1), (x2, y2) = np.asarray(segment, np.float64) / ppm
    d = np.array([x2 - x1, y2 - y1])
    length = float(np.hypot(*d))
    t = max(thickness_px / ppm, 1e-3)
    if length < 1e-6:  # a dot: a square pillar
        d, length = np.array([t, 0.0]), t
        x1 -= t / 2
    n = np.array([-d[1], d[0]]) / length * t / 2
    p = np.array([x1, y1])
    base = [p + n, p - n, p - n + d, p + n + d]
    v = np.array([[q[0], z, q[1]] for z in (z0, z1) for q in base])
    tris = [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7]]
    for i in range(4):
        j = (i + 1) % 4
        tris += [[i, j, 4 + j], [i, 4 + j, 4 + i]]
    return v, np.array(tris)[:, ::-1], np.asarray(rgb, np.float64)  # outward-facing


def triangulate(poly: np.ndarray) -> list[tuple[int, int, int]]:
    """Ear clipping of a simple polygon (either orientation) -> vertex-index triangles.

    >>> len(triangulate(np.array([[0, 0], [2, 0], [2, 2], [1, 1], [0, 2]], float)))
    3
    """
    pts = np.asarray(poly, np.float64)
    idx = list(range(len(pts)))
    if len(idx) < 3:
        return []
    area = 0.5 * np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    if area < 0:
        idx.reverse()
    tris: list[tuple[int, int, int]] = []

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    guard = 0
    while len(idx) > 3 and guard < 10 * len(pts) ** 2:
        guard += 1
        for k in range(len(idx)):
            i, j, l = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            a, b, c = pts[i], pts[j], pts[l]
            if cross(a, b, c) <= 1e-12:
                continue
            inside = False
            for m in idx:
                if m in (i, j, l):
                    continue
                p = pts[m]
                if cross(a, b, p) >= 0 and cross(b, c, p) >= 0 and cross(c, a, p) >= 0:
                    inside = True
                    break
            if not inside:
                tris.append((i, j, l))
                idx.pop(k)
                break
        else:  # degenerate polygon: fan out the rest
            break
    for k in range(1, len(idx) - 1):
        tris.append((idx[0], idx[k], idx[k + 1]))
    return tris


def _floor(polygon, ppm: float, rgb) -> tuple:
    pts = np.asarray(polygon, np.float64) / ppm
    tris = np.array(triangulate(pts), np.int64).reshape(-1, 3)[:, ::-1]  # facing up (+y)
    v = np.c_[pts[:, 0], np.full(len(pts), 0.01), pts[:, 1]]
    return v, tris, np.clip(np.asarray(rgb, np.float64), 0, 1)


def write_glb(path: str | Path, mesh) -> Path:
    """A binary glTF 2.0 (positions, normals, vertex colours, uint32 indices) written atomically.

    Written here because open3d's own ``.glb`` output gave index accessors pointing past the vertex
    buffer (unreadable by assimp); this one loads in three.js (``gr.Model3D``) and assimp.
    """
    import json
    import struct

    from polyhead.io.writers import atomic_path

    v = np.asarray(mesh.vertices, np.float32)
    f = np.asarray(mesh.triangles, np.uint32).reshape(-1)
    if not mesh.has_vertex_normals():
        mesh.compute_vertex_normals()
    n = np.asarray(mesh.vertex_normals, np.float32)
    c = np.asarray(mesh.vertex_colors, np.float32) if mesh.has_vertex_colors() else np.full_like(v, 0.7)
    blobs = [f.tobytes(), v.tobytes(), n.tobytes(), c.tobytes()]
    views, offset = [], 0
    for i, b in enumerate(blobs):
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(b), "target": 34963 if i == 0 else 34962})
        offset += (len(b) + 3) // 4 * 4
    binary = b"".join(b + b"\0" * ((4 - len(b) % 4) % 4) for b in blobs)
    vmin, vmax = (v.min(0).tolist(), v.max(0).tolist()) if len(v) else ([0, 0, 0], [0, 0, 0])
    doc = {
        "asset": {"version": "2.0", "generator": "polyhead floorplan"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 1, "NORMAL": 2, "COLOR_0": 3}, "indices": 0}]}],
        "materials": [],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": [
            {"bufferView": 0, "componentType": 5125, "count": int(len(f)), "type": "SCALAR"},
            {"bufferView": 1, "componentType": 5126, "count": int(len(v)), "type": "VEC3", "min": vmin, "max": vmax},
            {"bufferView": 2, "componentType": 5126, "count": int(len(n)), "type": "VEC3"},
            {"bufferView": 3, "componentType": 5126, "count": int(len(c)), "type": "VEC3"},
        ],
    }
    doc["meshes"][0]["primitives"][0]["material"] = 0
    doc["materials"] = [
        {"pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0}, "doubleSided": True}
    ]
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * ((4 - len(js) % 4) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    data = struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
    data += struct.pack("<II", len(binary), 0x004E4942) + binary
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def write_mesh_files(result: FloorplanResult, stem: str | Path, formats=("glb", "ply")) -> list[Path]:
    """``<stem>.glb`` (own writer) and ``.ply`` / ``.obj`` (through ``polyhead.io.write_mesh``)."""
    from polyhead.io import write_mesh

    mesh = result.to_mesh()
    out = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        out.append(write_glb(path, mesh) if fmt == "glb" else write_mesh(path, mesh))
    return out


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
    result = FloorplanResult(size, scale, boundary=boundary, room_mask=room)
    solid = boundary > 0
    if not solid.any() and not (room > 0).any():
        return result
    u = float(unit)
    thick = wall_thickness(solid)
    result.wall_thickness_px = thick * u

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
            contours, _ = cv2.findContours(piece.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            c = max(contours, key=cv2.contourArea)
            eps = max(1.0, 0.01 * cv2.arcLength(c, True))
            poly = cv2.approxPolyDP(c, eps, True).reshape(-1, 2).astype(np.float64) + [x, y]
            if len(poly) < 3:
                continue
            clean_room[y : y + bh, x : x + bw][piece] = t
            ys, xs = np.nonzero(piece)
            area_px = float(room_area) * u * u
            sub_votes = room[y : y + bh, x : x + bw][piece]
            result.rooms.append(
                {
                    "id": len(result.rooms),
                    "type": ROOM_CLASSES[t],
                    "polygon": [px(p) for p in poly],
                    "centroid": px((xs.mean() + x + 0.5, ys.mean() + y + 0.5)),
                    "area_px": round(area_px, 1),
                    "area_m2": round(area_px / scale**2, 2) if scale else None,
                    "confidence": round(float((sub_votes == t).mean()), 3),
                }
            )
    result.room_mask = clean_room
    # walls: centre-lines of the wall class (openings are separate); outlines of walls + openings
    k = int(max(5, round(2.5 * max(thick, 1.0))))
    min_len = max(2.0, 1.2 * thick)
    for s in _axis_segments(boundary == 1, k, min_len):
        result.walls.append(
            {
                "centreline": [px(p) for p in s["centreline"]],
                "thickness_px": round(s["thickness_px"] * u, 1),
                "length_px": round(s["length_px"] * u, 1),
                "length_m": round(s["length_px"] * u / scale, 2) if scale else None,
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
                "width_m": round(s["width_px"] * u / scale, 2) if scale else None,
                "thickness_px": round(min(s["thickness_px"], 1.5 * max(thick, 1.0)) * u, 1),  # it sits in a wall
            }
        )
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
