"""Hard-example mining: proposals of the earlier stages, labelled by overlap with the known faces."""

import numpy as np
import pytest
import torch

from polyhead.apps.face.cascade import STAGES, build_net
from polyhead.apps.face.detect import DetectorConfig, FaceDetector
from polyhead.apps.face.mining import MAX_FACE_PER_SCENE, MAX_NEG_PER_SCENE, mine_scene, mined
from polyhead.apps.face.samples import Scene, iou_matrix


@pytest.fixture(scope="module")
def eager_detector():
    """Random nets that let (almost) everything through, so every kind of window appears."""
    torch.manual_seed(0)
    return FaceDetector({k: build_net(k) for k in STAGES}, DetectorConfig(min_size=20, thresholds=(0.0, 0.0, 0.0)))


@pytest.mark.parametrize("stage", ["pnet", "rnet", "onet"])
def test_mine_scene_labels_and_caps(eager_detector, stage):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), np.uint8)
    face = np.array([[40.0, 30.0, 80.0, 70.0]], np.float32)
    points = np.array([[[50, 45], [70, 45], [60, 55], [52, 62], [68, 62]]], np.float32)
    s = mine_scene(eager_detector, Scene(img, face, points), stage, rng)
    size = {"pnet": 12, "rnet": 24, "onet": 48}[stage]
    assert s.images.shape[1:] == (size, size, 3) and s.images.dtype == np.uint8
    assert set(np.unique(s.label).tolist()) <= {1, 0, -1}  # the 0.3-0.4 band is dropped
    assert (s.label == 0).sum() <= MAX_NEG_PER_SCENE and (s.label == 1).sum() <= MAX_FACE_PER_SCENE
    assert (s.label == 0).sum() > 0
    faces = s.label == 1
    assert np.isfinite(s.lmk[faces]).all() and np.isnan(s.lmk[~faces]).all()  # points only on faces


def test_face_free_scene_gives_only_negatives(eager_detector):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (100, 100, 3), np.uint8)
    s = mine_scene(eager_detector, Scene(img, np.zeros((0, 4), np.float32), np.zeros((0, 5, 2))), "rnet", rng)
    assert len(s) == MAX_NEG_PER_SCENE and (s.label == 0).all()


def test_unknown_stage_cannot_be_mined(eager_detector):
    with pytest.raises(ValueError, match="pnet, rnet or onet"):
        mined("attributes", None, {}, "train")


def test_pnet_mines_its_own_proposals(eager_detector, monkeypatch):
    """P-Net's hard windows are the ones it passes to R-Net (so its false windows become negatives)."""
    asked = []
    real = eager_detector.windows_reaching
    monkeypatch.setattr(eager_detector, "windows_reaching", lambda im, st: asked.append(st) or real(im, st))
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (100, 100, 3), np.uint8)
    s = mine_scene(eager_detector, Scene(img, np.zeros((0, 4), np.float32), np.zeros((0, 5, 2))), "pnet", rng)
    assert asked == ["rnet"] and s.images.shape[1:] == (12, 12, 3) and (s.label == 0).all() and len(s) > 0


def test_iou_labels_match_the_windows():
    """Sanity of the labelling used by mining: a window equal to the face box is a face."""
    from polyhead.apps.face.samples import label_windows

    face = np.array([[10.0, 10.0, 50.0, 50.0]], np.float32)
    wins = np.array([[10, 10, 50, 50], [30, 30, 70, 70], [200, 200, 240, 240]], np.float32)
    label, _, _ = label_windows(wins, Scene(np.zeros((300, 300, 3), np.uint8), face, np.full((1, 5, 2), np.nan)))
    assert label.tolist()[0] == 1 and label.tolist()[2] == 0
    assert iou_matrix(wins[:1], face)[0, 0] == 1.0
