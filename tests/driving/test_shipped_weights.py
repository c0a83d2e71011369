"""The shipped driving weights: card, size, offline predict, and quality floors on real held-out data."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyhead.apps.driving.app import DrivingApp
from polyhead.apps.driving.metrics import SegConfusion
from polyhead.apps.driving.synthetic import road_scene
from tests.conftest import shared_data

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "driving.safetensors"
# floors: the measured held-out figures (weights/driving.json) minus a margin
FLOOR_DA_MIOU_CAMVID = 0.70
FLOOR_LANE_IOU_TUSIMPLE = 0.08


@pytest.fixture(scope="module")
def app():
    if not WEIGHTS.is_file():
        pytest.fail(f"{WEIGHTS} is missing: the app must ship trained weights")
    return DrivingApp().load()


def test_card_and_file_size():
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert WEIGHTS.stat().st_size < 25 * 2**20
    for key in ("classes", "input_size", "normalisation", "metrics", "training_command", "data", "model"):
        assert key in card, key
    assert card["input_size"] == [384, 640] and card["classes"] == ["car", "pedestrian", "cyclist"]


def test_predicts_on_a_generated_frame(app):
    img = road_scene(np.random.default_rng(3), (360, 640)).image
    r = app.predict_image(img)
    assert r.drivable.shape == (360, 640) and r.lane_mask.shape == (360, 640)
    assert 0.05 < r.drivable_share < 0.95


def _camvid_val(n=24):
    root = shared_data("driving", "camvid", "val")
    for p in sorted((root / "images").glob("*.jpg"))[:n]:
        yield p, cv2.imread(str(root / "masks" / f"{p.stem}.png"), cv2.IMREAD_GRAYSCALE)


def test_drivable_area_on_real_camvid_val(app):
    from polyhead.io import read_image

    conf = SegConfusion()
    for path, mask in _camvid_val():
        r = app.predict_image(read_image(path))
        conf.update(r.drivable.astype(np.uint8), (mask == 3).astype(np.uint8))
    miou = float(conf.iou().mean())
    assert miou > FLOOR_DA_MIOU_CAMVID, miou


def test_lanes_on_held_out_tusimple_frames(app):
    from polyhead.io import read_image

    root = shared_data("driving", "tusimple_sample", "training_data_example")
    conf = SegConfusion()
    lanes = 0
    for stem in ("0004", "0005"):  # never trained on (datasets/README.md)
        r = app.predict_image(read_image(root / "image" / f"{stem}.png"))
        gt = cv2.imread(str(root / "gt_binary_image" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        conf.update(r.lane_mask.astype(np.uint8), gt.astype(np.uint8))
        lanes += len(r.lanes)
    assert float(conf.iou()[1]) > FLOOR_LANE_IOU_TUSIMPLE
    assert lanes >= 2
