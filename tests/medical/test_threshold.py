"""Fitting a binary mask's threshold on training images (``polyhead medical threshold``)."""

import types

import numpy as np
import pytest

from polyhead.apps.medical.threshold import BINS, f1_curve, fit_threshold


def test_f1_curve_matches_a_direct_count():
    rng = np.random.default_rng(0)
    fg = rng.random(5000) < 0.2
    p = np.clip(np.where(fg, rng.normal(0.7, 0.15, 5000), rng.normal(0.3, 0.15, 5000)), 0, 0.9999)
    bins = (p * BINS).astype(int)
    pos, neg = np.bincount(bins[fg], minlength=BINS), np.bincount(bins[~fg], minlength=BINS)
    for t in (0.3, 0.45, 0.5, 0.62):
        pred = p >= t
        tp, fp, fn = (pred & fg).sum(), (pred & ~fg).sum(), (~pred & fg).sum()
        assert f1_curve(pos, neg, np.array([t]))[0] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=2e-3)


def test_fit_threshold_finds_where_the_classes_separate_inside_the_fov():
    """Foreground pixels sit at p 0.65, background at 0.55 (a model that over-segments at 0.5); outside the
    field of view everything is 0.9 and must not count."""
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10] = 1
    fov = np.ones((20, 20), np.uint8)
    fov[15:] = 0
    probs = np.where(mask > 0, 0.65, 0.55).astype(np.float32)
    probs[15:] = 0.9
    stack = np.stack([1 - probs, probs])

    class Items:
        items = [0, 1]

        def load_raw(self, i):
            return np.zeros((20, 20, 3), np.uint8), mask, fov, None

    app = types.SimpleNamespace(predictor=types.SimpleNamespace(outputs=lambda img: (stack, {})))
    fit = fit_threshold(app, Items())
    assert 0.55 < fit["threshold"] <= 0.65 and fit["f1"] == pytest.approx(1.0)
    assert fit["f1_at_0.5"] < 0.7 and fit["images"] == 2
