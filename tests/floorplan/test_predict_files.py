"""Python predict() and the CLI write the same files for the same options (scale, 3-D, OCR), and a
saved prediction never replaces its input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.ocr import available as ocr_available

EXAMPLE = Path(__file__).resolve().parents[2] / "apps" / "floorplan" / "examples" / "generated_plan_0.jpg"


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _same_json(a: bytes, b: bytes) -> bool:
    return json.loads(a) == json.loads(b)


@pytest.fixture(scope="module")
def two_plans(tmp_path_factory):
    """The shipped example plan (the shipped weights find walls and rooms on it) and a blank page."""
    import shutil

    import numpy as np

    from polyhead.io import write_image

    folder = tmp_path_factory.mktemp("plans")
    shutil.copyfile(EXAMPLE, folder / "plan0.jpg")
    write_image(folder / "blank.png", np.full((150, 150, 3), 250, np.uint8))
    return folder


@pytest.mark.parametrize("options", [{}, {"scale": 40.0, "mesh": True}, {"mesh": True, "ocr": False}])
def test_python_predict_and_cli_write_the_same_files(two_plans, tmp_path, options):
    from polyhead.apps.floorplan.app import FloorplanApp

    flags = []
    if "scale" in options:
        flags += ["--scale", str(options["scale"])]
    if options.get("mesh"):
        flags += ["--3d"]
    if options.get("ocr") is False:
        flags += ["--no-ocr"]
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    assert main(["floorplan", "predict", str(two_plans), "--out", str(cli_out), *flags]) == 0
    report = FloorplanApp().load().predict(str(two_plans), py_out, **options)
    assert report.exit_code == 0
    cli, py = _files(cli_out), _files(py_out)
    assert set(cli) == set(py)
    mesh = {".glb", ".ply"} if options.get("mesh") else set()
    assert {f"plan0{x}" for x in {".png", ".json", ".svg", ".geojson"} | mesh} <= set(cli)
    assert {f"blank{x}" for x in (".png", ".json", ".svg", ".geojson")} <= set(cli)  # a blank page: no mesh
    for name in cli:
        if name.endswith(".json"):
            assert _same_json(cli[name], py[name]), name
    doc = json.loads(cli["plan0.json"])
    assert doc["rooms"] and doc["walls"]
    assert doc["text"]["status"] == ("off" if options.get("ocr") is False or not ocr_available() else "on")
    if "scale" in options:
        assert doc["scale_px_per_m"] == 40.0
    if "scale" in options:
        assert doc["scale"]["source"] == "user"


def test_one_prediction_saved_from_python_matches_the_cli(tiny_fp_weights, plan_folder, tmp_path):
    from polyhead.apps.floorplan.app import FloorplanApp

    image = plan_folder / "plan0.jpg"
    app = FloorplanApp().load(tiny_fp_weights)
    (pred,) = app(str(image), scale=40.0, mesh=True)
    saved = {p.name for p in pred.save(tmp_path / "py")}
    assert (
        main(
            [
                "floorplan",
                "predict",
                str(image),
                "--weights",
                str(tiny_fp_weights),
                "--out",
                str(tmp_path / "cli"),
                "--scale",
                "40",
                "--3d",
            ]
        )
        == 0
    )
    cli = _files(tmp_path / "cli")
    assert saved == set(cli) - {"summary.csv"}
    assert _same_json(cli["plan0.json"], (tmp_path / "py" / "plan0.json").read_bytes())


def test_saving_next_to_the_input_never_replaces_it(tiny_fp_weights, tmp_path):
    import numpy as np

    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.synthetic import synthetic_plan
    from polyhead.io import write_image

    image = write_image(tmp_path / "plan.png", synthetic_plan(np.random.default_rng(0), (160, 160)).image)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    (pred,) = FloorplanApp().load(tiny_fp_weights)(str(image))
    with pytest.raises(InputError, match="replace an input"):
        pred.save(tmp_path)  # the overlay would be plan.png, the input itself
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.png"]  # nothing of the item written
