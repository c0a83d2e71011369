"""Segmentation head: any number of classes, logits at input resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.heads.base import Head, zero_loss
from shared.layers import ConvBNAct, DWSeparable

IGNORE_INDEX = 255


class SegmentationHead(Head):
    """Two cheap convs on one neck level, a 1x1 classifier, bilinear upsampling to the input size.

    Args:
        in_channels: neck width.
        num_classes: output classes (2 for a binary mask: background / foreground).
        in_stride: which neck level to read (4 keeps thin structures such as lane lines).
        dice_weight: weight of a soft Dice term added to cross-entropy (helps thin, rare classes).
        class_weights: optional per-class cross-entropy weights.
    """

    target_kind = "dense"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        in_stride: int = 4,
        mid_channels: int = 32,
        dice_weight: float = 0.5,
        class_weights: list[float] | None = None,
    ):
        super().__init__()
        self.in_stride = in_stride
        self.num_classes = num_classes
        self.dice_weight = dice_weight
        self.body = nn.Sequential(DWSeparable(in_channels, mid_channels), ConvBNAct(mid_channels, mid_channels, 3))
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)
        if class_weights is not None:
            self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        else:
            self.class_weights = None

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        logits = self.classifier(self.body(feats[self.in_stride]))
        return F.interpolate(logits, size=image_size, mode="bilinear", align_corners=False)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present], target[present].long()
        ce = F.cross_entropy(pred, target, weight=self.class_weights, ignore_index=IGNORE_INDEX)
        if self.dice_weight <= 0:
            return ce
        return ce + self.dice_weight * soft_dice_loss(pred, target)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean soft Dice loss over foreground classes (class 0 is background); ignores IGNORE_INDEX."""
    valid = (target != IGNORE_INDEX).unsqueeze(1)
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
    onehot = onehot * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    union = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (union + eps)
    return 1 - dice[1:].mean() if logits.shape[1] > 1 else 1 - dice.mean()
