"""BatchNorm folding for eager inference, stride-level mask logits, ONNX sessions per batch size."""

from __future__ import annotations

import torch
from torch import nn

from polyhead.apps.driving.model import build_driving_model
from polyhead.bn_fold import fold_batchnorm
from polyhead.heads.segmentation import foreground, upsample_logits
from polyhead.runtime import for_cpu_inference


def _randomise_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_folded_driving_model_matches_and_has_no_batchnorm_left():
    model = build_driving_model().eval()
    _randomise_bn(model)
    x = torch.randn(1, 3, 128, 192)
    with torch.inference_mode():
        ref = model(x)
    before = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = for_cpu_inference(model)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        out = folded(x)
    assert before > 80 and left == 0
    for task in ref:
        assert torch.allclose(ref[task], out[task], atol=2e-3, rtol=1e-3), task


class _NormFirst(nn.Module):
    """Registers conv before bn but applies bn first: folding by name would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.conv(self.bn(x))


def test_unusual_order_is_caught_by_the_example_check():
    net = _NormFirst().eval()
    _randomise_bn(net)
    x = torch.randn(1, 4, 8, 8)
    ref = net(x)
    kept = fold_batchnorm(net, example=x)
    assert isinstance(kept.bn, nn.BatchNorm2d)  # the original came back
    assert torch.allclose(kept(x), ref)


def test_stride_logits_give_the_same_masks_as_full_resolution():
    model = build_driving_model().eval()
    x = torch.randn(1, 3, 128, 192)
    with torch.inference_mode():
        low = model(x)
        for task in ("drivable", "lane"):
            model.heads[task].eval_full_resolution = True
        full = model(x)
    for task, stride in (("drivable", 8), ("lane", 4)):
        assert low[task].shape[-2:] == (128 // stride, 192 // stride)
        assert full[task].shape[-2:] == (128, 192)
        assert torch.allclose(upsample_logits(low[task], (128, 192)), full[task], atol=1e-4)
        a = foreground(low[task][0], (128, 192))
        b = full[task][0].argmax(0) != 0
        assert (a != b).float().mean() < 1e-3  # only exact ties may differ


def test_onnx_runs_each_batch_size_in_its_own_session(tmp_path):
    from polyhead.export import OnnxModel, export_onnx

    model = build_driving_model().eval()
    onnx = OnnxModel(export_onnx(model, tmp_path / "d.onnx", (128, 192)), threads=1)
    x = torch.randn(3, 3, 128, 192)
    three = onnx(x)
    one = onnx(x[1:2])
    assert sorted(onnx._sessions) == [1, 3] and onnx.session_for(9) is onnx.session
    assert torch.allclose(three["det"][1:2], one["det"], atol=1e-3)
    with torch.inference_mode():
        ref = model(x)
    assert torch.allclose(three["lane"], ref["lane"], atol=1e-3)
