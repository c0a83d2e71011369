"""Segmentation head: any number of classes, logits at input resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.heads.base import Head, zero_loss
from polyhead.layers import ConvBNAct, DWSeparable

IGNORE_INDEX = 255


class SegmentationHead(Head):
    """Two cheap convs on one neck level, a 1x1 classifier, bilinear upsampling to the input size.

    Args:
        in_channels: neck width.
        num_classes: output classes (2 for a binary mask: background / foreground).
        in_stride: which neck level to read (4 keeps thin structures such as lane lines).
        dice_weight: weight of smp's soft Dice loss over the foreground classes, added to cross-entropy
            (helps thin, rare classes).
        class_weights: optional per-class cross-entropy weights.
        focal_weight: weight of smp's focal loss (hard pixels), 0 to leave it out.
        lovasz_weight: weight of smp's Lovasz-softmax loss (optimises IoU directly), 0 to leave it out.
        eval_full_resolution: in eval mode, upsample the logits to the input size (the default). False
            returns them at ``in_stride`` and leaves the upsampling to post-processing
            (:func:`upsample_logits`, :func:`foreground`): the same masks, without a full-size float map
            per class leaving the network (measured on the driving model in ONNX Runtime and eager).

    The loss is ``CE + dice_weight * Dice + focal_weight * Focal + lovasz_weight * Lovasz``, all
    ignoring ``IGNORE_INDEX`` pixels; the three extra terms are segmentation-models-pytorch's.
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
        focal_weight: float = 0.0,
        lovasz_weight: float = 0.0,
        eval_full_resolution: bool = True,
    ):
        super().__init__()
        self.in_stride = in_stride
        self.eval_full_resolution = eval_full_resolution
        self.num_classes = num_classes
        self.extra_losses = _smp_losses(num_classes, dice_weight, focal_weight, lovasz_weight)
        self.body = nn.Sequential(DWSeparable(in_channels, mid_channels), ConvBNAct(mid_channels, mid_channels, 3))
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)
        if class_weights is not None:
            self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        else:
            self.class_weights = None

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        logits = self.classifier(self.body(feats[self.in_stride]))
        if not self.training and not self.eval_full_resolution:
            return logits
        return upsample_logits(logits, image_size)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present], target[present].long()
        loss = F.cross_entropy(pred, target, weight=self.class_weights, ignore_index=IGNORE_INDEX)
        for weight, fn in self.extra_losses:
            loss = loss + weight * fn(pred, target)
        return loss


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(..., C, h, w)`` logits bilinearly resized to ``size`` (returned as is when already that size).

    >>> upsample_logits(torch.zeros(1, 2, 12, 20), (96, 160)).shape
    torch.Size([1, 2, 96, 160])
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    squeeze = logits.dim() == 3
    out = F.interpolate(logits[None] if squeeze else logits, size=tuple(size), mode="bilinear", align_corners=False)
    return out[0] if squeeze else out


def foreground(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(C, h, w)`` logits -> bool ``size`` mask of the non-background classes, at any head stride.

    For two classes the margin ``l1 - l0`` is upsampled (one channel instead of two; bilinear
    resizing is linear, so the mask equals thresholding the upsampled logits); otherwise argmax != 0.

    >>> foreground(torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]]), (1, 4)).tolist()
    [[True, True, False, False]]
    """
    if logits.shape[0] == 2:
        return upsample_logits((logits[1] - logits[0])[None], size)[0] > 0
    return upsample_logits(logits, size).argmax(0) != 0


def _smp_losses(num_classes: int, dice: float, focal: float, lovasz: float) -> list[tuple[float, nn.Module]]:
    """segmentation-models-pytorch's multiclass losses with their weights (zero weights left out)."""
    from segmentation_models_pytorch import losses

    foreground = list(range(1, num_classes)) if num_classes > 1 else None
    out = []
    if dice > 0:  # smoothed like the usual soft Dice; classes absent from the batch add nothing
        out.append((dice, losses.DiceLoss("multiclass", classes=foreground, smooth=1.0, ignore_index=IGNORE_INDEX)))
    if focal > 0:
        out.append((focal, losses.FocalLoss("multiclass", ignore_index=IGNORE_INDEX)))
    if lovasz > 0:
        out.append((lovasz, losses.LovaszLoss("multiclass", ignore_index=IGNORE_INDEX)))
    return out
