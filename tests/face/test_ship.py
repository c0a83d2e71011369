"""`polyhead face ship`: the card names the default detector, the multi-task parts are stored as float16."""

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from polyhead.apps.face.app import FaceApp
from polyhead.apps.face.model import load_face_weights, save_face_weights
from polyhead.cli import main

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "face.safetensors"


@pytest.fixture(scope="module")
def with_single(tmp_path_factory, cascade_only_weights):
    from polyhead.apps.face.single_shot import build_single_shot_model

    parts, card = load_face_weights(cascade_only_weights)
    torch.manual_seed(0)
    single = build_single_shot_model(pretrained=False).eval()
    return save_face_weights(tmp_path_factory.mktemp("w") / "face.safetensors", {**parts, "single": single}, card)


def test_ship_single_as_default_stores_half_precision(with_single, tmp_path):
    out = tmp_path / "shipped" / "face.safetensors"
    args = ["face", "ship", "--weights", str(with_single), "--default-detector", "single", "--out", str(out)]
    assert main(args) == 0
    with safe_open(str(out), "pt") as f:
        dtypes = {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert {d for k, d in dtypes.items() if k.startswith(("single.", "attr.")) and d.startswith("F")} == {"F16"}
    assert {d for k, d in dtypes.items() if k.startswith(("pnet.", "rnet.", "onet."))} == {"F32"}
    assert out.stat().st_size < with_single.stat().st_size * 0.6
    app = FaceApp().load(out)
    assert app.detector_kind == "single" and "single" in app.card["parts"]
    assert next(app.parts["single"].parameters()).dtype == torch.float32  # cast back on load
    assert FaceApp().load(out, detector="cascade").detector_kind == "cascade"


def test_ship_single_default_without_a_single_part_is_refused(tmp_path, capsys, cascade_only_weights):
    out = tmp_path / "f.safetensors"
    args = ["face", "ship", "--weights", str(cascade_only_weights), "--default-detector", "single", "--out", str(out)]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "no single-shot detector" in err
    assert not out.exists()


def test_ship_writes_the_detector_settings_the_app_then_uses(cascade_only_weights, tmp_path):
    """Default ship: thresholds 0.6 / 0.7 / 0.7 and O-Net flip averaging on, read back by the app;
    ``--no-final-flip`` and ``--thresholds`` are written as given."""
    import json

    out = tmp_path / "a" / "face.safetensors"
    assert main(["face", "ship", "--weights", str(cascade_only_weights), "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["detector"]["thresholds"] == [0.6, 0.7, 0.7] and card["detector"]["final_flip"] is True
    cfg = FaceApp().load(out).detector.config
    assert cfg.final_flip is True and cfg.thresholds == (0.6, 0.7, 0.7)
    off = tmp_path / "b" / "face.safetensors"
    args = ["face", "ship", "--weights", str(cascade_only_weights), "--out", str(off), "--no-final-flip"]
    assert main([*args, "--thresholds", "0.6", "0.7", "0.9"]) == 0
    cfg = FaceApp().load(off).detector.config
    assert cfg.final_flip is False and cfg.thresholds == (0.6, 0.7, 0.9)
    assert "--no-final-flip" in json.loads(off.with_suffix(".json").read_text())["ship_command"]
