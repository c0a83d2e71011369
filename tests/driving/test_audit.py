"""`polyhead driving audit` on the shipped weights reproduces the card's held-out lane figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyhead.cli import main

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "driving"


@pytest.mark.skipif(not (DATA / "tusimple_sample").is_dir(), reason="../shared/data/driving is not here")
def test_audit_reports_held_out_lanes_and_writes_overlays(tmp_path):
    card = json.loads((Path(__file__).resolve().parents[2] / "weights" / "driving.json").read_text())
    assert main(["driving", "audit", "--data-root", str(DATA), "--out", str(tmp_path), "--camvid-frames", "3"]) == 0
    report = json.loads((tmp_path / "audit.json").read_text())
    held = card.get("held_out", {}).get("tusimple_0004_0005")
    if held and card["model"]["encoder"] == "lcnet_075":  # the weights this figure was measured on
        assert report["tusimple_held_out"]["lane_iou"] == pytest.approx(held["lane_iou"], abs=1e-3)
    lanes = report["camvid_val_lanes"]
    assert lanes["frames"] == 3 and 0 <= lanes["lane_px_share"] <= 1
    assert 0 <= lanes["lane_on_road_or_pavement_share"] <= 1
    assert len(list((tmp_path / "bdd100k").glob("*.jpg"))) == len(report["bdd100k_frames"]) >= 1
