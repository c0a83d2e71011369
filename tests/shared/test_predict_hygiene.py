"""Batch predict hygiene (issue 14 §3): temp files, names, inputs never replaced, bad items, videos.

Every case generates its files in ``tmp_path``; none needs the real data or trained weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyhead.errors import InputError
from polyhead.io import SourceItem, resolve_source, write_image
from polyhead.io.writers import TEMP_PREFIX, atomic_path, sweep_temp_files, temp_name, write_bytes
from polyhead.predict import item_key, predict_source, safe_name, unique_names
from polyhead.preprocess import Letterbox

REPO = Path(__file__).resolve().parents[2]


class MeanResult:
    """A stand-in result: the image mean, drawn as the image itself."""

    def __init__(self, rgb: np.ndarray):
        self.mean = float(rgb.mean())

    def to_json(self) -> dict:
        return {"mean": self.mean}

    def plot(self, image: np.ndarray) -> np.ndarray:
        return image


def _image(path: Path, value: int = 50, size: tuple[int, int] = (8, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, np.full((*size, 3), value, np.uint8))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp_of(pid: int, name: str) -> str:
    """A temp-file name as process ``pid`` of this host would make it."""
    return temp_name(name).replace(f"-{os.getpid()}-", f"-{pid}-", 1)


def _noise_video(path: Path, frames: int = 75, gop: int = 10) -> Path:
    """A real H.264 MP4 of noise frames with a keyframe every ``gop`` frames."""
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    gen = imageio_ffmpeg.write_frames(
        str(path),
        (64, 48),
        fps=25,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-g", str(gop), "-movflags", "+faststart"],
    )
    gen.send(None)
    for _ in range(frames):
        gen.send(np.ascontiguousarray(rng.integers(0, 255, (48, 64, 3), np.uint8)))
    gen.close()
    return path


# ---------------------------------------------------------------- item 1: the start-up sweep
def test_sweep_removes_only_our_dead_temp_files_in_the_folders_it_writes(tmp_path):
    src = _image(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    (out / "docs").mkdir(parents=True)
    user = {
        out / ".survey.participants.csv": b"id,age\n",
        out / ".index.partition": b"p0",
        out / "docs" / ".thesis.part2.tex": b"\\section{}",
        out / "notes.part1.txt": b"mine",
    }
    for path, data in user.items():
        path.write_bytes(data)
    (out / ".cache.part3").mkdir()  # a hidden directory of the old pattern crashed the old sweep
    dead = _dead_pid()
    temp_dir = out / _temp_of(dead, "x.jpg")
    temp_dir.mkdir()  # a directory of our shape: never removed
    stale = out / _temp_of(dead, "a.json")
    stale.write_bytes(b"{")
    deep = out / "docs" / _temp_of(dead, "b.json")  # a folder this run does not write into
    deep.write_bytes(b"{")
    old = out / _temp_of(os.getppid(), "c.jpg")  # a live pid, but two days old
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    mine = out / temp_name("d.jpg")  # this process, in progress
    mine.write_bytes(b"x")
    link = out / _temp_of(dead, "link.png")
    os.symlink(src, link)  # a symlink of our shape: never followed or removed

    report = predict_source(src, out, MeanResult, progress=False)
    assert report.exit_code == 0 and (out / "a.json").is_file()
    for path, data in user.items():
        assert path.read_bytes() == data, path
    assert (out / ".cache.part3").is_dir() and temp_dir.is_dir()
    assert not stale.exists() and not old.exists()
    assert deep.exists() and mine.exists() and link.is_symlink()
    assert src.is_file()


def test_a_second_run_never_deletes_a_running_runs_temp_file(tmp_path):
    """Run A is writing ``clip.mp4`` (its temp file is open); run B starts into the same folder."""
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys, time\n"
        "from polyhead.io.writers import atomic_path\n"
        f"with atomic_path({str(out / 'clip.mp4')!r}) as tmp:\n"
        "    tmp.write_bytes(b'half')\n"
        "    print(tmp, flush=True)\n"
        "    sys.stdin.readline()\n"
        "    tmp.write_bytes(b'whole video')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.name.startswith(TEMP_PREFIX) and tmp.exists()
        src = _image(tmp_path / "in" / "b.png")
        predict_source(src, out, MeanResult, progress=False)  # run B sweeps at start-up
        assert sweep_temp_files(out) == []
        assert tmp.exists(), "run B deleted run A's in-progress file"
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert (out / "clip.mp4").read_bytes() == b"whole video" and not tmp.exists()


def test_concurrent_writers_of_one_name_never_expose_a_partial_file(tmp_path):
    target = tmp_path / "out" / "same.json"
    code = (
        "import sys\n"
        "from polyhead.io.writers import write_bytes\n"
        "b = sys.argv[1].encode()\n"
        f"for _ in range(60): write_bytes({str(target)!r}, b * 200_000)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, c], env=env) for c in "AB"]
    seen = set()
    while any(p.poll() is None for p in procs):
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            continue
        assert len(data) == 200_000 and len(set(data)) == 1, "a reader saw a half-written file"
        seen.add(data[:1])
    assert all(p.wait() == 0 for p in procs)
    assert target.read_bytes() in (b"A" * 200_000, b"B" * 200_000)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_two_runs_into_one_folder_at_once_both_finish_whole(tmp_path):
    src = tmp_path / "in"
    for i in range(6):
        _image(src / f"im{i}.png", 10 * i)
    out = tmp_path / "out"
    reports, errors = [], []

    def run():
        try:
            reports.append(predict_source(src, out, MeanResult, progress=False))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [r.exit_code for r in reports] == [0, 0]
    for i in range(6):
        assert json.loads((out / f"im{i}.json").read_text())["mean"] == 10 * i
    assert not [p for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_trainer_sweeps_only_its_dead_temp_files(synthetic_dataset, tmp_path):
    import torch

    from polyhead.apps.driving.data import DrivingDataset, load_spec
    from polyhead.apps.driving.model import build_driving_model
    from polyhead.train import TrainConfig, Trainer
    from tests.conftest import TINY_SIZE

    out = tmp_path / "run"
    out.mkdir()
    (out / ".survey.participants.csv").write_text("keep")
    stale = out / _temp_of(_dead_pid(), "last.pt")
    stale.write_bytes(b"cut")
    spec = load_spec(synthetic_dataset)
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=out, epochs=1, batch_size=2, max_batches=1, card={"classes": spec.names})
    Trainer(build_driving_model(), DrivingDataset(spec, "train", imgsz=TINY_SIZE), lambda m: {}, cfg).fit()
    assert (out / ".survey.participants.csv").read_text() == "keep" and not stale.exists()


def test_floorplan_predict_sweeps_safely_and_skips_any_failing_plan(tmp_path, capsys):
    """Floor plans go through the shared loop (their SVG is an artifact of the result)."""
    from polyhead.apps.floorplan.postprocess import FloorplanResult

    class FakeApp:
        def predict_image(self, rgb):
            if rgb.shape[0] == 9:
                raise ZeroDivisionError("division by zero")
            return FloorplanResult.empty(rgb.shape[:2], None)

    src = tmp_path / "plans"
    _image(src / "p1.png", size=(40, 60))
    _image(src / "p2.png", size=(9, 60))
    out = tmp_path / "out"
    (out / "docs").mkdir(parents=True)
    (out / "docs" / ".thesis.part2.tex").write_text("keep")
    (out / ".index.partition").write_text("keep")
    report = predict_source(src, out, FakeApp().predict_image, overlay_suffix=".png", extra_suffixes=(".svg",))
    err = capsys.readouterr().err
    assert f"skipped {src / 'p2.png'}: ZeroDivisionError: division by zero" in err
    assert report.exit_code == 1 and (out / "p1.json").is_file() and not (out / "p2.json").exists()
    assert (out / "p1.png").is_file() and (out / "p1.svg").read_text().startswith("<")
    assert (out / "docs" / ".thesis.part2.tex").read_text() == "keep" and (out / ".index.partition").exists()


def test_gitignore_ignores_temp_files_not_the_users_part_files():
    def ignored(name: str) -> bool:
        r = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=REPO, capture_output=True)
        return r.returncode == 0

    assert ignored(temp_name("best.safetensors")) and ignored(f"apps/{temp_name('x.jpg')}")
    assert not ignored("docs/thesis.part2.tex") and not ignored("survey.participants.csv")


# ---------------------------------------------------------------- item 4: never replace what we did not write
def test_out_equal_to_the_inputs_folder_never_replaces_a_sidecar_or_a_photo(tmp_path, capsys):
    folder = tmp_path / "sub"
    src = _image(folder / "sub-01.png", 30)
    sidecar = folder / "sub-01.json"
    sidecar.write_text('{"RepetitionTime": 2.0}')
    photo = _image(folder / "sub-01.jpg", 200)  # the user's own photo, not an input of this run
    photo_bytes = photo.read_bytes()
    report = predict_source(src, folder, MeanResult, progress=False)
    assert report.exit_code == 0
    assert sidecar.read_text() == '{"RepetitionTime": 2.0}' and photo.read_bytes() == photo_bytes
    assert report.names[item_key(SourceItem(src, "image"))] == "sub-01_png"
    assert json.loads((folder / "sub-01_png.json").read_text())["mean"] == 30
    assert "note:" in capsys.readouterr().err
    again = predict_source(src, folder, MeanResult, progress=False, resume=True)  # same names: resumes
    assert again.resumed == 1 and sidecar.read_text() == '{"RepetitionTime": 2.0}'


def test_an_existing_json_of_another_program_is_never_replaced(tmp_path):
    src = _image(tmp_path / "in" / "results.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"score": 1}')
    predict_source(src, out, MeanResult, progress=False)
    assert (out / "results.json").read_text() == '{"score": 1}' and (out / "results_png.json").is_file()
    predict_source(src, out, MeanResult, progress=False)  # our own earlier outputs may be replaced
    assert sorted(p.name for p in out.glob("*.json")) == ["results.json", "results_png.json"]


@pytest.fixture(scope="module")
def tiny_medical_weights_resize(tmp_path_factory) -> Path:
    from tests.medical.conftest import save_tiny

    return save_tiny(tmp_path_factory.mktemp("mw14") / "tiny.safetensors")


def test_nifti_with_out_its_own_folder_keeps_the_bids_sidecar(tiny_medical_weights_resize, tmp_path):
    from polyhead.apps.medical.app import MedicalApp
    from polyhead.apps.medical.synthetic import blob_volume, write_nifti

    folder = tmp_path / "anat"
    image, _ = blob_volume(np.random.default_rng(0), (24, 24, 3))
    vol = write_nifti(folder / "sub-01_T1w.nii.gz", image, spacing=(1.0, 1.0, 2.0))
    sidecar = folder / "sub-01_T1w.json"
    sidecar.write_text('{"MagneticFieldStrength": 3}')
    app = MedicalApp().load(tiny_medical_weights_resize)
    report = app.predict(vol, folder, progress=False)
    assert report.exit_code == 0 and sidecar.read_text() == '{"MagneticFieldStrength": 3}'
    assert json.loads((folder / "sub-01_T1w_nii_gz.json").read_text())["source"] == str(vol)
    assert (folder / "sub-01_T1w_nii_gz_pred.nii.gz").is_file()
    assert app.predict(vol, folder, progress=False, resume=True).resumed == 1


# ---------------------------------------------------------------- item 5: unique names, resume finds the right item
def test_colliding_names_each_keep_their_own_outputs_and_resume_checks_the_item(tmp_path):
    src = tmp_path / "in"
    names = ["a b.jpg", "a+b.jpg", "a?b.jpg", "a_b.jpg", "a.jpg", "a.png", "a_png.jpg", "A.bmp"]
    for i, n in enumerate(names):
        _image(src / n, 10 + 20 * i)
    out = tmp_path / "out"
    report = predict_source(src, out, MeanResult, progress=False)
    assert report.exit_code == 0 and report.frames == len(names)
    docs = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(Path(d["source"]).name for d in docs) == sorted(names)  # one JSON per input
    for d in docs:
        assert d["mean"] == 10 + 20 * names.index(Path(d["source"]).name)
    assert len({n.casefold() for n in report.names.values()}) == len(names)
    again = predict_source(src, out, MeanResult, progress=False, resume=True)
    assert again.resumed == len(names) and again.frames == 0 and again.names == report.names
    (out / f"{report.names[item_key(SourceItem(src / 'a.png', 'image'))]}.json").unlink()
    third = predict_source(src, out, MeanResult, progress=False, resume=True)
    assert third.resumed == len(names) - 1 and third.frames == 1


def test_image_and_volume_of_one_stem_get_separate_outputs(tiny_medical_weights_resize, tmp_path):
    from polyhead.apps.medical.app import MedicalApp
    from polyhead.apps.medical.synthetic import blob_volume, lesion_image, write_nifti

    src = tmp_path / "cases"
    write_image(src / "case.jpg", lesion_image(np.random.default_rng(0), (60, 80))[0])
    image, _ = blob_volume(np.random.default_rng(1), (24, 24, 3))
    write_nifti(src / "case.nii.gz", image, spacing=(1.0, 1.0, 1.0))
    out = tmp_path / "out"
    app = MedicalApp().load(tiny_medical_weights_resize)
    report = app.predict(src, out, progress=False)
    sources = sorted(Path(json.loads(p.read_text())["source"]).name for p in out.glob("*.json"))
    assert report.exit_code == 0 and sources == ["case.jpg", "case.nii.gz"]
    (out / f"{report.names[item_key(SourceItem(src / 'case.nii.gz', 'volume'))]}.json").unlink()
    again = app.predict(src, out, progress=False, resume=True)
    assert again.resumed == 1 and again.frames == 3  # the image resumed, the volume's 3 slices redone


_PIECES = ["a", "A", "a b", "a+b", "a?b", "a_b", "a_png", "a_png_2", "_", "..", "é", "x.y", "a_jpg", "case"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(
        st.tuples(st.sampled_from(_PIECES), st.sampled_from([".jpg", ".png", ".JPG", ".mp4", ".nii.gz"])),
        min_size=1,
        max_size=12,
        unique=True,
    ),
    seed=st.randoms(use_true_random=False),
)
def test_unique_names_are_unique_safe_and_deterministic(tmp_path, picks, seed):
    items = []
    for stem, suffix in picks:
        kind = {".mp4": "video", ".nii.gz": "volume"}.get(suffix, "image")
        items.append(SourceItem(tmp_path / "src" / f"{stem}{suffix}", kind))
    names = unique_names(items, tmp_path / "out")
    assert len(names) == len(items)
    assert len({n.casefold() for n in names.values()}) == len(items)  # unique, even case-insensitively
    assert all(n == safe_name(n) and "/" not in n and not n.startswith(".") for n in names.values())
    shuffled = list(items)
    seed.shuffle(shuffled)
    assert unique_names(shuffled, tmp_path / "out") == names  # the same set gives the same names


# ---------------------------------------------------------------- item 6: existing paths win over patterns
def test_existing_paths_with_pattern_characters_are_taken_literally(tmp_path, monkeypatch):
    _image(tmp_path / "photo[1].jpg")
    _image(tmp_path / "photo1.jpg")
    assert [i.path.name for i in resolve_source(str(tmp_path / "photo[1].jpg"))] == ["photo[1].jpg"]
    assert [i.path.name for i in resolve_source(str(tmp_path / "photo[0-9].jpg"))] == ["photo1.jpg"]  # a pattern
    run = tmp_path / "run[2]"
    _image(run / "x.png")
    _image(run / "y.png")
    assert [i.path.name for i in resolve_source(run)] == ["x.png", "y.png"]
    assert [i.path.name for i in resolve_source(str(run / "*.png"))] == ["x.png", "y.png"]
    monkeypatch.chdir(tmp_path)
    _image(tmp_path / "2024" / "z.png")
    assert [(i.kind, i.path.name) for i in resolve_source("2024")] == [("image", "z.png")]  # not camera 2024
    assert [(i.kind, i.camera) for i in resolve_source("7")] == [("camera", 7)]


# ---------------------------------------------------------------- item 9: non-UTF-8 video names
def test_video_with_a_non_utf8_name_is_read_not_a_segfault(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    clip = _noise_video(folder / "plain.mp4", frames=12)
    bad = os.path.join(os.fsencode(folder), b"clip\xff\xfe.mp4")
    os.rename(clip, bad)
    out = tmp_path / "out"
    code = (
        "import sys\n"
        "from polyhead.io import VideoReader\n"
        "from polyhead.predict import predict_source\n"
        "from tests.shared.test_predict_hygiene import MeanResult\n"
        f"print(sum(1 for _ in VideoReader({os.fsdecode(bad)!r})))\n"
        f"r = predict_source({str(folder)!r}, {str(out)!r}, MeanResult, progress=False)\n"
        "print(r.frames, r.exit_code, [p.name for p in r.written])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "12" and lines[1].startswith("12 0 ['clip__.mp4']")
    assert os.path.exists(bad) and not [p for p in os.listdir(tempfile_dir()) if p.startswith("polyhead-video-")]


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


# ---------------------------------------------------------------- item 10: any exception skips one item only
def test_any_exception_skips_only_its_item_with_one_line(tmp_path, capsys):
    src = tmp_path / "in"
    for i in range(4):
        _image(src / f"im{i}.png", 10 * i, size=(8 + i, 10))

    def one(rgb):
        if rgb.shape[0] == 10:
            raise RuntimeError("CUDA-like failure\nwith a second line")
        return MeanResult(rgb)

    def many(images):
        raise ValueError("a batch op failed")  # not an InputError: still falls back one at a time

    report = predict_source(src, tmp_path / "out", one, predict_many=many, batch=8, progress=False)
    err = capsys.readouterr().err
    assert report.frames == 3 and report.exit_code == 1
    assert f"skipped {src / 'im2.png'}: RuntimeError: CUDA-like failure\n" in err
    assert "second line" not in err


def test_keyboard_interrupt_still_stops_the_run(tmp_path):
    src = _image(tmp_path / "a.png")

    def stop(rgb):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_source(src, tmp_path / "out", stop, progress=False)


@pytest.mark.parametrize("shape", [(3, 20000), (20000, 3), (1, 1), (1, 5000)])
def test_letterbox_of_thin_images_keeps_every_side_at_least_one_pixel(shape):
    lb = Letterbox.fit(shape, (384, 640))
    x0, y0, x1, y1 = lb.inner
    assert x1 - x0 >= 1 and y1 - y0 >= 1 and x1 <= 640 and y1 <= 384
    out = lb.apply(np.zeros((*shape, 3), np.uint8))
    assert out.shape == (384, 640, 3)
    m = lb.to_original_map(np.zeros((384, 640), np.uint8))
    assert m.shape == shape


def test_thin_image_through_the_driving_app(tiny_weights, tmp_path):
    from polyhead.cli import main

    src = tmp_path / "in"
    _image(src / "thin.png", size=(3, 2000))
    _image(src / "ok.png", size=(60, 80))
    out = tmp_path / "out"
    assert main(["driving", "predict", str(src), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    assert json.loads((out / "thin.json").read_text())["image_size"] == {"height": 3, "width": 2000}


# ---------------------------------------------------------------- item 13: a corrupt-middle video is partial
def test_corrupt_middle_video_is_read_past_the_damage_and_reported_partial(tmp_path, capsys):
    clip = _noise_video(tmp_path / "good.mp4")
    raw = bytearray(clip.read_bytes())
    n = len(raw)
    raw[n // 3 : n // 3 + n // 8] = np.random.default_rng(1).integers(0, 256, n // 8, dtype=np.uint8).tobytes()
    bad = tmp_path / "in" / "bad.mp4"
    bad.parent.mkdir()
    bad.write_bytes(bytes(raw))
    out = tmp_path / "out"
    report = predict_source(bad, out, MeanResult, progress=False)
    err = capsys.readouterr().err
    assert report.exit_code == 1 and len(report.partial) == 1
    label, summary = report.partial[0]
    decoded = int(summary.split()[1])
    assert label == str(bad) and " of 75 frames" in summary and 24 < decoded < 75
    assert f"warning: {bad}: decoded {decoded} of 75 frames" in err
    frames = sorted(int(p.stem) for p in (out / "bad").glob("*.json"))
    assert len(frames) == decoded and frames[-1] > decoded - 1  # named by the frame's index in the file
    ok = predict_source(clip, tmp_path / "out2", MeanResult, progress=False)
    assert ok.exit_code == 0 and not ok.partial and ok.frames == 75


# ---------------------------------------------------------------- item 17: messages that name the right thing
def test_a_missing_camera_is_named_as_a_camera(tmp_path, capsys):
    report = predict_source(97, tmp_path / "out", MeanResult, progress=False)
    err = capsys.readouterr().err
    assert report.exit_code == 2 and report.skipped[0][0] == "camera 97"
    assert "skipped camera 97: cannot open" in err and "None" not in err


def test_export_refuses_to_replace_a_foreign_json_and_a_bad_imgsz(tiny_weights, tmp_path, capsys):
    from polyhead.cli import main

    out = tmp_path / "X"
    out.mkdir()
    (out / "results.json").write_text('{"accuracy": 0.9}')
    code = main(["driving", "export", "--weights", str(tiny_weights), "--out", str(out / "results.onnx")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "results.json" in err and "not a polyhead model card" in err and "\n" not in err
    assert (out / "results.json").read_text() == '{"accuracy": 0.9}' and not (out / "results.onnx").exists()

    from argparse import Namespace

    from polyhead.apps.driving.app import DrivingApp

    args = Namespace(weights=str(tiny_weights), out=str(tmp_path / "m.onnx"), imgsz=[31, 31], tasks=None)
    with pytest.raises(InputError, match="multiples of 32"):
        DrivingApp().export(args)
    assert not (tmp_path / "m.onnx").exists()


def test_atomic_path_temp_names_are_ours_and_unique(tmp_path):
    seen = set()
    for _ in range(50):
        with atomic_path(tmp_path / "a.nii.gz") as tmp:
            assert tmp.name.startswith(TEMP_PREFIX) and tmp.name.endswith("-a.nii.gz") and tmp.exists()
            seen.add(tmp.name)
    assert len(seen) == 50 and [p.name for p in tmp_path.iterdir()] == ["a.nii.gz"]
    long = "x" * 300 + ".json"  # a long final name still gives a legal temp name that keeps the suffix
    name = temp_name(long)
    assert len(name.encode()) <= 255 and name.endswith(".json")
    write_bytes(tmp_path / ("y" * 250 + ".json"), b"{}")
