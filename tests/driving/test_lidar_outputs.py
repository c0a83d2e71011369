"""LiDAR batch outputs (issue 14 §3 items 3 and 10): inputs are never outputs, unique names per input,
resume, and one bad scan (hostile header, nothing in range, any exception) never costs the others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from polyhead.apps.driving.lidar.io import read_scan
from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.io import VideoReader


def small_scan(seed: int = 0, n: int = 3000) -> np.ndarray:
    """(N, 4) x, y, z, intensity: a flat road 1.7 m below the sensor and one car-sized block."""
    rng = np.random.default_rng(seed)
    ground = np.stack([rng.uniform(2, 30, n), rng.uniform(-10, 10, n), rng.normal(-1.7, 0.02, n), rng.random(n)], 1)
    m = 600
    block = np.stack([rng.uniform(10, 14.4, m), rng.uniform(-1, 0.8, m), rng.uniform(-1.6, -0.2, m), rng.random(m)], 1)
    return np.concatenate([ground, block]).astype(np.float32)


def write_cloud(path: Path, cloud: np.ndarray) -> Path:
    """A scan file of any supported type (``.ply`` / ``.pcd`` through open3d)."""
    from polyhead.io.writers import write_point_cloud

    if path.name.endswith((".ply", ".pcd")):
        write_point_cloud(path, cloud[:, :3])
    elif path.suffix == ".npy":
        np.save(path, cloud)
    else:
        cloud.tofile(path)
    return path


def lidar(*args: str) -> int:
    return main(["driving", "lidar", *map(str, args)])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def scans(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):
        write_cloud(folder / f"00000{i}.bin", small_scan(i))
    return folder


def test_out_equal_to_the_input_folder_is_refused_and_nothing_changes(scans, capsys):
    before = snapshot(scans)
    for out in (scans, scans.parent):  # the input folder itself, or a folder above it
        assert lidar(scans, "--out", out) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "every scan lies inside the output folder" in err
    assert snapshot(scans) == before  # no input overwritten, no output written


def test_one_scan_file_with_out_equal_to_its_folder_never_replaces_it(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    scan = write_cloud(folder / "000000.ply", small_scan(0))
    before = scan.read_bytes()
    assert lidar(scan, "--out", folder) == 0
    assert scan.read_bytes() == before  # the input, not our output, is still 000000.ply
    docs = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert len(docs) == 1 and Path(docs[0]["source"]) == scan and docs[0]["scan"] == "000000"


def test_outputs_inside_the_input_folder_are_never_read_back(scans, capsys):
    out = scans / "out"
    assert lidar(scans, "--out", out) == 0
    first = snapshot(out)
    assert lidar(scans, "--out", out) == 0  # the second run lists scans/ again: out/ holds .ply files
    captured = capsys.readouterr()
    assert "2 scan(s)" in captured.out.splitlines()[-1]
    assert sorted(snapshot(out)) == sorted(first)  # no 000000_ply.json: own outputs were not taken as scans
    with pytest.raises(InputError, match="every scan lies inside the output folder"):
        from polyhead.apps.driving.lidar.cli import scan_items

        scan_items(out, out)


def test_one_scan_name_in_several_formats_gets_one_set_of_outputs_each(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    files = [write_cloud(src / name, small_scan(k)) for k, name in enumerate(["scan.bin", "scan.ply", "scan.pcd"])]
    out = tmp_path / "out"
    assert lidar(src, "--out", out) == 0
    docs = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(docs) == 3
    sources = sorted(Path(d["source"]).name for d in docs.values())
    assert sources == ["scan.bin", "scan.pcd", "scan.ply"]
    for name, doc in docs.items():  # each set of outputs belongs to its own input
        stem = name[: -len(".json")]
        assert (out / f"{stem}.ply").is_file() and (out / f"{stem}_bev.png").is_file()
        assert doc["points"]["input"] == len(read_scan(doc["source"]).points)
    assert len(list(VideoReader(out / "bev.mp4"))) == 3
    assert all(p.read_bytes() for p in files)  # inputs untouched


def test_resume_redoes_only_missing_scans_and_rebuilds_the_sequence_video(scans, tmp_path, capsys):
    out = tmp_path / "out"
    write_cloud(scans / "000002.bin", small_scan(2))
    assert lidar(scans, "--out", out) == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "000001.json").unlink()  # as if killed before the JSON (written last) of 000001
    (out / "bev.mp4").unlink()
    capsys.readouterr()
    assert lidar(scans, "--out", out, "--resume") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"1 scan(s) -> {out} (0 skipped, 2 already done)"
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after["000000.json"] == mtimes["000000.json"] and after["000002.ply"] == mtimes["000002.ply"]
    assert after["000001.json"] and after["000001.ply"] != mtimes["000001.ply"]
    assert (
        len(list(VideoReader(out / "bev.mp4"))) == 3
    )  # done scans come back into the video from their bird's-eye views
    again = snapshot(out)
    assert lidar(scans, "--out", out, "--resume") == 0
    assert snapshot(out) == again  # all done: nothing rewritten


def test_hidden_temp_files_are_not_scans(scans, tmp_path):
    (scans / ".polyhead-tmp-abcdef-1-0000-000000.ply").write_bytes(b"half a file")
    (scans / ".000001.bin").write_bytes(b"\0" * 16)
    out = tmp_path / "out"
    assert lidar(scans, "--out", out) == 0
    assert sorted(p.name for p in out.glob("*.json")) == ["000000.json", "000001.json"]


def _ply(path: Path, count: int, body: bytes = b"", fmt: str = "binary_little_endian") -> Path:
    head = f"ply\nformat {fmt} 1.0\nelement vertex {count}\nproperty float x\nproperty float y\nproperty float z\n"
    path.write_bytes(head.encode() + b"end_header\n" + body)
    return path


def _pcd(path: Path, points: int, data: str = "binary", body: bytes = b"") -> Path:
    head = (
        "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA {data}\n"
    )
    path.write_bytes(head.encode() + body)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _ply(p / "huge.ply", 2_000_000_000, b"\0" * 120), "more than the"),
        (lambda p: _ply(p / "lying.ply", 1_000_000, b"\0" * 120), "header claims 1000000 points"),
        (lambda p: _ply(p / "ascii.ply", 500_000, b"1 2 3\n", "ascii"), "header claims 500000 points"),
        (lambda p: _ply(p / "neg.ply", -5), "negative"),
        (
            lambda p: (p / "nohead.ply").write_bytes(b"ply\nformat ascii 1.0\n" + b"x" * 70000) and p / "nohead.ply",
            "no PLY header",
        ),
        (lambda p: _pcd(p / "huge.pcd", 2_000_000_000, body=b"\0" * 120), "more than the"),
        (lambda p: _pcd(p / "lying.pcd", 1_000_000, body=b"\0" * 120), "header claims 1000000 points"),
        (lambda p: _pcd(p / "text.pcd", 400_000, "ascii", b"1 2 3\n"), "header claims 400000 points"),
        (
            lambda p: _pcd(p / "packed.pcd", 1_000_000, "binary_compressed", b"\x10\0\0\0\0\x09\x3d\0" + b"\0" * 16),
            "compressed PCD sizes",
        ),
    ],
)
def test_hostile_headers_are_refused_before_open3d_allocates(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        read_scan(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_valid_ply_and_pcd_pass_the_header_check(tmp_path):
    cloud = small_scan(3)
    for name in ("ok.ply", "ok.pcd"):
        assert len(read_scan(write_cloud(tmp_path / name, cloud)).points) == len(cloud)
    _ply(tmp_path / "text.ply", 2, b"1 2 3\n4 5 6\n", "ascii")
    assert read_scan(tmp_path / "text.ply").points.tolist() == [[1, 2, 3], [4, 5, 6]]
    _pcd(tmp_path / "text.pcd", 2, "ascii", b"1 2 3\n4 5 6\n")
    assert read_scan(tmp_path / "text.pcd").points.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_bad_scans_are_one_line_skips_and_the_batch_continues(scans, tmp_path, capsys, monkeypatch):
    _ply(scans / "000002.ply", 2_000_000_000, b"\0" * 120)  # std::bad_alloc in open3d before
    far = small_scan(4)
    far[:, 0] += 500.0  # every point 500 m ahead: nothing in the default range (IndexError before)
    write_cloud(scans / "000003.bin", far)
    write_cloud(scans / "000004.bin", small_scan(5))
    import polyhead.apps.driving.lidar.cli as lidar_cli

    real = lidar_cli.process_scan

    def flaky(path, cfg):  # any other exception of one scan
        if path.name == "000004.bin":
            raise RuntimeError("[Open3D Error] something inside open3d\nsecond line")
        return real(path, cfg)

    monkeypatch.setattr(lidar_cli, "process_scan", flaky)
    out = tmp_path / "out"
    assert lidar(scans, "--out", out) == 1
    err = re.findall(r"skipped [^\r\n]*", capsys.readouterr().err)  # between progress-bar redraws
    assert len(err) == 3, err
    assert err[0].startswith(f"skipped {scans / '000002.ply'}: ") and "more than the" in err[0]
    assert err[1].startswith(f"skipped {scans / '000003.bin'}: no point inside the range x -40..70")
    assert err[2] == f"skipped {scans / '000004.bin'}: RuntimeError: [Open3D Error] something inside open3d"
    assert sorted(p.name for p in out.glob("*.json")) == ["000000.json", "000001.json"]
    assert len(list(VideoReader(out / "bev.mp4"))) == 2
