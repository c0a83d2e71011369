"""Field-of-view measurement and the common-scale rescaling of fundus sets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from polyhead.apps.medical.fov import fov_diameter, fov_from_red, fov_scale, rescale


def _disc(shape, centre, radius):
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, centre, radius, 1, -1)
    return m


@pytest.mark.parametrize("radius", [60, 270, 816])
def test_a_generated_disc_measures_its_diameter(radius):
    side = 2 * radius + 40
    m = _disc((side, side), (side // 2, side // 2), radius)
    assert fov_diameter(m) == pytest.approx(2 * radius + 1, abs=1.0)


def test_a_disc_cut_by_the_frame_still_measures_its_diameter():
    full = 1632
    cut = _disc((1168, 1752), (876, 584), full // 2)  # HRF-like: the frame cuts the top and bottom
    assert cut[0].any() and cut[-1].any()
    assert fov_diameter(cut) == pytest.approx(full + 1, abs=2.0)
    side = _disc((605, 700), (680, 300), 320)  # STARE-like: cut at the right
    assert fov_diameter(side) == pytest.approx(641, abs=2.0)


def test_rescaling_brings_the_disc_to_the_target_and_keeps_thin_lines():
    fov = _disc((1168, 1752), (876, 584), 816)
    img = np.dstack([fov * 180, fov * 90, fov * 40]).astype(np.uint8)
    mask = np.zeros_like(fov)
    mask[:, 870:876] = 1  # a 6 px vessel: 2 px after x0.33
    mask &= fov
    f = fov_scale(fov, 540)
    assert f == pytest.approx(540 / 1633, rel=0.01)
    img2, mask2, fov2 = rescale(img, mask, fov, f)
    assert fov_diameter(fov2) == pytest.approx(540, abs=2.0)
    assert img2.shape[:2] == mask2.shape == fov2.shape
    rows = mask2[100:-100]  # away from the cut top and bottom
    assert (rows.sum(1) >= 1).all()  # the vessel is unbroken


def test_scale_within_tolerance_is_one_and_empty_fov_is_refused():
    fov = _disc((584, 565), (282, 292), 269)
    assert fov_scale(fov, 540) == 1.0  # DRIVE stays as it is
    with pytest.raises(ValueError):
        fov_scale(np.zeros((10, 10), np.uint8), 540)
    assert fov_diameter(np.zeros((10, 10))) == 0.0


def test_red_channel_threshold_finds_a_dark_bordered_fov():
    rng = np.random.default_rng(0)
    disc = _disc((605, 700), (350, 302), 300)
    img = rng.integers(0, 15, (605, 700, 3)).astype(np.uint8)  # noisy black border
    img[disc > 0] = (rng.integers(120, 230, (int(disc.sum()), 3))).astype(np.uint8)
    found = fov_from_red(img)
    assert (found != disc).mean() < 0.002
    assert fov_diameter(found) == pytest.approx(601, abs=2.0)


def test_a_fundus_card_rescales_inputs_to_its_fov_and_answers_in_input_pixels(tiny_patch_medical, tmp_path):
    import json
    import shutil

    from polyhead.apps.medical.app import MedicalApp

    w = tmp_path / "fundus.safetensors"
    shutil.copy(tiny_patch_medical, w)
    card = json.loads(tiny_patch_medical.with_suffix(".json").read_text())
    w.with_suffix(".json").write_text(json.dumps({**card, "fov_diameter": 100}))
    disc = _disc((300, 340), (170, 150), 140)
    img = np.dstack([disc * 170, disc * 80, disc * 30]).astype(np.uint8)
    app = MedicalApp().load(str(w))
    assert app.predictor._fov_factor(img) == pytest.approx(100 / 281, rel=0.02)
    calls = []
    app.model.register_forward_pre_hook(lambda _m, args: calls.append(tuple(args[0].shape[-2:])))
    result = app.predict_image(img)
    assert result.mask.shape == (300, 340)
    assert max(max(c) for c in calls) <= 128  # the rescaled image (~107x121) fits one window
