"""`polyhead face export`: the cascade nets + attribute model as ONNX; ONNX Runtime predicts the same faces."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.apps.face.app import FaceApp
from polyhead.apps.face.export import load_face_onnx, part_files
from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.io import read_image
from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights" / "face.safetensors"
EXAMPLE = ROOT / "apps" / "face" / "examples" / "generated_astronaut.jpg"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("onnx") / "face.onnx"
    assert main(["face", "export", "--weights", str(WEIGHTS), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def apps(exported):
    return FaceApp().load(WEIGHTS), FaceApp().load(exported)


def test_export_writes_every_part_and_the_card(exported):
    files = part_files(exported)
    for part in ("pnet", "rnet", "onet", "attr"):
        assert files[part].is_file() and files[part].stat().st_size > 10_000, part
    assert files["single"].is_file()  # the shipped weights hold the single-shot detector too
    assert exported.with_suffix(".json").is_file()
    parts, card = load_face_onnx(exported)
    assert set(parts) == {"pnet", "rnet", "onet", "attr", "single"}
    assert (
        card["detector"]["thresholds"] == json.loads(WEIGHTS.with_suffix(".json").read_text())["detector"]["thresholds"]
    )
    # P-Net takes any image size (every pyramid level), R-Net any number of crops
    for h, w in ((12, 12), (37, 53), (120, 90)):
        out = parts["pnet"](torch.zeros(2, 3, h, w))
        assert out["cls"].shape == (2, 2, (h - 2 + 1) // 2 - 4, (w - 2 + 1) // 2 - 4)
    assert parts["rnet"](torch.zeros(5, 3, 24, 24))["lmk"].shape == (5, 10)


def _images() -> list[tuple[str, np.ndarray]]:
    out = [(EXAMPLE.name, read_image(EXAMPLE))]
    root = ROOT.parent / "shared" / "data" / "face"
    if (root / "dlib_examples").is_dir():
        out += [(p.name, read_image(p)) for p in sorted((root / "dlib_examples").glob("*.jpg"))[:4]]
    if (root / "facemask_cc0" / "images").is_dir():
        out += [(p.name, read_image(p)) for p in sorted((root / "facemask_cc0" / "images").glob("*.jpg"))[:3]]
    return out


def _compare(a, b, name):
    assert len(a.faces) == len(b.faces), name
    for fa, fb in zip(a.faces, b.faces, strict=True):
        assert np.abs(fa.box - fb.box).max() <= 1.0, name
        assert np.abs(fa.points - fb.points).max() <= 1.0, name
        assert abs(fa.age - fb.age) <= 0.5, name
        assert fa.age_spread > 0 and abs(fa.age_spread - fb.age_spread) <= 0.5, name
        assert (fa.p_female > 0.5) == (fb.p_female > 0.5), name


def test_onnx_runtime_gives_the_same_faces(apps):
    torch_app, onnx_app = apps
    images = _images()
    total = 0
    for name, im in images:
        a, b = torch_app.predict_image(im), onnx_app.predict_image(im)
        _compare(a, b, name)
        total += len(a.faces)
    assert total >= 1  # the example holds a real face (the astronaut portrait)


def test_onnx_runtime_batched_same_as_torch(apps):
    """The batch path (split across cores) with ONNX Runtime sessions called from worker threads."""
    torch_app, onnx_app = apps
    images = [im for _, im in _images()]
    for name, (a, b) in enumerate(zip(torch_app.predict_images(images), onnx_app.predict_images(images), strict=True)):
        _compare(a, b, name)


def test_real_photos_same_faces(apps):
    """dlib's photos of people (skipped without ../shared/data): both runtimes find the same faces."""
    shared_data("face", "dlib_examples", "testing.xml")
    torch_app, onnx_app = apps
    root = ROOT.parent / "shared" / "data" / "face" / "dlib_examples"
    for p in sorted(root.glob("*.jpg")):
        im = read_image(p)
        _compare(torch_app.predict_image(im), onnx_app.predict_image(im), p.name)


def test_cli_predict_with_onnx_weights(exported, tmp_path):
    out = tmp_path / "pred"
    assert main(["face", "predict", str(EXAMPLE), "--weights", str(exported), "--out", str(out)]) == 0
    doc = json.loads((out / f"{EXAMPLE.stem}.json").read_text())
    assert doc["count"] >= 1 and "age" in doc["faces"][0]
    # the card travels with the export: the spread is scaled by the shipped factor, not the default 1.0
    assert FaceApp().load(exported).age_spread_scale == FaceApp().load().age_spread_scale != 1.0
    assert doc["faces"][0]["age_spread"] > 0


def test_corrupt_onnx_is_one_line_error(tmp_path, exported, capsys):
    bad = tmp_path / "face.onnx"
    bad.write_bytes(b"\x08\x07 this is not a protobuf model")
    with pytest.raises(InputError, match="not a loadable ONNX model") as e:
        FaceApp().load(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)
    # the CLI prints it as one line and exits non-zero
    code = main(["face", "predict", str(EXAMPLE), "--weights", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "face.onnx" in err
    # a corrupt part beside a good main file names that part
    copy = tmp_path / "set" / "face.onnx"
    copy.parent.mkdir()
    for f in part_files(exported).values():
        if f.is_file():
            (copy.parent / f.name).write_bytes(f.read_bytes())
    part_files(copy)["onet"].write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"face\.onet\.onnx: not a loadable ONNX model"):
        FaceApp().load(copy)
    part_files(copy)["onet"].unlink()
    with pytest.raises(InputError, match=r"face\.onet\.onnx: missing"):
        FaceApp().load(copy)


def test_onnx_of_another_model_is_refused(tmp_path):
    from polyhead.export import export_module

    other = tmp_path / "other.onnx"
    export_module(torch.nn.Conv2d(3, 2, 1), other, torch.zeros(1, 3, 8, 8), ["y"])
    with pytest.raises(InputError, match="not the main file of a face export"):
        FaceApp().load(other)


def test_export_target_must_be_onnx(tmp_path):
    with pytest.raises(InputError, match=r"must end in \.onnx"):
        FaceApp().export(out=str(tmp_path / "face.bin"))
    with pytest.raises(InputError, match="--imgsz is not used"):
        FaceApp().export(out=str(tmp_path / "face.onnx"), imgsz=(64, 64))


def test_detection_only_export(tmp_path):
    out = tmp_path / "det.onnx"
    assert FaceApp().export(out=str(out), tasks=["none"]) == 0
    assert not part_files(out)["attr"].exists()
    app = FaceApp().load(out)
    r = app.predict_image(read_image(EXAMPLE))
    assert len(r.faces) >= 1 and r.faces[0].age is None and r.faces[0].age_spread is None


def test_single_shot_detector_exports_and_predicts_the_same_faces(tmp_path):
    """A file with a single-shot part exports it with a dynamic input size; ONNX Runtime gives the torch
    detector's faces on images of different shapes."""
    from polyhead.apps.face.model import load_face_weights, save_face_weights
    from polyhead.apps.face.single_shot import build_single_shot_model

    parts, card = load_face_weights(WEIGHTS)
    torch.manual_seed(0)
    single = build_single_shot_model(pretrained=False).eval()
    weights = save_face_weights(tmp_path / "face.safetensors", {**parts, "single": single}, card)
    out = tmp_path / "onnx" / "face.onnx"
    assert main(["face", "export", "--weights", str(weights), "--out", str(out), "--tasks", "none"]) == 0
    a = FaceApp().load(weights, detector="single", tasks=["none"])
    b = FaceApp().load(out, detector="single", tasks=["none"])
    # the raw head outputs (boxes, scores, points for every anchor) agree at several input shapes ...
    for hw in ((480, 640), (640, 448), (320, 320)):
        x = torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(hw[0]))
        with torch.inference_mode():
            ta = a.detector.model(x)["faces"]
        tb = b.detector.model(x)["faces"]
        assert ta.shape == tb.shape == (2, 20, sum((hw[0] // s) * (hw[1] // s) for s in (8, 16, 32)))
        assert torch.allclose(ta, tb, atol=1e-2, rtol=1e-3)
    # ... and the detector runs end to end on either
    rgb = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    ra, rb = a.detector.detect([rgb])[0], b.detector.detect([rgb])[0]
    assert ra["points"].shape[1:] == rb["points"].shape[1:] == (5, 2)


def test_attribute_model_runs_in_onnx_runtime_by_default_with_torchs_answers(tmp_path, monkeypatch):
    import polyhead.offline
    from polyhead.export import OnnxModel

    monkeypatch.setattr(polyhead.offline, "CACHE_DIR", tmp_path / "cache")
    rgb = read_image(EXAMPLE)
    a = FaceApp().load(WEIGHTS, runtime="torch")
    b = FaceApp().load(WEIGHTS)
    assert isinstance(b.attr, OnnxModel) and not isinstance(a.attr, OnnxModel)
    assert len(list((tmp_path / "cache" / "onnx").glob("face-attr-*.onnx"))) == 1  # exported once, cached
    ra, rb = a.predict_image(rgb).to_json()["faces"], b.predict_image(rgb).to_json()["faces"]
    assert len(ra) == len(rb) >= 1
    for fa, fb in zip(ra, rb, strict=True):
        assert abs(fa["age"] - fb["age"]) < 0.5 and fa["gender"] == fb["gender"]
    with pytest.raises(InputError, match="--runtime must be one of"):
        FaceApp().load(WEIGHTS, runtime="tensorrt")
