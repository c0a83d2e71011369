"""The shipped medical weights on real held-out images (skips without ../shared/data)."""

from pathlib import Path

import pytest

from polyhead.apps.medical.app import MedicalApp
from polyhead.apps.medical.data import MedicalDataset, load_spec
from polyhead.apps.medical.evaluate import evaluate
from tests.conftest import shared_data

DATASETS = Path(__file__).parents[2] / "datasets"


@pytest.mark.parametrize(
    "name,weights,n,floor", [("medical-ph2.yaml", "ph2", 8, 0.8), ("medical-drive.yaml", "drive", 1, 0.72)]
)
def test_shipped_weights_reach_a_floor_on_held_out_images(name, weights, n, floor):
    shared_data("medical")
    app = MedicalApp().load(weights)
    spec = load_spec(DATASETS / name)
    ds = MedicalDataset(spec, "val")
    ds.items = ds.items[:n]
    metrics = evaluate(app.model, ds, spec, hd95=False, keep_largest=app.predictor.keep_largest)
    assert metrics["dice"] > floor, metrics
    if weights == "ph2":
        assert metrics["diagnosis_accuracy"] >= 0.5, metrics
