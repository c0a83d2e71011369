"""Two demo requests at once, with different settings: each answer follows its own settings, each gets
its own result file, and nothing is written into the shared app (issue 14 §2)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _handler(demo, api_name: str):
    """The Python function behind a demo endpoint (as Gradio calls it, in a worker thread)."""
    for fn in demo.fns.values():
        if fn.api_name == api_name:
            return fn.fn
    raise KeyError(api_name)


def _together(handler, calls: list[tuple]) -> list:
    """Run every call in its own thread at once; returns the answers in order (re-raises errors)."""
    answers: list = [None] * len(calls)
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            answers[k] = handler(*calls[k])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return answers


def _meet_inside(obj, method: str, parties: int, monkeypatch) -> threading.Barrier:
    """Make ``obj.method`` wait until ``parties`` calls are inside it: the requests truly overlap."""
    barrier = threading.Barrier(parties, timeout=60)
    original = getattr(obj, method)

    def waiting(*args, **kwargs):
        barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, method, waiting)
    return barrier


@pytest.fixture(scope="module")
def tiny_fp_weights(tmp_path_factory) -> Path:
    """A random-init floor-plan model at 128x128 (as ``tests/floorplan``'s fixture)."""
    from polyhead.apps.floorplan.model import BOUNDARY_CLASSES, ROOM_CLASSES, build_floorplan_model
    from polyhead.weights import save_weights

    model = build_floorplan_model("lcnet_100", neck_channels=24, mid_channels=16)
    card = {"app": "floorplan", "boundary_classes": BOUNDARY_CLASSES, "room_classes": ROOM_CLASSES}
    return save_weights(model, tmp_path_factory.mktemp("fpw") / "tiny.safetensors", {**card, "input_size": [128, 128]})


@pytest.fixture(autouse=True)
def _private_jobs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYHEAD_DEMO_JOBS", str(tmp_path / "jobs"))


def test_two_driving_requests_keep_their_own_box_threshold(tiny_weights, monkeypatch):
    from polyhead.apps.driving.app import DrivingApp
    from polyhead.demo import build_demo

    app = DrivingApp().load(tiny_weights, conf=0.5)
    handler = _handler(build_demo({"driving": app}), "driving_image")
    example = str(sorted((REPO / "apps" / "driving" / "examples").glob("*.jpg"))[0])
    barrier = _meet_inside(app, "preprocess", 2, monkeypatch)
    (low_img, low), (high_img, high) = _together(handler, [(example, 0.0), (example, 1.0)])
    assert barrier.broken is False
    assert len(low["objects"]) > 0, "conf 0 keeps every box of the random model"
    assert high["objects"] == [], "conf 1 keeps none"
    assert app.conf == 0.5, "a request wrote its setting into the shared app"
    assert low_img != high_img and Path(low_img).is_file() and Path(high_img).is_file()
    monkeypatch.undo()
    assert handler(example, 0.0)[1] == low, "the overlapped answer equals the same request made alone"


def test_two_floorplan_requests_keep_their_own_scale(tiny_fp_weights, monkeypatch):
    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.demo import EXAMPLE, write_example
    from polyhead.demo import build_demo

    if not EXAMPLE.is_file():
        write_example()
    app = FloorplanApp().load(tiny_fp_weights)
    handler = _handler(build_demo({"floorplan": app}), "floorplan_image")
    _meet_inside(app, "predict_masks", 2, monkeypatch)
    answers = _together(handler, [(str(EXAMPLE), 0.0), (str(EXAMPLE), 40.0)])
    assert [doc["scale_px_per_m"] for *_, doc in answers] == [None, 40.0]
    assert answers[1][2]["totals"]["area_m2"] is not None or not answers[1][2]["rooms"]
    assert app.scale is None, "a request wrote its scale into the shared app"
    assert answers[0][0] != answers[1][0]


def test_identical_requests_get_separate_result_files_that_stay(tiny_weights):
    """The h11 'Too little data for declared Content-Length' came from one served file being rewritten."""
    from polyhead.apps.driving.app import DrivingApp
    from polyhead.demo import build_demo

    app = DrivingApp().load(tiny_weights)
    handler = _handler(build_demo({"driving": app}), "driving_image")
    example = str(sorted((REPO / "apps" / "driving" / "examples").glob("*.jpg"))[0])
    answers = _together(handler, [(example, 0.25)] * 3)
    paths = [Path(img) for img, _ in answers]
    assert len(set(paths)) == 3 and len({p.parent for p in paths}) == 3
    before = [(p.stat().st_ino, p.stat().st_size) for p in paths]
    handler(example, 0.25)  # a later request never touches earlier files
    assert [(p.stat().st_ino, p.stat().st_size) for p in paths] == before
    assert not [p for p in paths[0].parent.iterdir() if ".part" in p.name], "no temp file left beside a result"


def test_face_blur_is_per_request(monkeypatch):
    """Blur is a keyword of the call: the loaded default stays, each result follows its own request."""
    from polyhead.apps.face.app import FaceApp
    from polyhead.apps.face.demo import ensure_example

    app = FaceApp().load()
    from polyhead.io import read_image

    rgb = read_image(ensure_example())
    plain, blurred = app.predict_image(rgb), app.predict_image(rgb, blur=True)
    assert (plain.blur, blurred.blur, app.blur) == (False, True, False)
