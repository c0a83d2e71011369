"""Keypoint head: K points regressed as coordinates normalised to the input (0..1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.heads.base import Head, zero_loss


class KeypointHead(Head):
    """Pooled deepest features -> MLP -> ``num_points`` (x, y) pairs in [0, 1] of the input size.

    Targets are ``(B, K, 3)``: x, y normalised and a visibility flag; invisible points and samples
    without keypoints do not count (wing-style robustness comes from smooth L1).
    """

    target_kind = "vector"

    def __init__(self, in_channels: int, num_points: int, in_stride: int = 32, hidden: int = 128):
        super().__init__()
        self.in_stride = in_stride
        self.num_points = num_points
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels, hidden), nn.SiLU(inplace=True), nn.Linear(hidden, 2 * num_points)
        )

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        out = self.mlp(F.adaptive_avg_pool2d(feats[self.in_stride], 1))
        return out.view(-1, self.num_points, 2).sigmoid()

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present], target[present].float()
        visible = target[..., 2:3] > 0
        if not bool(visible.any()):
            return zero_loss(pred)
        err = F.smooth_l1_loss(pred, target[..., :2], reduction="none", beta=0.02) * visible
        return err.sum() / visible.sum().clamp(min=1) / 2
