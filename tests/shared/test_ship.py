"""`polyhead APP ship`: a run's best weights go into place with a completed card, or nothing changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.ship import ship_run, training_time
from polyhead.weights import load_model


@pytest.fixture()
def run_dir(tmp_path: Path, tiny_weights: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(tiny_weights, run / "best.safetensors")
    card = json.loads(tiny_weights.with_suffix(".json").read_text())
    (run / "best.json").write_text(json.dumps({**card, "training_command": "polyhead driving train --data d.yaml"}))
    (run / "metrics.csv").write_text("epoch,train/loss,time_s\n1,3.0,310.2\n2,2.0,295.4\n2,1.9,301.0\n3,1.5,288.8\n")
    return run


def test_ship_copies_weights_and_completes_the_card(run_dir: Path, tmp_path: Path):
    val = tmp_path / "val.json"
    val.write_text(json.dumps({"det_map50": 0.5}))
    out = tmp_path / "weights" / "driving.safetensors"
    code = main([
        "driving", "ship", "--run", str(run_dir), "--out", str(out), "--merge", f"val={val}",
        "--command", "polyhead driving convert --source s --out o", "--command", "polyhead driving train ...",
        "--note", "wall_time_note=about 2 h", "--note", "recommended_conf=0.25",
    ])  # fmt: skip
    assert code == 0
    assert load_file(out).keys() == load_file(run_dir / "best.safetensors").keys()
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["val"] == {"det_map50": 0.5} and card["recommended_conf"] == 0.25
    assert card["wall_time_note"] == "about 2 h"
    assert card["training_command"][0].startswith("polyhead driving convert")
    t = card["training_time"]  # the repeated epoch 2 (a resume) counts once, its last row
    assert t["epochs"] == 3 and t["train_seconds_by_epoch"]["2"] == 301.0 and t["train_seconds_total"] == 900.0
    assert "KITTI" in json.dumps(card["data"]["sources"]) and "terms" in card["data"]
    model, loaded = load_model(out)
    assert loaded["app"] == "driving" and sum(p.numel() for p in model.parameters()) > 0


def test_ship_refuses_broken_runs_and_leaves_the_target_alone(run_dir: Path, tmp_path: Path):
    out = tmp_path / "driving.safetensors"
    out.write_bytes(b"previous")
    with pytest.raises(InputError, match="--merge val: cannot read"):
        ship_run(run_dir, out, merge={"val": tmp_path / "missing.json"})
    (run_dir / "best.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(InputError):
        ship_run(run_dir, out)
    (run_dir / "best.safetensors").unlink()
    with pytest.raises(InputError, match="no best weights"):
        ship_run(run_dir, out)
    assert out.read_bytes() == b"previous" and not out.with_suffix(".json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driving.safetensors", "run"]  # no temp files


def test_training_time_needs_the_columns(tmp_path: Path):
    (tmp_path / "metrics.csv").write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(InputError, match="time_s"):
        training_time(tmp_path)
    with pytest.raises(InputError, match="no metrics.csv"):
        training_time(tmp_path / "nowhere")
