"""The metric base every app's ``val`` builds on (MONAI's shape: ``update`` per item, ``aggregate`` over
the set, ``reset`` to start again) and the one pixel confusion matrix the segmentation metrics share.

>>> cm = ConfusionMatrix(2)
>>> cm.update(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 255]]))   # 255: not labelled
>>> cm.matrix.tolist(), cm.iou().round(2).tolist()
([[1, 1], [0, 1]], [0.5, 0.5])
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod

import numpy as np

IGNORE_INDEX = 255


class Metric(ABC):
    """Accumulates over items, then aggregates. Subclasses keep their state in attributes set by
    ``__init__``; :meth:`reset` restores that initial state."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj._init_args = (args, kwargs)
        return obj

    @abstractmethod
    def update(self, *args, **kwargs) -> None:
        """Add one item (an image, a batch, a volume)."""

    @abstractmethod
    def aggregate(self) -> dict:
        """The metrics over everything added since the last reset."""

    def reset(self) -> None:
        """Forget every item (the metric is as new)."""
        args, kwargs = self._init_args
        fresh = type(self)(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        self.__dict__.update(fresh.__dict__)


class ConfusionMatrix(Metric):
    """``n x n`` pixel counts (rows: ground truth, columns: prediction) summed over every image;
    target pixels equal to ``ignore_index`` (or outside ``0..n-1``) are left out."""

    def __init__(self, n: int, ignore_index: int = IGNORE_INDEX):
        self.n, self.ignore_index = int(n), ignore_index
        self.matrix = np.zeros((self.n, self.n), np.int64)
        self.images = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
        if pred.shape != target.shape:
            raise ValueError(f"prediction ({pred.size} pixels) and target ({target.size}) differ in size")
        keep = (target != self.ignore_index) & (target >= 0) & (target < self.n)
        idx = target[keep].astype(np.int64) * self.n + np.clip(pred[keep].astype(np.int64), 0, self.n - 1)
        self.matrix += np.bincount(idx, minlength=self.n * self.n).reshape(self.n, self.n)
        self.images += 1

    def iou(self) -> np.ndarray:
        """Per-class IoU (0 where a class is absent from both prediction and target)."""
        tp = np.diag(self.matrix)
        return tp / np.maximum(self.matrix.sum(0) + self.matrix.sum(1) - tp, 1)

    def recall(self) -> np.ndarray:
        """Per-class recall = per-class pixel accuracy (0 where the class has no target pixel)."""
        return np.diag(self.matrix) / np.maximum(self.matrix.sum(1), 1)

    def aggregate(self) -> dict:
        return {
            "iou": self.iou().tolist(),
            "recall": self.recall().tolist(),
            "miou": float(self.iou().mean()),
            "overall_acc": float(np.diag(self.matrix).sum() / max(self.matrix.sum(), 1)),
            "pixels": int(self.matrix.sum()),
        }
