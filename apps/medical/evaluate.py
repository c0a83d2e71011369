"""Validation of a medical model on a dataset split, in original pixels, with the app's Predictor.

>>> metrics = evaluate(model, MedicalDataset(spec, "val"), spec)     # doctest: +SKIP
>>> metrics["dice"], metrics["diagnosis_accuracy"]                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys

import numpy as np

from polyhead.apps.medical.data import MedicalDataset, MedicalSpec
from polyhead.apps.medical.metrics import ClassificationMetrics, SegmentationMetrics
from polyhead.apps.medical.postprocess import Predictor
from polyhead.errors import InputError
from polyhead.heads.segmentation import IGNORE_INDEX


def evaluate(
    model,
    dataset: MedicalDataset,
    spec: MedicalSpec,
    tta: bool = False,
    hd95: bool = True,
    detail: bool = False,
    keep_largest: bool = False,
) -> dict:
    """Flat metrics for the Trainer (``dice``, ``iou``, ``hd95``, ``diagnosis_accuracy``, ``score``...); with
    ``detail`` also ``per_class`` / ``diagnosis`` breakdowns. ``score`` is the mean of the foreground Dice
    and the diagnosis balanced accuracy (whichever exist): the Trainer keeps the checkpoint with the best score."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    predictor = Predictor(
        model, spec.classes, spec.diagnosis, spec.input_mode, spec.input_size, tta=tta, keep_largest=keep_largest
    )
    seg = SegmentationMetrics(spec.classes, hd95=hd95)
    cls = ClassificationMetrics(spec.diagnosis) if spec.diagnosis else None
    skipped = 0
    for i in range(len(dataset.items)):
        try:
            img, mask, fov, label = dataset.load_raw(i)
        except InputError as e:
            print(f"skipped {e}", file=sys.stderr)
            skipped += 1
            continue
        probs, diag = predictor.probabilities(img)
        if mask is not None and probs is not None:
            pred = predictor.mask_from_probs(probs)
            target = np.where(fov > 0, mask, IGNORE_INDEX) if fov is not None else mask
            seg.update(pred, target)
        if cls is not None and label is not None and diag is not None:
            cls.update(diag, label)
    if was_training and hasattr(model, "train"):
        model.train()
    out: dict = {"skipped": skipped}
    per_class = seg.aggregate()
    if per_class:
        keys = ("dice", "iou", "dice_pooled", "iou_pooled", "hd95", "sensitivity", "specificity")
        for k in keys if hd95 else [k for k in keys if k != "hd95"]:  # mean over foreground classes
            vals = [v[k] for v in per_class.values() if not math.isnan(v[k])]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        if detail:
            out["per_class"] = per_class
    if cls is not None:
        diag_metrics = cls.aggregate()
        if diag_metrics:
            out["diagnosis_accuracy"] = diag_metrics["accuracy"]
            out["diagnosis_balanced_accuracy"] = diag_metrics["balanced_accuracy"]
            out["diagnosis_macro_auc"] = diag_metrics["macro_auc"]
            if detail:
                out["diagnosis"] = diag_metrics
    parts = [out[k] for k in ("dice", "diagnosis_balanced_accuracy") if k in out and not math.isnan(out[k])]
    out["score"] = float(np.mean(parts)) if parts else 0.0
    return out
