"""Image-level heads: classes (cross-entropy) or a regressed value (smooth L1); a value read out of a
distribution over ordered bins (label-distribution learning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.heads.base import Head, zero_loss


class ClassificationHead(Head):
    """Global average pool of the deepest neck level, dropout, one linear layer.

    ``num_outputs`` classes, or ``regression=True`` for ``num_outputs`` real values. Targets are
    class ids (long) or values (float); ``present`` masks samples without this label. ``label_smoothing``
    (classes only) spreads that share of each target over all classes (Szegedy et al. 2016), a regulariser
    for labels that are uncertain (a child's gender from a face crop).

    >>> head = ClassificationHead(8, 2, label_smoothing=0.1)
    >>> round(float(head.loss(torch.tensor([[9.0, -9.0]]), torch.tensor([0]), torch.tensor([True]))), 3)
    0.9
    """

    target_kind = "vector"

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        in_stride: int = 32,
        regression: bool = False,
        dropout: float = 0.2,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
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
        return F.cross_entropy(pred, target.long().view(-1), label_smoothing=self.label_smoothing)


def bin_expectation(probs: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected value and standard deviation of ordered bin ``values`` under per-row probabilities (n, bins).

    >>> m, s = bin_expectation(torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), torch.tensor([10.0, 20.0, 30.0]))
    >>> m.tolist(), s.tolist()
    ([20.0, 20.0], [0.0, 10.0])
    """
    probs = probs.float()
    mean = (probs * values).sum(1)
    var = (probs * (values - mean[:, None]) ** 2).sum(1)
    return mean, var.clamp_min(0).sqrt()


class DistributionHead(ClassificationHead):
    """A real value (an age, a score) predicted as a distribution over ordered ``values`` (bin centres).

    Trained by label-distribution learning with an expectation term (the DLDL-v2 recipe, Gao et al. 2018):
    the KL divergence from a Gaussian of width ``sigma`` centred on the true value (over the bins) plus
    ``l1_weight`` times the absolute error of the expected value. Read out with
    :meth:`expectation` (expected value and spread of the bins under the softmax). Targets are floats.

    >>> head = DistributionHead(8, values=[0.0, 1.0, 2.0, 3.0], sigma=1.0)
    >>> tuple(head({32: torch.zeros(2, 8, 1, 1)}, (32, 32)).shape)
    (2, 4)
    >>> head.expectation(torch.zeros(2, 4))[0].tolist()  # uniform over the bins: their mean
    [1.5, 1.5]
    """

    def __init__(
        self,
        in_channels: int,
        values: list[float],
        in_stride: int = 32,
        sigma: float = 2.0,
        l1_weight: float = 1.0,
        dropout: float = 0.2,
        num_outputs: int | None = None,
    ):
        if num_outputs is not None and num_outputs != len(values):
            raise ValueError(f"num_outputs {num_outputs} does not match the {len(values)} values")
        super().__init__(in_channels, len(values), in_stride=in_stride, dropout=dropout)
        if len(values) < 2 or any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError("values must be at least two increasing bin centres")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.register_buffer("values", torch.tensor(values, dtype=torch.float32), persistent=False)
        self.sigma, self.l1_weight = float(sigma), float(l1_weight)

    def expectation(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` of the bin values under ``softmax(logits)``, one per row."""
        return bin_expectation(logits.float().softmax(1), self.values)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(pred)
        pred, target = pred[present].float(), target[present].float().view(-1, 1)
        soft = torch.exp(-0.5 * ((self.values[None] - target) / self.sigma) ** 2)
        soft = soft / soft.sum(1, keepdim=True).clamp_min(1e-12)
        logp = pred.log_softmax(1)
        kl = F.kl_div(logp, soft, reduction="batchmean")
        mean = (logp.exp() * self.values).sum(1)
        return kl + self.l1_weight * (mean - target.view(-1)).abs().mean()
