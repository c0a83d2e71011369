"""Every app's metrics share one base (update / aggregate / reset) and one confusion matrix."""

import numpy as np
import pytest

from polyhead.apps.driving.metrics import DetectionAP, DrivingMetrics, SegConfusion
from polyhead.apps.floorplan.metrics import FloorplanMetrics, SegMetrics
from polyhead.apps.medical.metrics import ClassificationMetrics, SegmentationMetrics
from polyhead.metrics import ConfusionMatrix, Metric


@pytest.mark.parametrize(
    "metric",
    [
        DetectionAP(3),
        DrivingMetrics(3),
        SegConfusion(),
        SegMetrics(["bg", "wall"]),
        FloorplanMetrics(),
        SegmentationMetrics(["background", "lesion"]),
        ClassificationMetrics(["a", "b"]),
    ],
)
def test_every_app_metric_is_a_metric(metric):
    assert isinstance(metric, Metric)


def test_reset_forgets_what_was_added():
    m = SegmentationMetrics(["background", "lesion"], hd95=False)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    m.update(mask, mask)
    assert m.aggregate()["lesion"]["dice"] == 1.0
    m.reset()
    m.update(np.zeros_like(mask), mask)
    assert m.aggregate()["lesion"]["dice"] == 0.0 and m.hd95 is False


def test_confusion_matrix_ignores_unlabelled_pixels_and_agrees_with_sklearn_style_counts():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    target[:50] = 255
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    keep = target != 255
    expected = np.zeros((3, 3), np.int64)
    np.add.at(expected, (target[keep], pred[keep]), 1)
    assert (cm.matrix == expected).all() and cm.aggregate()["pixels"] == int(keep.sum())
    d = SegConfusion()
    d.update(np.array([1, 1, 0]), np.array([1, 255, 0]))  # a 255 no longer lands outside the matrix
    assert d.m.sum() == 2 and d.iou().tolist() == [1.0, 1.0]
