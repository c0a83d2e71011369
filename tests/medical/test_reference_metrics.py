"""The hand-written medical metrics against scikit-learn (a test-only dependency: the `test` extra)."""

from __future__ import annotations

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the 'test' extra")
from sklearn.calibration import calibration_curve  # noqa: E402

from polyhead.apps.medical.metrics import (  # noqa: E402
    ClassificationMetrics,
    PixelAUC,
    SegmentationMetrics,
    auc_one_vs_rest,
)
from polyhead.calibration import expected_calibration_error  # noqa: E402
from polyhead.heads.segmentation import IGNORE_INDEX  # noqa: E402


def _masks(rng, n=4, shape=(40, 50)):
    out = []
    for _ in range(n):
        target = (rng.random(shape) < 0.3).astype(np.uint8)
        pred = np.where(rng.random(shape) < 0.8, target, 1 - target).astype(np.uint8)
        fov = rng.random(shape) < 0.85
        out.append((pred, np.where(fov, target, IGNORE_INDEX).astype(np.uint8)))
    return out


def test_dice_and_pooled_f1_match_sklearn_inside_the_fov():
    rng = np.random.default_rng(1)
    pairs = _masks(rng)
    m = SegmentationMetrics(["background", "vessel"], hd95=False)
    for pred, target in pairs:
        m.update(pred, target)
    got = m.aggregate()["vessel"]
    per_image = [sklearn_metrics.f1_score(t[t != IGNORE_INDEX], p[t != IGNORE_INDEX]) for p, t in pairs]
    pooled_p = np.concatenate([p[t != IGNORE_INDEX] for p, t in pairs])
    pooled_t = np.concatenate([t[t != IGNORE_INDEX] for p, t in pairs])
    assert got["dice"] == pytest.approx(np.mean(per_image), abs=1e-12)
    assert got["dice_pooled"] == pytest.approx(sklearn_metrics.f1_score(pooled_t, pooled_p), abs=1e-12)
    assert got["sensitivity"] == pytest.approx(sklearn_metrics.recall_score(pooled_t, pooled_p), abs=1e-12)


def test_auc_balanced_accuracy_and_recall_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3))
    logits[np.arange(200), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = np.round(probs, 2)  # ties: both sides must average them the same way
    m = ClassificationMetrics(["common_nevus", "atypical_nevus", "melanoma"])
    for p, label in zip(probs, y, strict=True):
        m.update(p, label)
    got = m.aggregate()
    pred = probs.argmax(1)
    assert got["balanced_accuracy"] == pytest.approx(sklearn_metrics.balanced_accuracy_score(y, pred), abs=1e-12)
    recalls = sklearn_metrics.recall_score(y, pred, average=None)
    assert [got["per_class"][c]["recall"] for c in m.classes] == pytest.approx(list(recalls), abs=1e-12)
    ref_auc = sklearn_metrics.roc_auc_score(y == 2, probs[:, 2])
    assert got["melanoma_vs_rest_auc"] == pytest.approx(ref_auc, abs=1e-12)
    assert auc_one_vs_rest(probs[:, 0], y == 0) == pytest.approx(sklearn_metrics.roc_auc_score(y == 0, probs[:, 0]))
    macro = np.mean([sklearn_metrics.roc_auc_score(y == c, probs[:, c]) for c in range(3)])  # one-vs-rest
    assert got["macro_auc"] == pytest.approx(macro, abs=1e-12)


def test_pixel_auc_matches_sklearn_within_the_histogram_resolution():
    rng = np.random.default_rng(3)
    target = (rng.random((3, 60, 60)) < 0.2).astype(np.uint8)
    prob = np.clip(rng.normal(0.35 + 0.3 * target, 0.2), 0, 1)
    target[:, :5] = IGNORE_INDEX  # outside the FOV: not counted
    m = PixelAUC()
    for p, t in zip(prob, target, strict=True):
        m.update(p, t)
    keep = target != IGNORE_INDEX
    ref = sklearn_metrics.roc_auc_score(target[keep], prob[keep])
    assert m.aggregate()["auc"] == pytest.approx(ref, abs=2e-4)
    assert m.aggregate()["pixels"] == int(keep.sum())


def test_ece_matches_sklearn_calibration_curve():
    rng = np.random.default_rng(4)
    n, bins = 3000, 15
    conf = rng.uniform(0.5, 1.0, n)  # two classes: the top label is class 0
    correct = rng.random(n) < conf**1.5  # over-confident
    probs = np.stack([conf, 1 - conf], 1)  # top label 0 with confidence conf
    labels = np.where(correct, 0, 1)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=bins, strategy="uniform")
    counts = np.histogram(conf, bins=np.linspace(0, 1, bins + 1))[0]
    counts = counts[counts > 0]
    ref = float((np.abs(prob_true - prob_pred) * counts).sum() / n)
    assert expected_calibration_error(probs, labels, bins) == pytest.approx(ref, abs=1e-9)
    assert ref > 0.05  # the case is not trivially calibrated
