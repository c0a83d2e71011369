"""Vectorisation of exact synthetic masks, SVG/JSON and the 3D mesh files."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from polyhead.apps.floorplan.postprocess import vectorise, write_mesh_files
from polyhead.apps.floorplan.synthetic import synthetic_plan


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_rooms_areas_and_openings(seed):
    plan = synthetic_plan(np.random.default_rng(seed), (320, 320))
    result = vectorise(plan.boundary, plan.room, scale=40.0)
    assert len(result.rooms) == len(plan.rooms)
    expected = sorted((r.type, r.area_px) for r in plan.rooms)
    got = sorted((r["type"], r["area_px"]) for r in result.rooms)
    for (te, ae), (tg, ag) in zip(expected, got, strict=True):
        assert te == tg and abs(ae - ag) <= 0.02 * ae
    for r in result.rooms:
        assert abs(r["area_m2"] - r["area_px"] / 1600) < 0.01
        poly = np.array(r["polygon"])  # the polygon's own area agrees with the pixel count
        shoelace = 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1)))
        assert abs(shoelace - r["area_px"]) < 0.1 * r["area_px"]
    doc = result.to_json()
    assert doc["totals"]["doors"] == len(plan.doors) and doc["totals"]["windows"] == len(plan.windows)
    assert doc["walls"] and all(w["thickness_px"] > 1 for w in doc["walls"])
    json.dumps(doc)  # plain data
    svg = ET.fromstring(result.to_svg())
    assert len(svg.findall("{http://www.w3.org/2000/svg}polygon")) >= len(plan.rooms)
    overlay = result.plot(plan.image)
    assert overlay.shape == plan.image.shape and not np.array_equal(overlay, plan.image)


def test_downscaled_masks_map_back():
    plan = synthetic_plan(np.random.default_rng(2), (200, 200))
    result = vectorise(plan.boundary, plan.room, unit=2.0, original_size=(400, 400))
    full = vectorise(plan.boundary, plan.room)
    assert [r["area_px"] for r in result.rooms] == [4 * r["area_px"] for r in full.rooms]
    assert result.to_json()["image_size"] == {"width": 400, "height": 400}


def test_empty_masks_give_empty_result():
    doc = vectorise(np.zeros((50, 60), np.uint8), np.zeros((50, 60), np.uint8)).to_json()
    assert doc["rooms"] == [] and doc["walls"] == [] and doc["openings"] == []
    assert doc["image_size"] == {"width": 60, "height": 50}


def test_mesh_written_and_readable(tmp_path):
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    plan = synthetic_plan(np.random.default_rng(1), (256, 256))
    result = vectorise(plan.boundary, plan.room, scale=30.0)
    paths = write_mesh_files(result, tmp_path / "plan", ("glb", "ply", "obj"))
    assert [p.suffix for p in paths] == [".glb", ".ply", ".obj"]
    for p in paths:
        mesh = o3d.io.read_triangle_mesh(str(p))
        assert len(mesh.triangles) > 12 * len(result.walls)
        top = np.asarray(mesh.vertices)[:, 1].max()
        assert abs(top - 2.6) < 1e-3  # metres: walls are 2.6 m high
    mesh.compute_triangle_normals()
    v, t, n = np.asarray(mesh.vertices), np.asarray(mesh.triangles), np.asarray(mesh.triangle_normals)
    floor = np.all(np.abs(v[t][:, :, 1] - 0.01) < 1e-6, axis=1)
    assert floor.sum() >= len(result.rooms) and (n[floor, 1] > 0.99).all()  # floors face up
    head = paths[0].read_bytes()[:12]
    assert struct.unpack("<4sII", head)[0] == b"glTF" and struct.unpack("<4sII", head)[2] == paths[0].stat().st_size


def test_floor_of_a_concave_room_with_a_hole_covers_its_area():
    import trimesh

    from polyhead.apps.floorplan.geometry import _floor, room_polygon

    l_shape = room_polygon([[0, 0], [40, 0], [40, 10], [10, 10], [10, 30], [0, 30]], [[[2, 2], [6, 2], [6, 6], [2, 6]]])
    floor = trimesh.Trimesh(*_floor(l_shape, 10.0))
    assert abs(floor.area - (600 - 16) / 100) < 1e-9  # m^2: the hole is left out
    assert (floor.face_normals[:, 1] > 0.99).all()  # facing up
