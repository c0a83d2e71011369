"""The head interface: a module over neck features that also knows its own loss."""

from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    """A task head.

    ``forward(feats, image_size)`` takes the neck's ``{stride: tensor}`` and the input's ``(h, w)``.
    ``loss(pred, target, present)`` returns a scalar; ``present`` is a bool tensor over the batch and
    samples whose label is missing contribute nothing (a missing label is a mask, not an error).
    """

    #: how the collate function batches this task's targets: "dense" (stacked), "boxes" (concatenated
    #: rows with a batch index) or "vector" (stacked per-sample vectors / scalars)
    target_kind: str = "dense"

    def loss(self, pred, target, present: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def zero_loss(pred) -> torch.Tensor:
    """A zero that keeps the graph connected (so DDP and gradient methods see every parameter)."""
    if isinstance(pred, (list, tuple)):
        return sum(p.sum() for p in pred) * 0.0
    return pred.sum() * 0.0
