"""PCGrad (Yu et al., NeurIPS 2020): project away conflicting task gradients on shared weights."""

from __future__ import annotations

import random

import torch
import torch.distributed as dist
from torch import nn

from polyhead.losses.base import LossBalancer


class PCGrad(LossBalancer):
    """Per-task gradients on the shared parameters; where two conflict (negative dot product) the
    conflicting component is removed, in random task order. Task-specific parameters get the plain
    sum of their task gradients. Costs one extra backward pass per task through the encoder.
    """

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None, seed: int = 0):
        super().__init__(tasks)
        self._w = {t: float((weights or {}).get(t, 1.0)) for t in self.tasks}
        self._rng = random.Random(seed)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self._w[t] * loss for t, loss in losses.items())

    def weights(self) -> dict[str, float]:
        return dict(self._w)

    def backward(self, losses: dict[str, torch.Tensor], shared_params: list[nn.Parameter]) -> torch.Tensor:
        shared = [p for p in shared_params if p.requires_grad]
        flat = []
        for t, loss in losses.items():
            grads = torch.autograd.grad(self._w[t] * loss, shared, retain_graph=True, allow_unused=True)
            flat.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).flatten()
                        for g, p in zip(grads, shared, strict=True)
                    ]
                )
            )
        projected = project_conflicts(flat, self._rng)
        total = self.combine(losses)
        total.backward()  # fills task-specific grads (and shared ones, which we overwrite)
        offset = 0
        for p in shared:
            n = p.numel()
            p.grad = projected[offset : offset + n].view_as(p).clone()
            offset += n
        if dist.is_available() and dist.is_initialized():
            for p in shared:
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()
        return total.detach()


def project_conflicts(grads: list[torch.Tensor], rng: random.Random | None = None) -> torch.Tensor:
    """Sum of task gradients after PCGrad projection.

    >>> g = project_conflicts([torch.tensor([1., 0.]), torch.tensor([-1., 1.])])
    >>> bool(g @ torch.tensor([1., 0.]) >= 0) and bool(g @ torch.tensor([-1., 1.]) >= 0)
    True
    """
    rng = rng or random.Random(0)
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        others = [j for j in range(len(grads)) if j != i]
        rng.shuffle(others)
        for j in others:
            dot = g @ grads[j]
            if dot < 0:
                g -= dot / (grads[j] @ grads[j]).clamp(min=1e-12) * grads[j]
        out.append(g)
    return torch.stack(out).sum(0)
