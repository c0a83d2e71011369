"""The distribution head (a value read out of ordered bins, DLDL-v2 loss) and the last-level neck."""

from __future__ import annotations

import pytest
import torch

from polyhead.heads import HEADS, DistributionHead
from polyhead.model import build_model
from polyhead.necks import LastLevel

VALUES = [float(v) for v in range(101)]


def test_expectation_of_a_peaked_distribution_is_its_bin():
    head = DistributionHead(4, values=VALUES)
    logits = torch.full((2, 101), -30.0)
    logits[0, 17] = 30.0
    logits[1, 60] = logits[1, 62] = 30.0
    mean, std = head.expectation(logits)
    assert mean.tolist() == pytest.approx([17.0, 61.0], abs=1e-4)
    assert std.tolist() == pytest.approx([0.0, 1.0], abs=1e-4)


def test_loss_is_smallest_at_the_true_value_and_masks_missing_labels():
    head = DistributionHead(4, values=VALUES, sigma=2.0)
    target = torch.tensor([30.0])
    present = torch.tensor([True])
    v = torch.tensor(VALUES)
    losses = {c: float(head.loss((-0.5 * ((v - c) / 2.0) ** 2)[None], target, present)) for c in (10.0, 25.0, 30.0)}
    assert losses[30.0] < losses[25.0] < losses[10.0]
    assert losses[30.0] == pytest.approx(0.0, abs=1e-3)  # the Gaussian target itself: KL 0 and no L1 error
    pred = torch.randn(3, 101, requires_grad=True)
    none = head.loss(pred, torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3, dtype=torch.bool))
    assert float(none.detach()) == 0.0
    none.backward()  # still connected to the graph
    assert pred.grad is not None


def test_training_moves_the_expectation_to_the_target():
    torch.manual_seed(0)
    head = DistributionHead(8, values=VALUES, dropout=0.0)
    feats = {32: torch.randn(16, 8, 2, 2)}
    target = torch.full((16,), 42.0)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        head.loss(head(feats, (64, 64)), target, torch.ones(16, dtype=torch.bool)).backward()
        opt.step()
    mean, _ = head.expectation(head(feats, (64, 64)))
    assert float((mean - 42.0).abs().max().detach()) < 1.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"values": [1.0]}, "at least two"),
        ({"values": [2.0, 1.0]}, "increasing"),
        ({"values": [1.0, 2.0], "sigma": 0.0}, "sigma"),
        ({"values": [1.0, 2.0], "num_outputs": 3}, "num_outputs"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistributionHead(4, **kwargs)


def test_last_level_model_returns_only_stride_32_and_builds_from_config():
    assert HEADS["distribution"] is DistributionHead
    model = build_model(
        {
            "encoder": "lcnet_075",
            "neck": "last",
            "strides": [32],
            "neck_channels": 48,
            "heads": {"age": {"type": "distribution", "values": VALUES}, "g": {"type": "classify", "num_outputs": 2}},
        }
    ).eval()
    assert isinstance(model.neck, LastLevel)
    feats = model.forward_features(torch.zeros(2, 3, 112, 112))
    assert list(feats) == [32] and tuple(feats[32].shape) == (2, 48, 4, 4)
    out = model(torch.zeros(2, 3, 112, 112))
    assert tuple(out["age"].shape) == (2, 101) and tuple(out["g"].shape) == (2, 2)
