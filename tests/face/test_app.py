"""FaceApp end to end on generated inputs with tiny random weights: CLI predict, crops, video, bad inputs."""

import json

import cv2
import numpy as np
import pytest
import torch

from polyhead.apps.face.app import FaceApp, check_image
from polyhead.apps.face.cascade import STAGES, build_net
from polyhead.apps.face.model import attr_config, load_face_weights, save_face_weights
from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.io import write_image
from polyhead.model import build_model


@pytest.fixture(scope="module")
def tiny_face_weights(tmp_path_factory):
    torch.manual_seed(0)
    parts = {k: build_net(k) for k in STAGES}
    parts["attr"] = build_model(attr_config("lcnet_075"))
    path = tmp_path_factory.mktemp("fw") / "face.safetensors"
    # near-certain thresholds keep random nets from proposing thousands of faces
    save_face_weights(path, parts, {"app": "face", "detector": {"min_size": 24, "thresholds": [0.99, 0.99, 0.99]}})
    return path


def test_weights_round_trip_prefixes(tiny_face_weights):
    from safetensors.torch import load_file

    keys = load_file(str(tiny_face_weights)).keys()
    assert {k.split(".")[0] for k in keys} == {"pnet", "rnet", "onet", "attr"}
    parts, card = load_face_weights(tiny_face_weights)
    assert set(parts) == {"pnet", "rnet", "onet", "attr"} and "attr_model" in card


def test_pickle_weights_refused(tmp_path):
    bad = tmp_path / "face.pt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="safetensors"):
        FaceApp().load(bad)
    with pytest.raises(InputError, match="not found"):
        FaceApp().load(tmp_path / "missing.safetensors")


def test_cli_predict_writes_files(tiny_face_weights, tmp_path):
    src = tmp_path / "in"
    rng = np.random.default_rng(0)
    write_image(src / "a.jpg", rng.integers(0, 255, (90, 120, 3), np.uint8))
    gray = rng.integers(0, 255, (70, 60), np.uint8)
    cv2.imwrite(str(src / "gray.png"), gray)
    rgba = rng.integers(0, 255, (40, 50, 4), np.uint8)
    cv2.imwrite(str(src / "rgba.png"), rgba)
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    code = main(["face", "predict", str(src), "--weights", str(tiny_face_weights), "--out", str(out), "--save-crops"])
    assert code == 1  # one bad file skipped, the rest written
    for stem in ("a", "gray", "rgba"):
        assert (out / f"{stem}.jpg").is_file()
        doc = json.loads((out / f"{stem}.json").read_text())
        assert doc["count"] == len(doc["faces"])
    assert not (out / "broken.jpg").exists()


def test_cli_predict_video_with_blur(tiny_face_weights, tmp_path):
    from polyhead.io import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, fps=5) as w:
        for i in range(4):
            w.write(np.full((64, 96, 3), 40 * i, np.uint8))
    out = tmp_path / "vout"
    assert main(["face", "predict", str(video), "--weights", str(tiny_face_weights), "--out", str(out), "--blur"]) == 0
    assert (out / "clip.mp4").is_file() and len(list((out / "clip").glob("*.json"))) == 4


def test_bad_inputs_raise_input_error(tiny_face_weights, tmp_path):
    app = FaceApp().load(tiny_face_weights)
    for bad in (np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 7), np.uint8), np.full((8, 8, 3), np.nan), "x"):
        with pytest.raises(InputError):
            app.predict_image(bad)
    with pytest.raises(InputError):
        app.predict(tmp_path / "nothing_here", tmp_path / "o")
    with pytest.raises(InputError):
        FaceApp().load(tiny_face_weights, thresholds=(0.5, 2.0, 0.5))
    with pytest.raises(InputError):
        FaceApp().load(tiny_face_weights, tasks=["race"])
    assert check_image(np.zeros((5, 5), np.uint8)).shape == (5, 5, 3)
    assert len(app.predict_image(np.zeros((4, 4, 3), np.uint8)).faces) == 0  # tiny image: no face, no error


def test_detection_only_switch(tiny_face_weights):
    app = FaceApp().load(tiny_face_weights, tasks=["none"])
    assert app.attr is None
    app = FaceApp().load(tiny_face_weights, tasks=["gender"])
    assert app.attr.active_tasks == ["gender"]


def test_huge_image_searched_at_reduced_size(tiny_face_weights):
    app = FaceApp().load(tiny_face_weights)
    r = app.predict_image(np.zeros((2600, 3100, 3), np.uint8))
    assert r.image_size == (2600, 3100) and r.to_json()["count"] == len(r.faces)


def test_utkface_names_and_csv(tmp_path):
    from polyhead.apps.face.samples import read_utkface

    (tmp_path / "chips").mkdir()
    for name in ("25_1_0_2017.jpg.chip.jpg", "7_0_2_2017.jpg.chip.jpg", "junk.jpg"):
        (tmp_path / "chips" / name).write_bytes(b"x")
    assert [(a, g) for _, a, g in read_utkface(tmp_path / "chips")] == [(25, 1), (7, 0)]
    csv = tmp_path / "faces.csv"
    csv.write_text("path,age,gender\nchips/a.jpg,40,0\n")
    ((p, a, g),) = read_utkface(csv)
    assert p == tmp_path / "chips/a.jpg" and (a, g) == (40, 0)
    csv.write_text("file,years\nx.jpg,3\n")
    with pytest.raises(InputError, match="columns"):
        read_utkface(csv)


def test_attribute_model_reads_its_own_crop(tiny_face_weights, tmp_path, monkeypatch):
    """A model trained on wider crops (card ``crop``) is fed those crops; saved crops stay 112 px ArcFace."""
    from polyhead.apps.face import attributes
    from polyhead.apps.face.model import attr_crop

    parts, card = load_face_weights(tiny_face_weights)
    parts["attr"] = build_model(attr_config("lcnet_075", crop_size=128, crop_margin=1.25))
    path = tmp_path / "face.safetensors"
    save_face_weights(path, parts, {**card, "detector": {"min_size": 24, "thresholds": [0.0, 0.0, 0.0]}})
    app = FaceApp().load(path, runtime="torch")
    assert attr_crop(app.attr) == (128, 1.25)
    seen = []
    real = attributes.predict_attributes
    monkeypatch.setattr(attributes, "predict_attributes", lambda m, crops: seen.append(crops) or real(m, crops))
    img = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    (result,), (crops,) = app.predict_images([img], with_crops=True)
    assert result.faces, "thresholds 0 keep at least one window"
    assert {c.shape for c in seen[0]} == {(128, 128, 3)}
    assert {c.shape for c in crops} == {(112, 112, 3)}
    assert all(f.age is not None and f.p_female is not None for f in result.faces)
    with pytest.raises(ValueError, match="multiple of 16"):
        attr_config("lcnet_075", crop_size=100)
