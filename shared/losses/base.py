"""Loss balancing: one small interface, one file per strategy (the LibMTL shape)."""

from __future__ import annotations

import torch
from torch import nn


class LossBalancer(nn.Module):
    """Turns per-task losses into parameter gradients.

    ``combine`` gives the weighted total; ``backward`` fills ``.grad`` (by default: ``combine`` then
    ``backward``; gradient methods override it). A balancer is a module so learnable weights are
    saved, resumed and optimised with the model.
    """

    def __init__(self, tasks: list[str]):
        super().__init__()
        self.tasks = list(tasks)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, losses: dict[str, torch.Tensor], shared_params: list[nn.Parameter]) -> torch.Tensor:
        total = self.combine(losses)
        total.backward()
        return total.detach()

    def weights(self) -> dict[str, float]:
        """Current effective weight of each task, for logging."""
        return {t: 1.0 for t in self.tasks}
