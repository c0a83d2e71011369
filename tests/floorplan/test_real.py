"""Shipped weights on real R3D validation plans (skips without the data or the weights)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, shared_data

FLOOR = {"boundary_acc": 0.80, "room_acc": 0.55}


def test_shipped_weights_reach_floor():
    root = shared_data("floorplan", "r3d", "train")
    weights = REPO / "weights" / "floorplan.safetensors"
    if not weights.is_file():
        pytest.skip(f"shipped weights absent: {weights}")
    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.data import FloorplanDataset, list_items, load_spec
    from polyhead.apps.floorplan.evaluate import evaluate

    app = FloorplanApp().load(weights)
    spec = load_spec(REPO / "datasets" / "floorplan.yaml")
    assert spec.root == root.resolve()
    val = list_items(spec, "val")
    assert len(val) == 20 and set(i.name for i in val) == set(app.card["data"]["val_names"])
    metrics = evaluate(app.model, FloorplanDataset(val[:3], imgsz=app.imgsz, cache=False))
    for key, floor in FLOOR.items():
        assert metrics[key] >= floor, (key, metrics[key])
    result = app.predict_image(__import__("polyhead.io", fromlist=["read_image"]).read_image(val[0].image))
    assert len(result.rooms) >= 2 and len(result.walls) >= 4
