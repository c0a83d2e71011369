"""LiDAR pipeline: readers and their errors, ground, boxes, outputs, KITTI projection and validation."""

import json
import math

import numpy as np
import pytest

from polyhead.apps.driving.lidar.calib import read_kitti_calib
from polyhead.apps.driving.lidar.geometry import LidarConfig
from polyhead.apps.driving.lidar.io import list_scans, read_scan
from polyhead.apps.driving.lidar.pipeline import colour_by_mask, process
from polyhead.apps.driving.lidar.synthetic import street_scan
from polyhead.cli import main
from polyhead.errors import InputError
from tests.conftest import shared_data


@pytest.fixture()
def scan_file(tmp_path):
    cloud, truth = street_scan(np.random.default_rng(0))
    path = tmp_path / "000000.bin"
    cloud.tofile(path)
    return path, truth


def test_ground_and_boxes_on_a_generated_street(scan_file):
    path, truth = scan_file
    r = process(read_scan(path))
    assert r.plane is not None and abs(r.plane.tilt_deg - 1.0) < 0.5  # the wall was not taken as ground
    assert abs(-r.plane.height_at(np.zeros(1), np.zeros(1))[0] - 1.7) < 0.05
    assert r.ground.mean() > 0.5
    for cx, cy, l, w, h, yaw in truth:
        d = [np.hypot(b.center[0] - cx, b.center[1] - cy) for b in r.boxes]
        b = r.boxes[int(np.argmin(d))]
        assert min(d) < 0.3, (cx, cy)
        assert abs(b.size[0] - l) < 0.35 and abs(b.size[1] - w) < 0.35 and abs(b.size[2] - h) < 0.25
        if l > 1.2 * w:  # yaw is defined by the long side (modulo pi)
            err = abs((b.yaw - yaw + math.pi / 2) % math.pi - math.pi / 2)
            assert err < math.radians(8), (b.yaw, yaw)
    labels = sorted(
        b.label for b in r.boxes if min(np.hypot(b.center[0] - t[0], b.center[1] - t[1]) for t in truth) < 0.3
    )
    assert labels == ["car", "cyclist", "pedestrian"]


def test_readers_and_their_errors(tmp_path, scan_file):
    path, _ = scan_file
    cloud = np.fromfile(path, np.float32).reshape(-1, 4)
    cloud[:5, 0] = np.nan
    bad = tmp_path / "nan.bin"
    cloud.tofile(bad)
    assert read_scan(bad).dropped == 5
    np.save(tmp_path / "c.npy", cloud[5:, :3])
    assert read_scan(tmp_path / "c.npy").points.shape == (len(cloud) - 5, 3)
    nus = tmp_path / "sweep.pcd.bin"
    np.hstack([cloud[5:], np.zeros((len(cloud) - 5, 1), np.float32)]).tofile(nus)
    assert read_scan(nus).name == "sweep"
    (tmp_path / "short.bin").write_bytes(b"\x00" * 18)
    with pytest.raises(InputError, match="short.bin: 18 bytes is not a whole number of 4-float32 points"):
        read_scan(tmp_path / "short.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(InputError, match="empty.bin: point cloud is empty"):
        read_scan(tmp_path / "empty.bin")
    with pytest.raises(InputError, match="no point-cloud files"):
        list_scans(tmp_path / "*.txt")


def test_calibration_missing_key(tmp_path):
    (tmp_path / "c.txt").write_text("P2: " + " ".join(["1"] * 12) + "\nR0_rect: " + " ".join(["1"] * 9) + "\n")
    with pytest.raises(InputError, match="c.txt: calibration lacks 'Tr_velo_to_cam'"):
        read_kitti_calib(tmp_path / "c.txt")


def test_outputs_and_sequence_run_skip_bad_scan(tmp_path, scan_file, capsys):
    path, _ = scan_file
    seq = path.parent
    for i in (1, 2):
        np.fromfile(path, np.float32).tofile(seq / f"00000{i}.bin")
    (seq / "000003.bin").write_bytes(b"\x00" * 10)  # broken scan in the middle of a sequence
    out = tmp_path / "out"
    code = main(["driving", "lidar", str(seq), "--out", str(out)])
    assert code == 1 and "000003.bin" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert "bev.mp4" in names and "000002_bev.png" in names and "000000.ply" in names
    doc = json.loads((out / "000000.json").read_text())
    assert doc["ground_plane"]["tilt_deg"] < 3 and len(doc["boxes"]) >= 3
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    pcd = o3d.io.read_point_cloud(str(out / "000000.ply"))
    assert len(pcd.points) == doc["points"]["processed"] and pcd.has_colors()


def test_fusion_mask_selects_projected_points():
    uv = np.array([[5.0, 5.0], [50.0, 5.0], [5.0, 5.0]])
    depth = np.array([10.0, 10.0, -1.0])  # the last point is behind the camera
    mask = np.zeros((20, 20), np.uint8)
    mask[:10, :10] = 1
    assert colour_by_mask(uv, depth, mask).tolist() == [True, False, False]


def test_kitti_projection_and_validation():
    root = shared_data("driving", "kitti_sample")
    calib = read_kitti_calib(root / "calib" / "000001.txt")
    r = process(read_scan(root / "velodyne" / "000001.bin"))
    uv, depth = calib.project(r.points)
    inside = (depth > 1) & (uv[:, 0] >= 0) & (uv[:, 0] < 1242) & (uv[:, 1] >= 0) & (uv[:, 1] < 375)
    assert inside.sum() > 5000  # the camera's field of view holds many points
    ground_rows = uv[inside & r.ground, 1]
    assert (ground_rows > 150).mean() > 0.95  # ground lands below the horizon, as it must
    from polyhead.apps.driving.lidar.evaluate import evaluate

    m = evaluate(root, LidarConfig())
    assert m["objects"] >= 5 and m["recall_at_2m"] >= 0.6
    assert m["ground_height_error_m"]["mean"] < 0.3
