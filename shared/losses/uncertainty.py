"""Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018)."""

from __future__ import annotations

import torch
from torch import nn

from polyhead.losses.base import LossBalancer


class UncertaintyWeighting(LossBalancer):
    """Learns ``s_t = log sigma_t^2`` per task: ``total = sum(0.5 * exp(-s_t) * L_t + 0.5 * s_t)``."""

    def __init__(self, tasks: list[str], init: float = 0.0):
        super().__init__(tasks)
        self.log_vars = nn.Parameter(torch.full((len(self.tasks),), float(init)))

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for t, loss in losses.items():
            s = self.log_vars[self.tasks.index(t)]
            total = total + 0.5 * torch.exp(-s) * loss + 0.5 * s
        return total

    def weights(self) -> dict[str, float]:
        w = (0.5 * torch.exp(-self.log_vars.detach())).tolist()
        return dict(zip(self.tasks, w, strict=True))
