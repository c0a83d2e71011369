import random

import pytest
import torch

from polyhead.losses import BALANCERS, create_balancer
from polyhead.losses.pcgrad import project_conflicts


def test_fixed_weights_combine():
    b = create_balancer("fixed", ["a", "b"], {"a": 2.0})
    assert float(b.combine({"a": torch.tensor(1.0), "b": torch.tensor(3.0)})) == 5.0


def test_uncertainty_weights_are_learned():
    b = create_balancer("uncertainty", ["a", "b"])
    opt = torch.optim.SGD(b.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        b.combine({"a": torch.tensor(10.0), "b": torch.tensor(0.1)}).backward()
        opt.step()
    w = b.weights()
    assert w["b"] > w["a"]  # the noisier (larger-loss) task is down-weighted


def test_pcgrad_removes_conflicts():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    g = project_conflicts([g1, g2], random.Random(0))
    assert float(g @ g1) >= -1e-6 and float(g @ g2) >= -1e-6
    same = project_conflicts([g1, g1 * 2])
    assert torch.allclose(same, g1 * 3)  # no conflict: plain sum


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_every_balancer_fills_gradients(name):
    torch.manual_seed(0)
    shared = torch.nn.Linear(4, 4)
    ha, hb = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    x = torch.randn(8, 4)
    f = shared(x)
    losses = {"a": ha(f).pow(2).mean(), "b": (hb(f) - 1).pow(2).mean()}
    bal = create_balancer(name, ["a", "b"])
    total = bal.backward(losses, list(shared.parameters()))
    assert torch.isfinite(total)
    for p in [*shared.parameters(), *ha.parameters(), *hb.parameters()]:
        assert p.grad is not None and float(p.grad.abs().sum()) > 0


def test_unknown_balancer():
    with pytest.raises(ValueError, match="pcgrad"):
        create_balancer("magic", ["a"])
