"""The single-shot face detector: training windows, decoding to original pixels, the app switch, a smoke run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.apps.face.samples import Scene
from polyhead.apps.face.single_shot import (
    FLIP_ORDER,
    NUM_POINTS,
    SingleShotConfig,
    SingleShotDetector,
    build_single_shot_model,
    input_size,
)
from polyhead.apps.face.single_shot_data import window_sample
from polyhead.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _scene() -> Scene:
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :150] = 200  # the left half bright: tells a flipped window from an unflipped one
    boxes = np.array([[40, 50, 100, 120], [200, 60, 240, 100]], np.float32)
    pts = np.full((2, NUM_POINTS, 2), np.nan, np.float32)
    pts[0] = [[55, 70], [85, 70], [70, 85], [58, 105], [82, 105]]  # left eye is on the image's left
    return Scene(img, boxes, pts)


def test_window_rows_are_normalised_and_only_labelled_points_count():
    img, rows = window_sample(_scene(), np.random.default_rng(0), 320, 300, augment=False)
    assert img.shape == (320, 320, 3) and rows.shape == (2, 5 + 3 * NUM_POINTS)
    x0 = (300 - 320) // 2  # centred window, padded: the image sits at x +10, y +60
    cx, cy = (40 + 100) / 2 - x0, (50 + 120) / 2 + 60
    assert rows[0, 1:5] == pytest.approx([cx / 320, cy / 320, 60 / 320, 70 / 320], abs=1e-5)
    assert (rows[0, 7::3] == 1).all() and (rows[1, 7::3] == 0).all() and (rows[1, 5:] == 0).all()
    assert rows[0, 5] == pytest.approx((55 - x0) / 320, abs=1e-5)


def test_flipped_windows_swap_left_and_right_points():
    rng = np.random.default_rng(0)
    for _ in range(40):  # augmented windows: some are flipped
        img, rows = window_sample(_scene(), rng, 320, 300, augment=True)
        labelled = rows[rows[:, 7] == 1]
        if not len(labelled):
            continue
        pts = labelled[0, 5:].reshape(NUM_POINTS, 3)
        assert pts[0, 0] < pts[1, 0], "the left eye (point 0) stays left of the right eye after any flip"
        assert pts[3, 0] < pts[4, 0]
    assert FLIP_ORDER == (1, 0, 2, 4, 3)


class _FixedNet(torch.nn.Module):
    """One confident face at a known input position, in the head's decoded layout."""

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 4 + 1 + 3 * NUM_POINTS, 10)
        out[:, :4, 0] = torch.tensor([320.0, 224.0, 64.0, 64.0])  # cx, cy, w, h
        out[:, 4, 0] = 0.95
        pts = torch.tensor([[300.0, 210.0], [340.0, 210.0], [320.0, 225.0], [305.0, 240.0], [335.0, 240.0]])
        out[:, 5:, 0] = torch.cat([pts, torch.ones(5, 1)], 1).flatten()
        return {"faces": out}


def test_detections_come_back_in_original_pixels():
    det = SingleShotDetector(_FixedNet(), SingleShotConfig(long_side=640, min_size=10))
    image = np.zeros((280, 400, 3), np.uint8)  # scaled by 1.6 to 448x640: no padding
    assert input_size(image.shape[:2], 640) == (448, 640)
    out = det.detect([image, image])
    assert len(out) == 2
    assert out[0]["boxes"] == pytest.approx(np.array([[180, 120, 220, 160]], np.float32), abs=0.01)
    assert out[0]["points"][0, 0] == pytest.approx([300 / 1.6, 210 / 1.6], abs=0.01)
    assert out[0]["scores"] == pytest.approx([0.95])
    big = SingleShotDetector(_FixedNet(), SingleShotConfig(min_size=50)).detect([image])[0]
    assert len(big["boxes"]) == 0, "faces under min_size original pixels are dropped"


def test_app_switches_detector_and_refuses_weights_without_one(tmp_path, cascade_only_weights):
    from polyhead.apps.face.app import FaceApp
    from polyhead.apps.face.model import save_face_weights

    with pytest.raises(InputError, match="no single-shot detector"):
        FaceApp().load(cascade_only_weights, detector="single")
    weights = tmp_path / "face.safetensors"
    shutil.copy(cascade_only_weights, weights)
    shutil.copy(cascade_only_weights.with_suffix(".json"), tmp_path / "face.json")
    model = build_single_shot_model("lcnet_100", pretrained=False).eval()
    card = json.loads((tmp_path / "face.json").read_text())
    save_face_weights(weights, {"single": model}, {**card, "single_shot": {"conf": 0.01, "long_side": 320}})
    app = FaceApp().load(weights, detector="single", tasks=["none"])
    assert app.detector_kind == "single" and app.detector.config.long_side == 320
    doc = app.predict_image(np.full((240, 320, 3), 100, np.uint8)).to_json()
    assert doc["count"] == len(doc["faces"]) > 0 and doc["image_size"] == {"width": 320, "height": 240}
    assert all(len(f["points"]) == NUM_POINTS and 0 <= f["box_xyxy"][2] <= 320 for f in doc["faces"])
    assert FaceApp().load(weights).detector_kind == "cascade", "the card's default stays the cascade"


def test_training_smoke_writes_the_part_and_its_card(tmp_path, capsys):
    from tests.conftest import shared_data

    shared_data("face", "facemask_cc0", "annotations")
    from polyhead.apps.face.model import load_face_weights
    from polyhead.cli import main

    out = tmp_path / "face.safetensors"
    shutil.copy(ROOT / "weights" / "face.safetensors", out)
    shutil.copy(ROOT / "weights" / "face.json", tmp_path / "face.json")
    args = ["face", "train", "--data", str(ROOT / "datasets" / "face-masks.yaml"), "--stage", "single"]
    args += ["--epochs", "1", "--batch", "2", "--scale", "0.005", "--max-batches", "2", "--imgsz", "128", "128"]
    args += ["--encoder", "lcnet_100", "--no-pretrained", "--out", str(out)]
    assert main(args) == 0
    parts, card = load_face_weights(out)
    assert {"single", "pnet", "attr"} <= set(parts)
    run = card["training"]["single_shot"]
    assert run["train_size"] == 128 and run["photos"] >= 4 and "ap50" in run["val_metrics"]
    assert card["single_model"]["heads"]["faces"]["type"] == "pose"
