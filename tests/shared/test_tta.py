"""Flip test-time augmentation (``polyhead.tta``): what is averaged, what is mirrored back."""

import pytest
import torch

from polyhead.tta import FLIPS, flip_tta, flips_for


def _net(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Not flip-equivariant: the map is the input plus a horizontal ramp; the label is the mean of the left half."""
    ramp = torch.linspace(0, 1, x.shape[-1]).expand_as(x[:, :1])
    return {"map": x[:, :1] + ramp, "label": x[..., : x.shape[-1] // 2].mean((1, 2, 3))[:, None]}


def test_identity_alone_is_one_plain_forward_pass():
    x = torch.rand(2, 3, 8, 12)
    out = flip_tta(_net, x, flips_for(False))
    ref = _net(x)
    assert torch.equal(out["map"], ref["map"]) and torch.equal(out["label"], ref["label"])


def test_maps_are_mirrored_back_and_averaged_labels_averaged_as_they_are():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 12)
    out = flip_tta(_net, x, FLIPS)
    maps, labels = [], []
    for dims in FLIPS:
        o = _net(x.flip(dims) if dims else x)
        maps.append(o["map"].flip(dims) if dims else o["map"])
        labels.append(o["label"])
    assert torch.allclose(out["map"], torch.stack(maps).mean(0))
    assert torch.allclose(out["label"], torch.stack(labels).mean(0))
    # the ramp and its mirror average to a constant 0.5: the input's own part comes back in place
    assert torch.allclose(out["map"], x[:, :1] + 0.5, atol=1e-6)


def test_the_four_flips_make_any_network_flip_equivariant():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 2, 3, padding=1)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a = flip_tta(conv, x, FLIPS)
        b = flip_tta(conv, x.flip(-1), FLIPS)
    assert torch.allclose(a.flip(-1), b, atol=1e-6)
    assert not torch.allclose(conv(x).flip(-1), conv(x.flip(-1)), atol=1e-3), "the plain conv is not"


def test_activation_is_applied_to_maps_before_averaging_only():
    x = torch.randn(1, 3, 4, 4)
    out = flip_tta(_net, x, FLIPS[:2], activation=lambda t: t * 0)
    assert torch.count_nonzero(out["map"]) == 0
    assert out["label"].shape == (1, 1) and torch.count_nonzero(out["label"]) == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_outputs_are_float32_tensors_for_tensor_outputs(dtype):
    out = flip_tta(lambda t: t.to(dtype), torch.rand(1, 1, 4, 6), FLIPS)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (1, 1, 4, 6)
