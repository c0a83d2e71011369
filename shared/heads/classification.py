"""Image-level head: classes (cross-entropy) or a regressed value (smooth L1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.heads.base import Head, zero_loss


class ClassificationHead(Head):
    """Global average pool of the deepest neck level, dropout, one linear layer.

    ``num_outputs`` classes, or ``regression=True`` for ``num_outputs`` real values. Targets are
    class ids (long) or values (float); ``present`` masks samples without this label.
    """

    target_kind = "vector"

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        in_stride: int = 32,
        regression: bool = False,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.in_stride = in_stride
        self.regression = regression
        self.num_outputs = num_outputs
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, num_outputs))

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(feats[self.in_stride], 1))

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present], target[present]
        if self.regression:
            return F.smooth_l1_loss(pred, target.float().view_as(pred))
        return F.cross_entropy(pred, target.long().view(-1))
