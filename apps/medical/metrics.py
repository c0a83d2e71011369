"""Medical metrics that accumulate per image, then aggregate (MONAI's pattern).

Masks: per class Dice, IoU, 95% Hausdorff distance, sensitivity and specificity; pixel ROC AUC of the
foreground probability (:class:`PixelAUC`, inside the FOV). Dice and IoU are given both as the mean over
images (MONAI's default) and pooled over all pixels of the set (how DRIVE vessel F1 is usually reported).
Image labels: accuracy, per-class recall, balanced accuracy, one-vs-rest AUC (melanoma-vs-rest when a
class is called ``melanoma``) and the expected calibration error.

>>> m = SegmentationMetrics(["background", "lesion"])
>>> mask = np.zeros((32, 32), np.uint8); mask[8:24, 8:24] = 1
>>> m.update(mask, mask)
>>> m.aggregate()["lesion"]["dice"]
1.0
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

from polyhead.heads.segmentation import IGNORE_INDEX
from polyhead.metrics import Metric


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hausdorff95(pred: np.ndarray, target: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """Symmetric 95th-percentile surface distance; NaN when either mask is empty."""
    if not pred.any() or not target.any():
        return float("nan")
    sp, st = _surface(pred), _surface(target)
    dt_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    dt_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float(max(np.percentile(dt_t[sp], 95), np.percentile(dt_p[st], 95)))


def confusion_counts(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, 4)`` tp, fp, fn, tn per class of one image, ``IGNORE_INDEX`` target pixels left out
    (segmentation-models-pytorch's ``metrics.get_stats``)."""
    import torch
    from segmentation_models_pytorch.metrics import get_stats

    p = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.int64))[None]
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))[None]
    p = torch.where(t == IGNORE_INDEX, torch.full_like(p, IGNORE_INDEX), p)  # smp skips ignored pixels in both
    tp, fp, fn, tn = get_stats(p, t, mode="multiclass", num_classes=num_classes, ignore_index=IGNORE_INDEX)
    return torch.stack([tp[0], fp[0], fn[0], tn[0]], 1).numpy().astype(np.int64)


class SegmentationMetrics(Metric):
    """Accumulates confusion counts per image; ``IGNORE_INDEX`` pixels (outside the FOV) are left out."""

    def __init__(self, classes: list[str], hd95: bool = True):
        self.classes = list(classes)
        self.hd95 = hd95
        self.rows: list[np.ndarray] = []  # per image: (C, 4) tp fp fn tn
        self.hd: list[list[float]] = []

    def update(self, pred: np.ndarray, target: np.ndarray, spacing=(1.0, 1.0)) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
        valid = target != IGNORE_INDEX
        self.rows.append(confusion_counts(pred, target, len(self.classes)))
        hds = [float("nan")] * len(self.classes)
        if self.hd95:
            for c in range(1, len(self.classes)):
                hds[c] = hausdorff95((pred == c) & valid, (target == c) & valid, spacing)
        self.hd.append(hds)

    def aggregate(self) -> dict[str, dict[str, float]]:
        """``{class: {dice, iou, dice_pooled, iou_pooled, hd95, sensitivity, specificity}}`` (foreground classes)."""
        if not self.rows:
            return {}
        rows = np.stack(self.rows).astype(np.float64)  # (N, C, 4)
        hd = np.array(self.hd, np.float64)
        out = {}
        for c, name in enumerate(self.classes):
            if c == 0 and len(self.classes) > 1:
                continue
            tp, fp, fn, tn = rows[:, c].T
            has = (tp + fn) > 0  # images where the class is present in the reference
            with np.errstate(invalid="ignore", divide="ignore"):
                dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
                iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), 1.0)
            T = rows[:, c].sum(0)
            out[name] = {
                "dice": float(dice.mean()),
                "iou": float(iou.mean()),
                "dice_pooled": float(2 * T[0] / max(2 * T[0] + T[1] + T[2], 1)),
                "iou_pooled": float(T[0] / max(T[0] + T[1] + T[2], 1)),
                "hd95": float(np.nanmean(hd[:, c])) if np.isfinite(hd[:, c]).any() else float("nan"),
                "sensitivity": float(T[0] / max(T[0] + T[2], 1)),
                "specificity": float(T[3] / max(T[3] + T[1], 1)),
                "images_with_class": int(has.sum()),
            }
        return out


class PixelAUC(Metric):
    """ROC AUC of a foreground probability map over all valid pixels of a set (inside the FOV for
    fundus images), from ``bins``-bin histograms of the positive and negative pixels (memory does not
    grow with the set; pairs within one bin count one half, so the error is below ~1/bins).

    >>> m = PixelAUC(); m.update(np.array([[0.9, 0.2], [0.7, 0.1]]), np.array([[1, 0], [1, 0]])); m.aggregate()
    {'auc': 1.0, 'pixels': 4}
    """

    def __init__(self, bins: int = 10_000):
        self.bins = int(bins)
        self.pos = np.zeros(self.bins, np.int64)
        self.neg = np.zeros(self.bins, np.int64)

    def update(self, prob: np.ndarray, target: np.ndarray) -> None:
        valid = target != IGNORE_INDEX
        idx = np.clip((np.asarray(prob, np.float64)[valid] * self.bins).astype(np.int64), 0, self.bins - 1)
        fg = target[valid] > 0
        self.pos += np.bincount(idx[fg], minlength=self.bins)
        self.neg += np.bincount(idx[~fg], minlength=self.bins)

    def aggregate(self) -> dict:
        p, n = self.pos.astype(np.float64), self.neg.astype(np.float64)
        if p.sum() == 0 or n.sum() == 0:
            return {"auc": float("nan"), "pixels": int(p.sum() + n.sum())}
        below = np.concatenate([[0.0], np.cumsum(n)[:-1]])  # negatives in lower bins
        auc = (p * (below + 0.5 * n)).sum() / (p.sum() * n.sum())
        return {"auc": float(auc), "pixels": int(p.sum() + n.sum())}


def auc_one_vs_rest(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula; NaN with one class only."""
    pos, neg = int(positive.sum()), int((~positive).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)  # ties get their average rank
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


class ClassificationMetrics(Metric):
    """Accumulates (probabilities, label) pairs; aggregates accuracy, per-class recall and AUC."""

    def __init__(self, classes: list[str]):
        self.classes = list(classes)
        self.probs: list[np.ndarray] = []
        self.labels: list[int] = []

    def update(self, probs: np.ndarray, label: int) -> None:
        self.probs.append(np.asarray(probs, np.float64))
        self.labels.append(int(label))

    def aggregate(self) -> dict:
        if not self.labels:
            return {}
        P, y = np.stack(self.probs), np.array(self.labels)
        pred = P.argmax(1)
        per_class = {}
        for c, name in enumerate(self.classes):
            sel = y == c
            per_class[name] = {
                "recall": float((pred[sel] == c).mean()) if sel.any() else float("nan"),
                "auc": auc_one_vs_rest(P[:, c], sel),
                "n": int(sel.sum()),
            }
        recalls = [v["recall"] for v in per_class.values() if np.isfinite(v["recall"])]
        aucs = [v["auc"] for v in per_class.values() if np.isfinite(v["auc"])]
        from polyhead.calibration import expected_calibration_error

        out = {
            "accuracy": float((pred == y).mean()),
            "balanced_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
            "macro_auc": float(np.mean(aucs)) if aucs else float("nan"),
            "ece": expected_calibration_error(P, y),
            "per_class": per_class,
            "n": int(len(y)),
        }
        if "melanoma" in per_class:  # the figure dermoscopy papers report
            out["melanoma_vs_rest_auc"] = per_class["melanoma"]["auc"]
        return out
