"""Room and wall geometry with the field's libraries: shapely polygons (valid, with holes, neighbours
that share a wall), GeoJSON of the rooms, and the 3-D model as a trimesh mesh (GLB, PLY, OBJ).

>>> square = room_polygon([[0, 0], [10, 0], [10, 10], [0, 10]], holes=[[[4, 4], [6, 4], [6, 6], [4, 6]]])
>>> square.is_valid, square.area
(True, 96.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from shapely.validation import make_valid

#: 3D defaults in metres
WALL_HEIGHT, DOOR_HEIGHT, SILL_HEIGHT, WINDOW_TOP = 2.6, 2.1, 0.9, 2.1
FLOOR_Z = 0.01  # floors sit just above the wall bases, so they never z-fight


def room_polygon(exterior: Sequence, holes: Sequence[Sequence] = ()) -> Polygon:
    """A valid shapely polygon from an outer ring and hole rings (pixel coordinates); a self-touching
    ring is repaired with ``make_valid`` and the largest piece kept; empty when nothing is left."""
    try:
        poly = Polygon(exterior, [h for h in holes if len(h) >= 3])
    except (ValueError, TypeError):
        return Polygon()
    if not poly.is_valid:
        fixed = make_valid(poly)
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, (Polygon, MultiPolygon))]
        pieces = [p for g in parts for p in getattr(g, "geoms", [g])]
        poly = max(pieces, key=lambda p: p.area) if pieces else Polygon()
    return shapely.normalize(poly) if not poly.is_empty else poly


def neighbours(polygons: Sequence[Polygon], wall_px: float, min_shared_px: float | None = None) -> list[list[int]]:
    """For each polygon, the indices of the others that share a wall with it: their outlines, grown by
    a little more than half a wall, overlap along at least ``min_shared_px`` (default: two walls'
    thickness, so rooms that only touch at a corner are not neighbours).

    >>> a = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)]); b = Polygon([(12, 0), (20, 0), (20, 10), (12, 10)])
    >>> corner = Polygon([(22, 12), (30, 12), (30, 20), (22, 20)])  # touches b at a corner only
    >>> neighbours([a, b, corner], 2.0)
    [[1], [0], []]
    """
    grow = 0.6 * max(wall_px, 1.0) + 1.0
    need = min_shared_px if min_shared_px is not None else 2 * max(wall_px, 2.0)
    grown = [p.buffer(grow, join_style="mitre") if not p.is_empty else p for p in polygons]
    tree = shapely.STRtree(grown)
    out: list[list[int]] = [[] for _ in polygons]
    for i, g in enumerate(grown):
        if g.is_empty:
            continue
        for j in sorted(int(k) for k in tree.query(g, predicate="intersects")):
            if j <= i:
                continue
            overlap = g.intersection(grown[j])
            # the overlap is a strip about (2 * grow - wall) wide along the shared wall
            width = max(2 * grow - wall_px, 1.0)
            if overlap.area / width >= need:
                out[i].append(j)
                out[j].append(i)
    return [sorted(n) for n in out]


def contains(polygon: Polygon, x: float, y: float) -> bool:
    """True when the point lies inside ``polygon`` (or on its edge)."""
    return not polygon.is_empty and polygon.intersects(Point(x, y))


def rooms_geojson(rooms: Sequence[dict], scale_px_per_m: float | None, size: tuple[int, int]) -> dict:
    """The rooms as a GeoJSON FeatureCollection: one Polygon feature per room (outer ring and holes, in
    image pixels: x right, y down, as in the JSON), properties ``id``, ``type``, ``area_m2``, ``area_px``,
    ``text``, ``network_type``, ``type_source``, ``neighbours``. Read back with ``shapely.geometry.shape``."""
    features = []
    for r in rooms:
        poly = room_polygon(r["polygon"], r.get("holes", ()))
        geom = mapping(shapely.geometry.polygon.orient(poly, 1.0)) if not poly.is_empty else None
        features.append(
            {
                "type": "Feature",
                "id": r["id"],
                "geometry": geom,
                "properties": {
                    "id": r["id"],
                    "type": r["type"],
                    "area_m2": r.get("area_m2"),
                    "area_px": r["area_px"],
                    "text": r.get("text", []),
                    "network_type": r.get("network_type", r["type"]),
                    "type_source": r.get("type_source", "network"),
                    "neighbours": r.get("neighbours", []),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "units": "px",  # a foreign member (RFC 7946 section 6.1): coordinates are image pixels
        "image_size": {"width": int(size[1]), "height": int(size[0])},
        "scale_px_per_m": scale_px_per_m,
        "features": features,
    }


# ---------------------------------------------------------------- 3D
def _unit_box() -> tuple[np.ndarray, np.ndarray]:
    """trimesh's unit cube (centred, outward faces) as arrays: every wall is this box, scaled and placed."""
    import trimesh

    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return np.asarray(box.vertices, np.float64), np.asarray(box.faces, np.int64)


def _wall_boxes(boxes: Sequence[tuple], ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(segment, thickness_px, z0, z1)`` around 2-point centre-lines -> (vertices, faces), metres."""
    if not boxes:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    uv, uf = _unit_box()
    seg = np.array([b[0] for b in boxes], np.float64).reshape(-1, 2, 2) / ppm  # (n, 2 points, xy)
    t = np.maximum(np.array([b[1] for b in boxes], np.float64) / ppm, 1e-3)
    z0, z1 = np.array([b[2] for b in boxes], np.float64), np.array([b[3] for b in boxes], np.float64)
    d = seg[:, 1] - seg[:, 0]
    length = np.maximum(np.hypot(d[:, 0], d[:, 1]), t)  # a dot: a square pillar
    ang = np.arctan2(d[:, 1], d[:, 0])
    centre = seg.mean(1)
    local = uv[None] * np.stack([length, np.maximum(z1 - z0, 1e-3), t], 1)[:, None]  # (n, 8, 3)
    c, s_ = np.cos(ang)[:, None], np.sin(ang)[:, None]
    # x along the wall, y up, z across; image y is the model's z
    x = centre[:, 0:1] + c * local[..., 0] - s_ * local[..., 2]
    z = centre[:, 1:2] + s_ * local[..., 0] + c * local[..., 2]
    y = ((z0 + z1) / 2)[:, None] + local[..., 1]
    v = np.stack([x, y, z], -1).reshape(-1, 3)
    f = (uf[None] + 8 * np.arange(len(boxes))[:, None, None]).reshape(-1, 3)
    return v, f  # a rotation about the vertical axis: trimesh's outward winding is kept


def _floor(poly: Polygon, ppm: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A room's floor: the polygon (with holes) triangulated by shapely's constrained Delaunay, facing up."""
    if poly.is_empty or poly.area <= 0:
        return None
    tris = [t for t in shapely.constrained_delaunay_triangles(poly).geoms if t.area > 0]
    if not tris:
        return None
    corners = np.array([np.asarray(t.exterior.coords)[:3] for t in tris], np.float64) / ppm  # (n, 3, 2)
    v = np.c_[corners[..., 0].reshape(-1), np.full(corners.shape[0] * 3, FLOOR_Z), corners[..., 1].reshape(-1)]
    f = np.arange(len(v)).reshape(-1, 3)
    d1, d2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    down = np.cross(d1, d2)[:, 1] < 0
    f[down] = f[down][:, ::-1]
    return v, f


def plan_mesh(
    walls: Sequence[dict],
    openings: Sequence[dict],
    floors: Sequence[tuple[Polygon, Sequence[float]]],
    ppm: float,
    wall_rgb: Sequence[float],
    wall_height_m: float = WALL_HEIGHT,
):
    """The plan in 3-D as one ``trimesh.Trimesh`` in metres (x right, y up, z = image rows): walls
    extruded to ``wall_height_m``; over doors a lintel from 2.1 m, over windows a sill to 0.9 m and a
    lintel; floors (polygon, RGB 0-1) per room, vertex-coloured. Empty mesh when there is nothing."""
    import trimesh

    boxes = [(w["centreline"], w["thickness_px"], 0.0, wall_height_m) for w in walls]
    for o in openings:
        t = o["thickness_px"] * 1.05
        boxes.append((o["segment"], t, DOOR_HEIGHT if o["kind"] == "door" else WINDOW_TOP, wall_height_m))
        if o["kind"] == "window":
            boxes.append((o["segment"], t, 0.0, SILL_HEIGHT))
    wv, wf = _wall_boxes(boxes, ppm)
    verts, faces, cols = [wv], [wf], [np.tile(np.asarray(wall_rgb, np.float64), (len(wv), 1))]
    offset = len(wv)
    for poly, rgb in floors:
        part = _floor(poly, ppm)
        if part is None:
            continue
        verts.append(part[0])
        faces.append(part[1] + offset)
        cols.append(np.tile(np.asarray(rgb, np.float64), (len(part[0]), 1)))
        offset += len(part[0])
    if offset == 0:
        return trimesh.Trimesh()
    colours = np.c_[np.clip(np.concatenate(cols), 0, 1) * 255, np.full(offset, 255)].astype(np.uint8)
    return trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), vertex_colors=colours, process=False)


def mesh_bytes(mesh, file_type: str) -> bytes:
    """A trimesh mesh as ``glb``, ``ply`` or ``obj`` bytes (vertex colours kept)."""
    data = mesh.export(file_type=file_type)
    return data.encode() if isinstance(data, str) else bytes(data)


def write_mesh_file(path: str | Path, mesh) -> Path:
    """Write ``mesh`` in the format of ``path``'s suffix (``.glb``, ``.ply``, ``.obj``), atomically."""
    from polyhead.io.writers import write_bytes

    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("glb", "ply", "obj"):
        raise ValueError(f"{path}: mesh files are .glb, .ply or .obj")
    return write_bytes(path, mesh_bytes(mesh, kind))
