"""Fixed task weights (the default; weights come from the app config)."""

from __future__ import annotations

import torch

from polyhead.losses.base import LossBalancer


class FixedWeights(LossBalancer):
    """``total = sum(w_t * L_t)``; tasks without a weight get 1.

    >>> FixedWeights(["a", "b"], {"b": 2.0}).combine({"a": torch.tensor(1.), "b": torch.tensor(1.)})
    tensor(3.)
    """

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None):
        super().__init__(tasks)
        self._w = {t: float((weights or {}).get(t, 1.0)) for t in self.tasks}

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self._w[t] * loss for t, loss in losses.items())

    def weights(self) -> dict[str, float]:
        return dict(self._w)
