"""The CLI end to end on generated data: predict on a folder and a video, errors, export."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polyhead.cli import main
from polyhead.io import VideoReader
from polyhead.io.writers import TEMP_PREFIX

REPO = Path(__file__).resolve().parents[2]
DRIVING_FILES = (".jpg", ".json", "_drivable.png", "_lane.png")  # per image: overlay, JSON, both masks


def test_help_lists_apps_modes_and_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "driving" in out and "demo" in out and "bench" in out
    with pytest.raises(SystemExit):
        main(["driving", "predict", "--help"])
    out = capsys.readouterr().out
    assert "--weights" in out and "--out" in out and "examples:" in out


def test_predict_folder_skips_bad_items_and_finishes(road_images, tiny_weights, tmp_path, capsys):
    (road_images / "broken.jpg").write_bytes(b"")
    (road_images / "garbage.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    code = main(["driving", "predict", str(road_images), "--weights", str(tiny_weights), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1  # some items skipped
    assert "skipped" in err and "broken.jpg: zero-byte file" in err and "garbage.png" in err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"road{i}{ext}" for i in range(3) for ext in DRIVING_FILES] + ["summary.csv"])
    rows = {r["name"]: r for r in csv.DictReader(open(out / "summary.csv", newline=""))}
    assert rows["broken"]["status"] == "skipped" and rows["broken"]["problem"] == "zero-byte file"
    assert rows["garbage"]["status"] == "skipped" and [rows[f"road{i}"]["status"] for i in range(3)] == ["ok"] * 3
    doc = json.loads((out / "road0.json").read_text())
    assert doc["image_size"] == {"height": 180, "width": 320}
    assert {"objects", "drivable_share", "lanes"} <= set(doc)
    assert 0.0 <= doc["drivable_share"] <= 1.0
    assert not [p for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert sorted(p.name for p in road_images.iterdir()) == [
        "broken.jpg",
        "garbage.png",
        "road0.jpg",
        "road1.jpg",
        "road2.jpg",
    ]  # inputs untouched


def test_predict_video_keeps_fps_and_size_and_writes_frame_json(tiny_weights, tmp_path):
    from polyhead.apps.driving.synthetic import write_video

    clip = write_video(tmp_path / "clip.mp4", frames=6, size=(180, 320), fps=8)
    out = tmp_path / "out"
    assert main(["driving", "predict", str(clip), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    r = VideoReader(out / "clip.mp4")
    assert (r.width, r.height, round(r.fps)) == (320, 180, 8) and len(list(r)) == 6
    frames = sorted((out / "clip").glob("*.json"))
    assert len(frames) == 6 and json.loads(frames[0].read_text())["frame"] == 0


@pytest.mark.parametrize(
    "source, message",
    [
        ("missing.jpg", "missing.jpg: no such file"),
        ("notes.txt", "unsupported file type '.txt'"),
        ("empty", "folder holds no supported files"),
    ],
)
def test_bad_sources_give_one_line_errors(tmp_path, tiny_weights, source, message):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "polyhead",
            "driving",
            "predict",
            str(tmp_path / source),
            "--weights",
            str(tiny_weights),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_corrupt_video_is_skipped_with_its_name(tmp_path, tiny_weights, road_images, capsys):
    (road_images / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 200)
    code = main(["driving", "predict", str(road_images), "--weights", str(tiny_weights), "--out", str(tmp_path / "o")])
    assert code == 1 and "bad.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o" / "bad.mp4").exists()


def test_export_then_predict_with_onnx(tiny_weights, road_images, tmp_path):
    onnx = tmp_path / "m.onnx"
    assert main(["driving", "export", "--weights", str(tiny_weights), "--out", str(onnx)]) == 0
    assert onnx.is_file() and onnx.with_suffix(".json").is_file()
    out = tmp_path / "o"
    assert main(["driving", "predict", str(road_images), "--weights", str(onnx), "--out", str(out)]) == 0
    assert len(list(out.glob("*.json"))) == 3


def test_task_switch_on_predict(tiny_weights, road_images, tmp_path):
    out = tmp_path / "o"
    assert (
        main(
            [
                "driving",
                "predict",
                str(road_images / "road0.jpg"),
                "--weights",
                str(tiny_weights),
                "--tasks",
                "lane",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "road0.json").read_text())
    assert "lanes" in doc and "drivable_share" not in doc and doc["objects"] == []


def test_pickle_weights_refused_on_the_cli(tmp_path, road_images, capsys):
    (tmp_path / "m.pt").write_bytes(b"\x80\x04K\x01.")
    (tmp_path / "m.json").write_text(json.dumps({"model": {"encoder": "lcnet_075", "heads": {}}}))
    assert (
        main(
            ["driving", "predict", str(road_images), "--weights", str(tmp_path / "m.pt"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "--trust-pickle" in capsys.readouterr().err
    assert np.all([not p.exists() for p in [tmp_path / "o"]])


def test_resume_only_does_missing_outputs_and_out_dir_inside_input_is_not_read(road_images, tiny_weights, capsys):
    out = road_images / "predictions"  # output folder inside the input folder
    args = ["driving", "predict", str(road_images), "--weights", str(tiny_weights), "--out", str(out)]
    assert main(args) == 0
    (out / "road1.json").unlink()  # as if the run had been killed before this item
    stamp = (out / "road0.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "2 already done" in capsys.readouterr().out
    assert (out / "road1.json").is_file() and (out / "road0.json").stat().st_mtime_ns == stamp
    outputs = sorted(f"road{i}{e}" for i in range(3) for e in DRIVING_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted([*outputs, "summary.csv"])


@pytest.mark.slow
def test_killed_batch_predict_resumes_without_half_written_files(tiny_weights, tmp_path):
    import os
    import signal
    import time

    from polyhead.apps.driving.synthetic import road_scene
    from polyhead.io import write_image

    src = tmp_path / "in"
    rng = np.random.default_rng(0)
    for i in range(24):
        write_image(src / f"f{i:02d}.jpg", road_scene(rng, (180, 320)).image)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "polyhead",
        "driving",
        "predict",
        str(src),
        "--weights",
        str(tiny_weights),
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(out.glob("*.json"))) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in out.glob("f*.json")}
    assert 0 < len(done_before) < 24
    stamps = {n: (out / n).stat().st_mtime_ns for n in done_before}
    rerun = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(done_before)} already done" in rerun.stdout or len(done_before) == 24
    names = sorted(p.name for p in out.iterdir())
    whole = [f"f{i:02d}{e}" for i in range(24) for e in DRIVING_FILES]
    assert names == sorted([*whole, "summary.csv"])  # whole, nothing half-written
    assert all((out / n).stat().st_mtime_ns == t for n, t in stamps.items())  # finished items were not redone
    for p in out.glob("*.json"):
        json.loads(p.read_text())


def test_odd_input_names_stay_inside_the_output_folder(tiny_weights, tmp_path):
    from polyhead.apps.driving.synthetic import road_scene
    from polyhead.io import write_image

    src = tmp_path / "in"
    img = road_scene(np.random.default_rng(0), (90, 160)).image
    for name in ("..jpg", "a b;rm -rf.jpg", "ü$(x).jpg"):
        write_image(src / name, img)
    out = tmp_path / "out"
    assert main(["driving", "predict", str(src), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    written = [p for p in tmp_path.rglob("*.json")]
    assert len(written) == 3 and all(p.parent == out for p in written)
    assert all(not p.name.startswith(".") for p in out.iterdir())


def test_batched_predict_matches_one_at_a_time(road_images, tiny_weights, tmp_path, capsys):
    """--batch 2 over a folder with a broken file: same JSON as --batch 1, the broken file skipped alone."""
    (road_images / "broken.jpg").write_bytes(b"")
    outs = {}
    for b in ("1", "2"):
        out = tmp_path / f"b{b}"
        args = ["driving", "predict", str(road_images), "--weights", str(tiny_weights), "--out", str(out), "--batch", b]
        assert main(args) == 1
        outs[b] = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert sorted(outs["1"]) == ["road0.json", "road1.json", "road2.json"]
    for name, doc in outs["1"].items():
        assert doc["image_size"] == outs["2"][name]["image_size"]
        assert abs(doc["drivable_share"] - outs["2"][name]["drivable_share"]) < 1e-4
    assert main(["driving", "predict", str(road_images), "--out", str(tmp_path / "x"), "--batch", "0"]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
