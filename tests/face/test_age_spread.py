"""Age as a distribution: the spread of the bin-centre distribution, its fitted factor and the JSON key."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.apps.face.align import align_face
from polyhead.apps.face.app import FaceApp, age_spread_scale
from polyhead.apps.face.attributes import (
    bin_spread,
    calibrate_age_spread,
    fit_spread_scale,
    predict_attributes,
    spread_coverage,
)
from polyhead.apps.face.cascade import STAGES, build_net
from polyhead.apps.face.model import AGE_BINS, age_centres, attr_config, save_face_weights
from polyhead.errors import InputError
from polyhead.model import build_model

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "face.safetensors"


def test_one_hot_distribution_has_no_spread():
    n = len(AGE_BINS) - 1
    probs = torch.eye(n)
    mean, std = bin_spread(probs)
    assert torch.allclose(mean, age_centres())
    assert torch.all(std == 0)


def test_spread_is_the_standard_deviation_of_the_bin_centres():
    c = age_centres()
    p = torch.zeros(1, len(c))
    p[0, 2], p[0, 6] = 0.25, 0.75
    mean, std = bin_spread(p)
    m = 0.25 * c[2] + 0.75 * c[6]
    expected = float(torch.sqrt(0.25 * (c[2] - m) ** 2 + 0.75 * (c[6] - m) ** 2))
    assert float(mean[0]) == pytest.approx(float(m))
    assert float(std[0]) == pytest.approx(expected, rel=1e-5)
    assert expected > 1  # the case is not trivially zero


def test_fitted_factor_covers_68_percent_on_generated_data():
    """Errors drawn with a true spread 1.7x the predicted one: the fit finds ~1.7 and covers ~68% of new draws."""
    rng = np.random.default_rng(0)
    std = rng.uniform(2, 12, 4000)
    err = rng.normal(0, 1.7 * std)
    before = spread_coverage(err, std)
    scale = fit_spread_scale(err, std)
    assert scale == pytest.approx(1.7, rel=0.06)
    assert before < 0.5  # uncalibrated, one spread covers far too little
    assert spread_coverage(err, scale * std) == pytest.approx(0.683, abs=0.002)  # the fitted sample
    std2 = rng.uniform(2, 12, 4000)
    err2 = rng.normal(0, 1.7 * std2)
    assert spread_coverage(err2, scale * std2) == pytest.approx(0.683, abs=0.025)  # fresh draws
    assert spread_coverage(err2, scale * std2, 2) == pytest.approx(0.954, abs=0.02)


def test_fit_refuses_undefined_factors():
    with pytest.raises(ValueError, match="as many"):
        fit_spread_scale(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="no finite"):
        fit_spread_scale(np.ones(4), np.zeros(4))  # errors with zero spread: no factor covers them


def test_calibrate_age_spread_on_a_tiny_model():
    torch.manual_seed(0)
    model = build_model(attr_config("lcnet_075")).eval()
    crops = np.random.default_rng(0).integers(0, 255, (24, 112, 112, 3), np.uint8)
    ages = np.random.default_rng(1).uniform(1, 90, 24)  # no tied errors (an untrained model predicts one age)
    fit = calibrate_age_spread(model, crops, ages)
    assert fit["crops"] == 24 and fit["age_spread_scale"] > 0
    assert fit["coverage_after"]["1_spread"] == pytest.approx(0.683, abs=1 / 24 + 1e-6)
    for k in ("coverage_before", "coverage_after", "coverage_5fold"):
        assert set(fit[k]) == {"1_spread", "2_spreads"}


def test_card_factor_defaults_to_one_and_is_checked():
    assert age_spread_scale({}) == 1.0
    assert age_spread_scale({"age_spread_scale": 0.7}) == 0.7
    with pytest.raises(InputError, match="age_spread_scale"):
        age_spread_scale({"age_spread_scale": -1}, "face.json")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    parts = {k: build_net(k) for k in STAGES}
    parts["attr"] = build_model(attr_config("lcnet_075"))
    d = tmp_path_factory.mktemp("fw")
    card = {"app": "face", "detector": {"min_size": 24, "thresholds": [0.99, 0.99, 0.99]}}
    old = save_face_weights(d / "old.safetensors", parts, card)
    new = save_face_weights(d / "new.safetensors", parts, {**card, "age_spread_scale": 0.5})
    return old, new


def _one_face(images):
    """A stand-in cascade: one face per image (random nets find none at the test thresholds)."""
    pts = np.array([[38, 52], [74, 52], [56, 72], [42, 92], [71, 92]], np.float32)
    return [
        {
            "boxes": np.array([[20, 20, 92, 110]], np.float32),
            "scores": np.array([0.99], np.float32),
            "points": pts[None],
        }
        for _ in images
    ]


def test_face_json_has_age_spread_scaled_by_the_card(tiny):
    old, new = tiny
    img = np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8)
    docs = {}
    for name, path in (("old", old), ("new", new)):
        app = FaceApp().load(path)
        app.detector.detect = _one_face
        (face,) = app.predict_image(img).to_json()["faces"]
        docs[name] = face
        crop = align_face(img, _one_face([img])[0]["points"][0])
        raw = predict_attributes(app.attr, [crop])["age_std"][0]
        assert face["age_spread"] == pytest.approx(round(float(raw) * app.age_spread_scale, 1), abs=0.051)
    assert docs["old"]["age_spread"] > 0  # a random head spreads over the bins
    assert docs["new"]["age_spread"] == pytest.approx(docs["old"]["age_spread"] * 0.5, abs=0.051)
    json.dumps(docs)  # strict JSON


def test_detection_only_json_has_no_age_spread(tiny):
    app = FaceApp().load(tiny[0], tasks=["none"])
    app.detector.detect = _one_face
    (face,) = app.predict_image(np.zeros((128, 128, 3), np.uint8)).to_json()["faces"]
    assert "age" not in face and "age_spread" not in face


def test_shipped_card_has_a_fitted_factor_with_its_coverage():
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    cal = card["age_spread_calibration"]
    assert card["age_spread_scale"] == cal["age_spread_scale"] > 0
    assert cal["coverage_after"]["1_spread"] == pytest.approx(cal["target_coverage"], abs=0.01)
    assert cal["crops"] == card["val"]["metrics"]["utk_val_chips"]  # the attribute val split, nothing else
    assert cal["age_mae"] == pytest.approx(card["val"]["metrics"]["age_mae"], abs=0.01)


def test_calibrate_refuses_weights_without_attributes_or_val_chips(tmp_path):
    from polyhead.apps.face.ship import calibrate_card

    torch.manual_seed(0)
    det_only = save_face_weights(tmp_path / "det.safetensors", {k: build_net(k) for k in STAGES}, {"app": "face"})
    y = tmp_path / "faces.yaml"
    y.write_text("utkface: missing_folder\n")
    with pytest.raises(InputError, match="det.safetensors.*no attribute model"):
        calibrate_card(det_only, y)
    parts = {k: build_net(k) for k in STAGES}
    parts["attr"] = build_model(attr_config("lcnet_075"))
    full = save_face_weights(tmp_path / "full.safetensors", parts, {"app": "face"})
    y.write_text("seed: 0\n")
    with pytest.raises(InputError, match="faces.yaml.*no UTKFace val chips"):
        calibrate_card(full, y)
    assert "age_spread_scale" not in json.loads(full.with_suffix(".json").read_text())


def test_shipped_factor_is_reproduced_from_the_val_split():
    from polyhead.apps.face.ship import calibrate_card
    from tests.conftest import shared_data

    shared_data("face", "utkface")
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    root = WEIGHTS.parents[1]
    fit = calibrate_card(WEIGHTS, root / "datasets" / "face.yaml", write=False)
    assert fit["age_spread_scale"] == pytest.approx(card["age_spread_scale"], abs=1e-3)
    assert fit["coverage_before"] == card["age_spread_calibration"]["coverage_before"]


def test_onnx_runtime_part_reads_ages_with_the_models_own_bins(tiny):
    """The ONNX Runtime attribute part carries the config, so its ages match torch's (101 one-year bins),
    and an older model with 14 coarse bins reads its ages off the coarse centres."""
    from polyhead.apps.face.app import _for_inference
    from polyhead.apps.face.attributes import age_values
    from polyhead.apps.face.model import AGE_BINS, load_face_weights

    parts, _ = load_face_weights(tiny[0])
    torch_attr = parts["attr"].eval()
    onnx_attr = _for_inference(torch_attr, "attr", tiny[0], "onnx")
    assert type(onnx_attr).__name__ == "OnnxModel"
    crops = np.random.default_rng(2).integers(0, 255, (5, 112, 112, 3), np.uint8)
    a, b = predict_attributes(torch_attr, crops), predict_attributes(onnx_attr, crops)
    assert len(age_values(onnx_attr)) == 101
    np.testing.assert_allclose(a["age"], b["age"], atol=0.05)
    np.testing.assert_allclose(a["age_std"], b["age_std"], atol=0.05)
    legacy_cfg = {
        "encoder": "lcnet_075",
        "neck_channels": 32,
        "heads": {"age": {"type": "classify", "num_outputs": len(AGE_BINS) - 1}},
        "input_size": [112, 112],
    }
    legacy = build_model(legacy_cfg).eval()
    assert age_values(legacy).tolist() == age_centres().tolist()
    ages = predict_attributes(legacy, crops)["age"]
    assert ((ages >= 1.5) & (ages <= 88.0)).all()  # within the coarse centres, not the 0-100 bins


def test_aligned_faces_give_ages_in_years_or_coarse_bins():
    from polyhead.apps.face.attributes import AlignedFaces

    crops = np.zeros((3, 112, 112, 3), np.uint8)
    age, gender = np.array([4, 37, 116]), np.array([0, 1, 0])
    years = AlignedFaces(crops, age, gender, ("age", "gender"))
    assert [float(years[i]["targets"]["age"]) for i in range(3)] == [4.0, 37.0, 100.0]  # 100: the last bin
    assert years[1]["targets"]["age"].dtype == torch.float32 and int(years[1]["targets"]["gender"]) == 1
    bins = AlignedFaces(crops, age, gender, ("age",), age_as="bin")
    assert [int(bins[i]["targets"]["age"]) for i in range(3)] == [1, 7, 13]
    with pytest.raises(ValueError, match="age_as"):
        AlignedFaces(crops, age, gender, ("age",), age_as="decade")
