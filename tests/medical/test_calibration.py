"""Temperature scaling (polyhead.calibration) and how the medical app uses it: card temperatures at predict,
old cards at temperature 1, the reliability diagram."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyhead.calibration import (
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_diagram,
    softmax,
)


def _overconfident(n=600, classes=3, scale=5.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    z = rng.normal(0, 1, (n, classes))
    z[np.arange(n), y] += 1.2
    return z * scale, y  # right ~70% of the time but saying ~99%


def test_temperature_lowers_the_nll_and_the_ece_of_overconfident_logits():
    z, y = _overconfident()
    t = fit_temperature(z, y)
    assert t > 2.0
    assert nll(z / t, y) < nll(z, y) - 0.3
    assert expected_calibration_error(softmax(z / t), y) < 0.5 * expected_calibration_error(softmax(z), y)
    assert (softmax(z / t).argmax(1) == z.argmax(1)).all()  # accuracy unchanged


def test_the_fitted_temperature_is_the_nll_minimum():
    z, y = _overconfident(seed=1)
    t = fit_temperature(z, y)
    grid = np.linspace(0.5 * t, 2 * t, 61)
    best = grid[np.argmin([nll(z / g, y) for g in grid])]
    assert abs(best - t) / t < 0.03


def test_underconfident_logits_get_a_temperature_below_one():
    z, y = _overconfident(scale=0.3, seed=2)
    assert fit_temperature(z, y) < 1.0


def test_an_uninformative_head_gets_the_largest_temperature_not_one():
    rng = np.random.default_rng(5)
    z, y = rng.normal(0, 0.5, (300, 3)), rng.integers(0, 3, 300)  # logits unrelated to the labels
    assert fit_temperature(z, y) > 10


def test_nothing_to_fit_gives_temperature_one_and_bad_shapes_are_refused():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, int)) == 1.0
    assert fit_temperature(np.random.default_rng(0).normal(size=(5, 2)), np.zeros(5, int)) == 1.0  # one class
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(np.zeros((4, 3)), np.zeros(3, int))


def test_report_and_reliability_png(tmp_path):
    z, y = _overconfident(seed=3)
    rep = calibration_report(z, y)
    assert rep["fitted_here"] and rep["ece_after"] < rep["ece_before"] and rep["nll_after"] < rep["nll_before"]
    fixed = calibration_report(z, y, temperature=1.0)
    assert fixed["ece_after"] == pytest.approx(fixed["ece_before"])
    png = reliability_diagram(z, y, rep["temperature"], tmp_path / "rel.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_temperature_divides_the_logits_at_predict(tiny_medical, tmp_path):
    import shutil

    from polyhead.apps.medical.app import MedicalApp

    img = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    plain = MedicalApp().load(str(tiny_medical))
    assert plain.predictor.temperature == {}  # a card without calibration: temperature 1
    p1 = np.array(list(plain.predict_image(img).diagnosis.values()))
    w = tmp_path / "cal.safetensors"
    shutil.copy(tiny_medical, w)
    card = json.loads(tiny_medical.with_suffix(".json").read_text())
    card["calibration"] = {"diagnosis": {"temperature": 4.0}}
    w.with_suffix(".json").write_text(json.dumps(card))
    cal = MedicalApp().load(str(w))
    p4 = np.array(list(cal.predict_image(img).diagnosis.values()))
    logits = np.log(p1)
    assert p4 == pytest.approx(softmax(logits / 4.0), abs=1e-5)
    assert p4.max() < p1.max() or p1.max() == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("name", ["ph2", "drive"])
def test_shipped_weights_load_with_their_cards_temperature_and_predict(name):
    """The shipped derm model is calibrated (one temperature per image head, fitted on validation);
    the vessel model has no image head, so nothing to calibrate."""
    import json

    from polyhead.apps.medical.app import MedicalApp

    app = MedicalApp().load(name)
    card = json.loads(app.weights_path.with_suffix(".json").read_text())
    want = {h: c["temperature"] for h, c in (card.get("calibration") or {}).items() if isinstance(c, dict)}
    assert app.predictor.temperature == pytest.approx(want)
    assert all(t > 0 for t in app.predictor.temperature.values())
    rgb = (np.random.default_rng(1).random((300, 320, 3)) * 255).astype(np.uint8)
    doc = app.predict_image(rgb).to_json()
    assert "classes" in doc
    if name == "ph2":
        assert set(app.predictor.temperature) == set(app.predictor.heads), "every image head is calibrated"
        assert sum(doc["diagnosis"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    else:
        assert app.predictor.temperature == {}
        assert app.predictor.window == (512, 512)  # larger than the 128 training patch
