"""shapely room polygons (valid, holes, neighbours), GeoJSON read back, the GLB / PLY through trimesh."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import shapely
import trimesh
from shapely.geometry import shape

from polyhead.apps.floorplan.geometry import neighbours, room_polygon
from polyhead.apps.floorplan.postprocess import vectorise, write_glb, write_mesh_files
from polyhead.apps.floorplan.synthetic import synthetic_plan


def _plan(seed: int = 0, size=(320, 320)):
    plan = synthetic_plan(np.random.default_rng(seed), size)
    return plan, vectorise(plan.boundary, plan.room, scale=40.0)


def _true_neighbours(plan) -> list[set[int]]:
    """Cells of the generated plan that share a wall segment longer than a few pixels."""
    out = [set() for _ in plan.rooms]
    for i, a in enumerate(plan.rooms):
        for j, b in enumerate(plan.rooms):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.cell, b.cell
            if i == j:
                continue
            vertical = (ax1 == bx0 or bx1 == ax0) and min(ay1, by1) - max(ay0, by0) > 8
            horizontal = (ay1 == by0 or by1 == ay0) and min(ax1, bx1) - max(ax0, bx0) > 8
            if vertical or horizontal:
                out[i].add(j)
    return out


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_room_polygons_are_valid_and_neighbours_match_the_plan(seed):
    plan, result = _plan(seed)
    assert len(result.rooms) == len(plan.rooms)
    polys = [room_polygon(r["polygon"], r["holes"]) for r in result.rooms]
    assert all(p.is_valid and not p.is_empty for p in polys)
    for p, r in zip(polys, result.rooms, strict=True):
        assert abs(p.area - r["area_px"]) < 0.1 * r["area_px"]
    # result room k is the generated cell whose centre it holds
    cell_of = []
    for p in polys:
        centres = [shapely.Point((c.cell[0] + c.cell[2]) / 2, (c.cell[1] + c.cell[3]) / 2) for c in plan.rooms]
        hits = [i for i, c in enumerate(centres) if p.contains(c)]
        assert len(hits) == 1
        cell_of.append(hits[0])
    truth = _true_neighbours(plan)
    for k, r in enumerate(result.rooms):
        assert {cell_of[j] for j in r["neighbours"]} == truth[cell_of[k]]


def test_a_room_around_a_column_has_a_hole():
    boundary = np.zeros((120, 120), np.uint8)
    boundary[:4], boundary[-4:], boundary[:, :4], boundary[:, -4:] = 1, 1, 1, 1
    boundary[50:70, 50:70] = 1  # a column inside the room
    room = np.where(boundary == 0, 4, 0).astype(np.uint8)
    result = vectorise(boundary, room)
    (r,) = result.rooms
    assert len(r["holes"]) == 1
    poly = room_polygon(r["polygon"], r["holes"])
    assert poly.is_valid and not poly.contains(shapely.Point(60, 60)) and poly.contains(shapely.Point(20, 20))
    assert abs(poly.area - r["area_px"]) < 0.06 * r["area_px"]


def test_self_touching_outline_is_repaired():
    bow = room_polygon([[0, 0], [10, 10], [10, 0], [0, 10]])  # a bow tie
    assert bow.is_valid and bow.area == pytest.approx(25.0)  # the larger of its two triangles
    assert room_polygon([[0, 0], [1, 1]]).is_empty


def test_corner_contact_is_not_a_shared_wall():
    a = room_polygon([[0, 0], [50, 0], [50, 50], [0, 50]])
    b = room_polygon([[56, 56], [100, 56], [100, 100], [56, 100]])  # diagonal across a wall crossing
    c = room_polygon([[56, 0], [100, 0], [100, 50], [56, 50]])  # across the wall from a
    assert neighbours([a, b, c], wall_px=6) == [[2], [2], [0, 1]]


def test_geojson_reads_back(tmp_path):
    plan, result = _plan(1)
    for r, t in zip(result.rooms, ["K", "B", "W", "L", "H", "S", "T", "X"], strict=False):
        r["text"] = [t]
    path = tmp_path / "plan.geojson"
    path.write_bytes(result.artifacts()[".geojson"])
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(result.rooms)
    for feat, room in zip(doc["features"], result.rooms, strict=True):
        geom = shape(feat["geometry"])
        assert geom.geom_type == "Polygon" and geom.is_valid
        assert geom.area == pytest.approx(room_polygon(room["polygon"], room["holes"]).area)
        assert shapely.Point(room["centroid"]).within(geom.buffer(1))
        props = feat["properties"]
        assert props["type"] == room["type"] and props["area_m2"] == room["area_m2"] and props["text"] == room["text"]
        assert props["area_m2"] == pytest.approx(room["area_px"] / 1600, abs=0.01)
        assert shapely.is_ccw(geom.exterior)  # RFC 7946: outer rings counter-clockwise


def test_glb_and_ply_load_in_trimesh(tmp_path):
    _, result = _plan(2, (256, 256))
    glb, ply, obj = write_mesh_files(result, tmp_path / "plan", ("glb", "ply", "obj"))
    scene = trimesh.load(glb)
    mesh = scene.to_geometry() if isinstance(scene, trimesh.Scene) else scene
    assert len(mesh.faces) >= 12 * len(result.walls)
    assert mesh.bounds[1][1] == pytest.approx(2.6, abs=1e-3)  # metres: walls are 2.6 m high
    assert mesh.visual.kind == "vertex"  # colours made it into the file
    floor = np.abs(mesh.triangles_center[:, 1] - 0.01) < 1e-6
    assert (mesh.face_normals[floor][:, 1] > 0.99).all()  # floors face up
    floor_m2 = float(mesh.area_faces[floor].sum())
    rooms_m2 = sum(r["area_px"] for r in result.rooms) / 40.0**2
    assert floor_m2 == pytest.approx(rooms_m2, rel=0.1)
    for path in (ply, obj):
        again = trimesh.load(path, force="mesh")
        assert len(again.faces) == len(mesh.faces)
    head = glb.read_bytes()[:12]
    assert head[:4] == b"glTF" and int.from_bytes(head[8:12], "little") == glb.stat().st_size


def test_wall_boxes_are_closed_face_outward_and_have_their_size():
    from polyhead.apps.floorplan.geometry import _wall_boxes

    v, f = _wall_boxes([([[0, 0], [100, 30]], 10, 0.0, 2.6), ([[5, 5], [5, 5]], 8, 2.1, 2.6)], ppm=50)
    wall = trimesh.Trimesh(v[:8], f[:12])
    assert wall.is_watertight and wall.volume == pytest.approx(np.hypot(2, 0.6) * 0.2 * 2.6)  # > 0: outward
    pillar = trimesh.Trimesh(v[8:], f[12:] - 8)
    assert pillar.volume == pytest.approx(0.16 * 0.16 * 0.5) and pillar.bounds[0][1] == pytest.approx(2.1)


def test_glb_writer_is_atomic_and_checks_the_suffix(tmp_path, monkeypatch):
    _, result = _plan(2, (200, 200))
    with pytest.raises(ValueError, match=".glb"):
        write_glb(tmp_path / "plan.png", result.to_mesh())
    target = tmp_path / "plan.glb"
    target.write_bytes(b"old")

    def broken(self, file_type=None, **_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(trimesh.Trimesh, "export", broken)
    with pytest.raises(RuntimeError):
        write_glb(target, result.to_mesh())
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["plan.glb"]


def test_empty_plan_mesh_has_no_faces():
    empty = vectorise(np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8))
    mesh = empty.to_mesh()
    assert len(mesh.faces) == 0
    assert json.loads(io.BytesIO(empty.artifacts()[".geojson"]).read())["features"] == []
