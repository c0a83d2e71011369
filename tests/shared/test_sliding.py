import numpy as np
import pytest
import torch

from polyhead.sliding import gaussian_weight, sliding_window, window_starts


def test_window_starts_cover_the_image_with_the_overlap():
    starts = window_starts(1000, 128, 0.5)
    assert starts[0] == 0 and starts[-1] == 1000 - 128
    assert max(np.diff(starts)) <= 64
    assert window_starts(100, 128, 0.5) == [0]


def test_identity_model_reproduces_the_image_exactly():
    image = torch.rand(2, 300, 517)
    out = sliding_window(image, lambda x: x, (128, 128), overlap=0.5)
    assert torch.allclose(out, image, atol=1e-5)


def test_small_image_is_padded_and_cropped_back():
    image = torch.rand(1, 40, 50)
    out = sliding_window(image, lambda x: x * 2, (64, 64))
    assert out.shape == (1, 40, 50)
    assert torch.allclose(out, image * 2, atol=1e-5)


def test_tta_with_an_equivariant_model_changes_nothing_and_patches_stay_small():
    seen = []

    def model(x):
        seen.append(tuple(x.shape[-2:]))
        return x.mean(1, keepdim=True)

    image = torch.rand(3, 200, 260)
    plain = sliding_window(image, model, (96, 96), tta=False)
    flipped = sliding_window(image, model, (96, 96), tta=True)
    assert torch.allclose(plain, flipped, atol=1e-5)
    assert set(seen) == {(96, 96)}  # memory: the model never sees more than a patch


def test_gaussian_weight_peaks_in_the_centre_and_stays_positive():
    w = gaussian_weight((64, 64))
    assert w.max() == pytest.approx(1.0) and w.min() > 0
    assert w[32, 32] > w[0, 0]


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        sliding_window(torch.rand(10, 10), lambda x: x, (8, 8))
    with pytest.raises(ValueError):
        sliding_window(torch.rand(1, 10, 10), lambda x: x, (8, 8), overlap=1.0)
