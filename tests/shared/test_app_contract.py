"""The contract every registered app keeps (tested as a table, the way ultralytics tests its tasks):
predict from Python and from the CLI on an image and a short video, the same JSON either way, and
every JSON inside the common envelope (``docs/json.md``)."""

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from polyhead.api import load
from polyhead.cli import main
from polyhead.io import VideoWriter, read_image
from polyhead.registry import discover_apps
from polyhead.results import RESULT_SCHEMA, check_boxes

APPS = sorted(discover_apps())
EXAMPLES = Path(__file__).resolve().parents[2] / "apps"


def _example(app: str) -> Path:
    return sorted((EXAMPLES / app / "examples").glob("*.jpg"))[0]


def _valid(doc: dict) -> None:
    jsonschema.validate(doc, RESULT_SCHEMA)
    assert check_boxes(doc) == []
    assert list(doc)[0] == "source"


@pytest.mark.parametrize("name", APPS)
def test_python_and_cli_predict_write_the_same_enveloped_json(name, tmp_path):
    image = tmp_path / "in" / "sample.jpg"
    image.parent.mkdir()
    shutil.copyfile(_example(name), image)
    (prediction,) = load(name)(str(image))
    doc = prediction.to_json()
    _valid(doc)
    h, w = read_image(image).shape[:2]
    assert doc["image_size"] == {"width": w, "height": h} and doc["source"] == str(image)
    saved = prediction.save(tmp_path / "py")
    overlay = f"sample{discover_apps()[name].overlay_suffix}"
    assert {p.name for p in saved} >= {overlay, "sample.json"}
    assert main([name, "predict", str(image), "--out", str(tmp_path / "cli")]) == 0
    files = {p.name for p in (tmp_path / "cli").iterdir()}
    assert files == {p.name for p in saved} | {"summary.csv"}  # the same files (+ the run's summary)
    cli = json.loads((tmp_path / "cli" / "sample.json").read_text())
    assert cli == json.loads((tmp_path / "py" / "sample.json").read_text()) == json.loads(json.dumps(doc))


@pytest.mark.parametrize("name", APPS)
def test_arrays_and_bgr_arrays_give_the_same_answer(name):
    rgb = read_image(_example(name))
    app = load(name)
    a = app(rgb)[0].to_json()
    b = app(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True)[0].to_json()
    assert a == b and a["source"] == "array"


@pytest.mark.parametrize("name", [n for n in APPS if n != "floorplan"])  # plans are stills, not video
def test_video_frames_are_enveloped(name, tmp_path):
    rgb = read_image(_example(name))
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    video = tmp_path / "clip.mp4"
    with VideoWriter(video, fps=5) as writer:
        for k in range(3):
            writer.write(np.roll(rgb[:h, :w], 4 * k, axis=1))
    assert main([name, "predict", str(video), "--out", str(tmp_path / "o")]) == 0
    frames = sorted((tmp_path / "o" / "clip").glob("*.json"))
    assert len(frames) == 3
    for i, path in enumerate(frames):
        doc = json.loads(path.read_text())
        _valid(doc)
        assert doc["frame"] == i and doc["source"] == str(video)
        assert doc["image_size"] == {"width": w, "height": h}
    streamed = list(load(name)(str(video), stream=True))
    assert [p.frame for p in streamed] == [0, 1, 2]


@pytest.mark.parametrize("name", APPS)
def test_unknown_options_suggest_the_nearest_name(name):
    from polyhead.errors import InputError

    app = load(name)
    with pytest.raises(InputError, match="did you mean 'epochs'"):
        app.train(data="x.yaml", epoch=3)
    with pytest.raises(InputError, match="unknown option"):
        app(np.zeros((64, 64, 3), np.uint8), no_such_option=1)
    with pytest.raises(InputError, match="unknown option 'wieghts'"):
        load(name, wieghts="x")  # load options are checked too (nothing is swallowed)


@pytest.mark.parametrize("name", APPS)
def test_export_then_onnx_predict_gives_the_same_answer(name, tmp_path):
    image = str(_example(name))
    app = load(name)
    assert app.export(out=str(tmp_path / f"{name}.onnx")) == 0
    torch_doc = app(image)[0].to_json()
    onnx_doc = load(name, str(tmp_path / f"{name}.onnx"))(image)[0].to_json()
    _valid(onnx_doc)
    assert set(onnx_doc) == set(torch_doc)
    size = {"driving": "objects", "face": "faces", "floorplan": "rooms", "medical": "classes"}[name]
    assert len(onnx_doc[size]) == len(torch_doc[size])


def _tiny_dataset(name: str, root: Path) -> Path | None:
    """A generated dataset YAML per app (face has no generator of labelled photos: None)."""
    if name == "driving":
        from polyhead.apps.driving.synthetic import write_bdd_dataset

        return write_bdd_dataset(root, n_train=2, n_val=3, size=(180, 320))
    if name == "medical":
        from polyhead.apps.medical.synthetic import write_folder_dataset

        return write_folder_dataset(root, n=8, size=(96, 128))
    if name == "floorplan":
        path = root / "plans.yaml"
        path.write_text("format: synthetic\npath: .\ncount: 4\nval_count: 2\nsize: 256\nseed: 0\n")
        return path
    return None


@pytest.mark.parametrize("name", APPS)
def test_val_on_a_generated_set_writes_its_metrics(name, tmp_path):
    data = _tiny_dataset(name, tmp_path)
    if data is None:
        pytest.skip("face val needs labelled real photos (dlib, LFW, UTKFace in ../shared/data)")
    out = tmp_path / "val.json"
    assert load(name).val(data=str(data), json=str(out)) == 0
    doc = json.loads(out.read_text())
    assert doc["metrics"] and all(isinstance(k, str) for k in doc["metrics"])
    assert main([name, "val", "--data", str(data), "--json", str(tmp_path / "cli.json")]) == 0
    assert json.loads((tmp_path / "cli.json").read_text())["metrics"] == doc["metrics"]
