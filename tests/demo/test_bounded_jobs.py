"""The demo cannot be taken down (issue 14 §3 item 7): inputs over budget are refused up front, every job
has a time limit, old request folders are swept, cross-origin requests are refused, a busy port is one line."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from polyhead.errors import InputError


@pytest.fixture(autouse=True)
def _private_jobs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYHEAD_DEMO_JOBS", str(tmp_path / "jobs"))


def _png(path: Path, width: int, height: int, rows: bool = True) -> Path:
    """A grey PNG of any size written row by row (a 12000x12000 one is a few hundred KB, like the probe's);
    ``rows=False`` writes only the header (a file that claims the size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    body = b""
    if rows:
        row = b"\x00" + b"\x80" * width
        body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------- input budgets
def test_a_12000_px_png_is_decoded_reduced_not_whole(tmp_path):
    from polyhead.demo_jobs import MAX_IMAGE_PIXELS, read_upload

    path = _png(tmp_path / "huge.png", 12000, 12000)
    assert path.stat().st_size < 1_000_000
    with pytest.warns(UserWarning, match="decoded at 1/"):
        rgb = read_upload(path)
    assert rgb.shape[0] * rgb.shape[1] <= MAX_IMAGE_PIXELS and max(rgb.shape[:2]) <= 6000


def test_an_image_claiming_a_giant_size_is_refused_before_decoding(tmp_path):
    from polyhead.demo_jobs import read_upload

    with pytest.raises(InputError, match="limit"):
        read_upload(_png(tmp_path / "bomb.png", 30000, 30000, rows=False))


def test_a_decoded_image_over_the_demo_budget_is_refused(tmp_path, monkeypatch):
    from polyhead import demo_jobs

    monkeypatch.setattr(demo_jobs, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(InputError, match="demo's"):
        demo_jobs.read_upload(_png(tmp_path / "big.png", 200, 120))
    assert demo_jobs.read_upload(_png(tmp_path / "ok.png", 100, 100)).shape == (100, 100, 3)


def test_a_volume_over_the_voxel_budget_is_refused_from_its_header(tmp_path):
    import nibabel as nib

    from polyhead.demo_jobs import MAX_VOLUME_VOXELS, check_volume

    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 20))  # 80 M voxels claimed; the file holds none of them
    header.set_data_dtype(np.float32)
    path = tmp_path / "claims.nii"
    path.write_bytes(header.binaryblock + b"\x00" * 4)
    assert 2000 * 2000 * 20 > MAX_VOLUME_VOXELS
    with pytest.raises(InputError, match="voxels, above the demo's"):
        check_volume(path)
    small = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.uint8), np.eye(4)), str(small))
    assert check_volume(small) == (8, 8, 4)


def test_a_long_volume_stops_between_slices_at_its_time_limit(tmp_path):
    import gradio as gr
    import nibabel as nib

    from polyhead.apps.medical.demo import volume_to_mesh
    from polyhead.demo_jobs import run_job

    class SlowApp:
        """Stands in for a loaded MedicalApp: 0.1 s a slice, counts the slices it saw."""

        weights_path = "slow.safetensors"
        predictor = None

        def __init__(self):
            self.slices = 0

        def predict_image(self, rgb):
            from types import SimpleNamespace

            time.sleep(0.1)
            self.slices += 1
            return SimpleNamespace(mask=np.zeros(rgb.shape[:2], np.uint8), diagnosis={})

    path = tmp_path / "long.nii.gz"
    data = np.random.default_rng(0).random((32, 32, 60)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    app = SlowApp()
    with pytest.raises(gr.Error, match="time limit"):
        run_job(volume_to_mesh, (app, str(path)), {}, timeout=0.5)
    time.sleep(0.5)
    seen = app.slices
    time.sleep(0.5)
    assert app.slices == seen and seen < 20, "the volume kept running after its time limit"


def test_a_video_over_the_frame_budget_is_refused(tmp_path, monkeypatch):
    from polyhead import demo_jobs
    from polyhead.io import VideoWriter

    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        for k in range(12):
            w.write(np.full((64, 96, 3), 20 * k, np.uint8))
    demo_jobs.check_video(path)
    monkeypatch.setattr(demo_jobs, "MAX_VIDEO_FRAMES", 5)
    with pytest.raises(InputError, match="frames, above the demo's 5 limit"):
        demo_jobs.check_video(path)
    monkeypatch.setattr(demo_jobs, "MAX_VIDEO_PIXELS", 32 * 32)
    with pytest.raises(InputError, match="video frames are 96x64"):
        demo_jobs.check_video(path)


# ---------------------------------------------------------------- time limit and errors
def test_a_job_over_its_time_limit_answers_with_a_message_and_stops():
    import gradio as gr

    from polyhead.demo_jobs import check_deadline, run_job

    stopped = threading.Event()

    def endless() -> None:
        try:
            while True:
                check_deadline()
                time.sleep(0.01)
        finally:
            stopped.set()

    t = time.monotonic()
    with pytest.raises(gr.Error, match="time limit"):
        run_job(endless, (), {}, timeout=0.3)
    assert time.monotonic() - t < 5
    assert stopped.wait(5), "the timed-out worker kept running"


def test_bad_inputs_become_one_line_messages_and_results_land_in_the_request_folder():
    import gradio as gr

    from polyhead.demo_jobs import current_job, demo_job, job_file, job_folder, jobs_root

    @demo_job(timeout=30)
    def bad(path: str) -> None:
        raise InputError(path, "not a readable image")

    with pytest.raises(gr.Error, match="x.png: not a readable image"):
        bad("x.png")

    @demo_job(timeout=30)
    def good() -> tuple[Path, Path]:
        f = job_file("out.txt")
        f.write_text("ok")
        return f, current_job().folder

    (f1, d1), (f2, d2) = good(), good()
    assert f1.parent == d1 and f2.parent == d2 and d1 != d2
    assert demo_job(timeout=30)(job_folder)().is_dir() and job_folder() != job_folder()
    assert d1.parent == jobs_root() and d1.name.startswith("req-")
    with pytest.raises(ValueError):
        job_file("../escape.txt")


def test_handlers_are_not_coroutines():
    """Heavy work must run in Gradio's worker threads, never on the server's event loop."""
    import inspect

    from polyhead.demo import build_demo
    from polyhead.demo_jobs import is_job

    demo = build_demo()
    fns = list(demo.fns.values())
    assert fns
    for fn in fns:
        assert not inspect.iscoroutinefunction(fn.fn) and not inspect.isasyncgenfunction(fn.fn), fn.api_name
    public = [fn for fn in fns if fn.api_visibility == "public"]
    assert {"driving_image", "lidar_scan", "medical_volume"} <= {fn.api_name for fn in public}
    assert all(is_job(fn.fn) for fn in public), "every endpoint is a bounded job"
    assert demo.delete_cache is not None and demo.delete_cache[1] <= 3600


def test_arrays_a_tab_returns_are_handed_over_as_files_of_the_request():
    """Gradio saves a returned array under a content-hash name in its shared cache, rewriting it while
    another client downloads the same answer; the demo writes it into the request's folder instead."""
    import gradio as gr

    from polyhead.demo import bound_endpoints
    from polyhead.io import read_image

    with gr.Blocks() as demo:
        n = gr.Number()
        out, doc = gr.Image(), gr.JSON()
        gr.Button().click(lambda k: (np.full((8, 12, 3), int(k), np.uint8), {"k": k}), n, [out, doc], api_name="arr")
    bound_endpoints(demo)
    (fn,) = [f.fn for f in demo.fns.values() if f.api_name == "arr"]
    (p1, d1), (p2, d2) = fn(7), fn(7)
    assert isinstance(p1, str) and p1 != p2 and d1 == d2 == {"k": 7}
    assert Path(p1).parent.name.startswith("req-") and read_image(p1)[0, 0].tolist() == [7, 7, 7]


# ---------------------------------------------------------------- cleaning
def test_sweep_removes_only_old_request_folders_never_live_ones(tmp_path):
    from polyhead import demo_jobs

    root = tmp_path / "jobs"
    old, new, live, other = (root / n for n in ("req-old", "req-new", "req-live", "user-folder"))
    for d in (old, new, live, other):
        d.mkdir(parents=True)
        (d / "f.jpg").write_bytes(b"x")
    hour_ago = time.time() - 2 * 3600
    for d in (old, live, other):
        os.utime(d / "f.jpg", (hour_ago, hour_ago))
        os.utime(d, (hour_ago, hour_ago))
    demo_jobs._LIVE.hold(live)
    try:
        removed = demo_jobs.sweep(root, max_age=3600)
    finally:
        demo_jobs._LIVE.release(live)
    assert removed == [old]
    assert not old.exists() and new.exists() and live.exists() and other.exists()


# ---------------------------------------------------------------- origin guard and port
def test_origin_guard_rules():
    from polyhead.demo import OriginGuard

    g = OriginGuard(None, loopback=True)
    assert g.refusal(None, "127.0.0.1:7860") is None  # curl, gradio_client
    assert g.refusal("http://127.0.0.1:7860", "127.0.0.1:7860") is None
    assert g.refusal("http://localhost:7860", "localhost:7860") is None
    assert "cross-origin" in g.refusal("https://evil.example", "127.0.0.1:7860")
    assert "cross-origin" in g.refusal("null", "127.0.0.1:7860")
    assert "cross-origin" in g.refusal("http://127.0.0.1:9999", "127.0.0.1:7860")
    assert "loopback" in g.refusal("http://evil.example:7860", "evil.example:7860")  # DNS rebinding
    lan = OriginGuard(None, loopback=False)
    assert lan.refusal("http://box.lan:7860", "box.lan:7860") is None
    assert lan.refusal("https://evil.example", "box.lan:7860") is not None
    shared = OriginGuard(None, loopback=False, trusted_suffixes=(".gradio.live",))
    assert shared.refusal("https://abc123.gradio.live", "127.0.0.1:7860") is None
    assert shared.refusal("https://gradio.live.evil.example", "127.0.0.1:7860") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_demo_refuses_cross_origin_uploads_and_busy_ports(tmp_path):
    import gradio as gr
    import httpx

    from polyhead.demo import serve

    with gr.Blocks() as demo:
        gr.Textbox()
    port = _free_port()
    serve(demo, "127.0.0.1", port, block=False, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/upload"
        files = {"files": ("a.txt", b"hello")}
        evil = httpx.post(url, files=files, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "cross-origin" in evil.text
        same = httpx.post(url, files=files, headers={"Origin": f"http://127.0.0.1:{port}"})
        assert same.status_code == 200, same.text
        assert httpx.post(url, files=files).status_code == 200
        rebound = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 403
        with gr.Blocks() as second:
            gr.Textbox()
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is busy"):
            serve(second, "127.0.0.1", port, block=False, quiet=True)
    finally:
        demo.close()


def test_busy_demo_port_is_a_one_line_error_from_the_cli(capsys, monkeypatch):
    from polyhead import demo as demo_mod
    from polyhead.cli import main

    def must_not_build(*_, **__):
        raise AssertionError("the port is checked before the demo is built")

    monkeypatch.setattr(demo_mod, "build_demo", must_not_build)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"port {port}" in err and "Traceback" not in err
