"""Label smoothing on the classification head: the loss it gives, its config round trip, bad values."""

import math

import pytest
import torch

from polyhead.apps.face.model import attr_config
from polyhead.heads.classification import ClassificationHead
from polyhead.model import build_model


def test_smoothed_loss_matches_the_mixed_target():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]])
    target = torch.tensor([0, 1])
    present = torch.tensor([True, True])
    eps = 0.2
    logp = logits.log_softmax(1)
    mixed = torch.full_like(logp, eps / 3)
    mixed[torch.arange(2), target] += 1 - eps
    expected = float(-(mixed * logp).sum(1).mean())
    got = float(ClassificationHead(4, 3, label_smoothing=eps).loss(logits, target, present))
    assert math.isclose(got, expected, rel_tol=1e-6)
    plain = float(ClassificationHead(4, 3).loss(logits, target, present))
    assert got > plain  # confident, correct logits cost more once the target is smoothed


def test_attribute_config_carries_the_smoothing_into_the_built_head():
    model = build_model(attr_config("efficientnet_lite0", ("gender",), 64, 1.0, gender_smoothing=0.1))
    assert model.heads["gender"].label_smoothing == 0.1
    assert "label_smoothing" not in attr_config("efficientnet_lite0")["heads"]["gender"]  # old cards unchanged


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_smoothing_outside_zero_one_is_refused(bad):
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationHead(4, 2, label_smoothing=bad)


def test_cli_refuses_a_smoothing_out_of_range_in_one_line(capsys):
    from polyhead.cli import main

    args = ["face", "train", "--data", "datasets/face.yaml", "--stage", "attributes", "--label-smoothing", "1.5"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--label-smoothing must be in [0, 1), got 1.5 (see --help)")
