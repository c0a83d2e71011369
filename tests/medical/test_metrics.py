import numpy as np
import pytest

from polyhead.apps.medical.metrics import ClassificationMetrics, SegmentationMetrics, auc_one_vs_rest, hausdorff95
from polyhead.heads.segmentation import IGNORE_INDEX


def square(shift=0, size=64):
    m = np.zeros((size, size), np.uint8)
    m[16 + shift : 40 + shift, 16:40] = 1
    return m


def test_dice_iou_sensitivity_specificity_known_values():
    m = SegmentationMetrics(["background", "lesion"], hd95=False)
    target = square()
    pred = np.zeros_like(target)
    pred[16:40, 16:28] = 1  # half of the square
    m.update(pred, target)
    out = m.aggregate()["lesion"]
    assert out["dice"] == pytest.approx(2 * 288 / (288 + 576))
    assert out["iou"] == pytest.approx(0.5)
    assert out["sensitivity"] == pytest.approx(0.5)
    assert out["specificity"] == pytest.approx(1.0)


def test_hausdorff95_of_a_shifted_square_is_the_shift():
    assert hausdorff95(square(3).astype(bool), square().astype(bool)) == pytest.approx(3.0)
    assert np.isnan(hausdorff95(np.zeros((8, 8), bool), square(size=8).astype(bool)))


def test_ignored_pixels_do_not_count():
    target = square().astype(np.int64)
    pred = target.copy()
    pred[0:8, 0:8] = 1  # false positives ...
    target[0:8, 0:8] = IGNORE_INDEX  # ... outside the field of view
    m = SegmentationMetrics(["background", "lesion"], hd95=False)
    m.update(pred, target)
    assert m.aggregate()["lesion"]["dice"] == pytest.approx(1.0)


def test_metrics_accumulate_over_images_then_aggregate():
    m = SegmentationMetrics(["background", "lesion"], hd95=False)
    m.update(square(), square())  # dice 1
    m.update(np.zeros((64, 64), np.uint8), square())  # dice 0
    out = m.aggregate()["lesion"]
    assert out["dice"] == pytest.approx(0.5)
    assert out["dice_pooled"] == pytest.approx(2 * 576 / (576 + 1152))


def test_auc_and_classification_metrics():
    y = np.array([0, 0, 1, 1], bool)
    assert auc_one_vs_rest(np.array([0.1, 0.2, 0.8, 0.9]), y) == pytest.approx(1.0)
    assert auc_one_vs_rest(np.array([0.9, 0.8, 0.2, 0.1]), y) == pytest.approx(0.0)
    assert auc_one_vs_rest(np.array([0.5, 0.5, 0.5, 0.5]), y) == pytest.approx(0.5)
    c = ClassificationMetrics(["a", "b"])
    for p, label in [([0.9, 0.1], 0), ([0.6, 0.4], 1), ([0.2, 0.8], 1)]:
        c.update(np.array(p), label)
    out = c.aggregate()
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert out["balanced_accuracy"] == pytest.approx(0.75)


def test_confusion_counts_from_smp_match_a_direct_count_and_skip_ignored_pixels():
    import numpy as np

    from polyhead.apps.medical.metrics import confusion_counts

    rng = np.random.default_rng(3)
    pred, target = rng.integers(0, 3, (40, 50)), rng.integers(0, 3, (40, 50))
    target[:5] = 255  # outside the field of view
    valid = target != 255
    expected = []
    for c in range(3):
        p, t = (pred == c) & valid, (target == c) & valid
        tp = int((p & t).sum())
        expected.append([tp, int(p.sum()) - tp, int(t.sum()) - tp, int(valid.sum()) - int(p.sum()) - int(t.sum()) + tp])
    assert confusion_counts(pred, target, 3).tolist() == expected
    assert confusion_counts(pred, target, 3).sum(1).tolist() == [int(valid.sum())] * 3
