"""Validation of a medical model on a dataset split, in original pixels, with the app's Predictor.

>>> metrics = evaluate(model, MedicalDataset(spec, "val"), spec)     # doctest: +SKIP
>>> metrics["dice"], metrics["diagnosis_accuracy"]                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np

from polyhead.apps.medical.data import MedicalDataset, MedicalSpec
from polyhead.apps.medical.metrics import ClassificationMetrics, PixelAUC, SegmentationMetrics
from polyhead.apps.medical.postprocess import Predictor, default_window
from polyhead.errors import InputError
from polyhead.heads.segmentation import IGNORE_INDEX

#: per image head, the figures copied flat into the metrics (``diagnosis_accuracy``, ``melanoma_ece``...)
HEAD_KEYS = ("accuracy", "balanced_accuracy", "macro_auc", "ece", "melanoma_vs_rest_auc")


def default_label_map(label: int | None) -> dict[str, int]:
    """A plain dataset's one image label is the ``diagnosis`` head's class id."""
    return {} if label is None else {"diagnosis": label}


def evaluate(
    model,
    dataset: MedicalDataset,
    spec: MedicalSpec,
    tta: bool = False,
    hd95: bool = True,
    detail: bool = False,
    keep_largest: bool = False,
    heads: dict[str, list[str]] | None = None,
    label_map: Callable[[int | None], dict[str, int]] = default_label_map,
    temperature: dict[str, float] | None = None,
    collect: dict[str, tuple[list, list]] | None = None,
    pixel_auc: bool | None = None,
    window: tuple[int, int] | None = None,
    threshold: float = 0.5,
) -> dict:
    """Flat metrics for the Trainer (``dice``, ``iou``, ``hd95``, ``auc``, ``diagnosis_accuracy``, ``score``...);
    with ``detail`` also ``per_class`` / per-head breakdowns. ``heads`` names the image-level heads and their
    classes (default: ``diagnosis`` from the spec); ``label_map`` turns a sample's label into
    ``{head: class id}`` (multi-source sets map one source label onto several heads). ``collect`` receives
    each head's raw logits and labels (for temperature fitting). ``pixel_auc`` (default: for patch models,
    i.e. vessels, and with ``detail``) adds the foreground ROC AUC over the valid pixels. Patch models run
    ``window`` tiles (default: :func:`default_window`, as predict does). ``threshold``: the foreground
    probability of a binary mask (the card's ``postprocess.threshold`` when fitted, see ``threshold.py``).
    ``score`` is the mean of the foreground Dice and each head's balanced accuracy (whichever exist): the
    Trainer keeps the checkpoint with the best score."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    if heads is None:
        heads = {"diagnosis": spec.diagnosis} if spec.diagnosis else {}
    predictor = Predictor(
        model,
        spec.classes,
        None,
        spec.input_mode,
        spec.input_size,
        tta=tta,
        keep_largest=keep_largest,
        labels=heads,
        temperature=temperature,
        threshold=threshold,
        window=window or (default_window(tuple(spec.input_size)) if spec.input_mode == "patch" else None),
        contrast=spec.input_contrast,
    )
    seg = SegmentationMetrics(spec.classes, hd95=hd95)
    if pixel_auc is None:
        pixel_auc = spec.input_mode == "patch" or detail
    auc = PixelAUC() if pixel_auc and len(spec.classes) == 2 else None
    cls = {h: ClassificationMetrics(names) for h, names in heads.items()}
    skipped = 0
    for i in range(len(dataset.items)):
        try:
            img, mask, fov, label = dataset.load_raw(i)
        except InputError as e:
            print(f"skipped {e}", file=sys.stderr)
            skipped += 1
            continue
        probs, logits = predictor.outputs(img)
        if mask is not None and probs is not None:
            pred = predictor.mask_from_probs(probs)
            target = np.where(fov > 0, mask, IGNORE_INDEX) if fov is not None else mask
            seg.update(pred, target)
            if auc is not None:
                auc.update(probs[1], target)
        for head, cid in label_map(label).items():
            if head in cls and head in logits:
                cls[head].update(predictor.calibrated(head, logits[head]), cid)
                if collect is not None:
                    z, y = collect.setdefault(head, ([], []))
                    z.append(np.asarray(logits[head], np.float64))
                    y.append(int(cid))
    if was_training and hasattr(model, "train"):
        model.train()
    out: dict = {"skipped": skipped}
    per_class = seg.aggregate()
    if per_class:
        keys = ("dice", "iou", "dice_pooled", "iou_pooled", "hd95", "sensitivity", "specificity")
        for k in keys if hd95 else [k for k in keys if k != "hd95"]:  # mean over foreground classes
            vals = [v[k] for v in per_class.values() if not math.isnan(v[k])]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        if auc is not None:
            out["auc"] = auc.aggregate()["auc"]
        if detail:
            out["per_class"] = per_class
    parts = [out["dice"]] if "dice" in out and not math.isnan(out["dice"]) else []
    for head, metric in cls.items():
        m = metric.aggregate()
        if not m:
            continue
        for k in HEAD_KEYS:
            if k in m:
                out[f"{head}_{k}"] = m[k]
        if detail:
            out[head] = m
        if not math.isnan(m["balanced_accuracy"]):
            parts.append(m["balanced_accuracy"])
    out["score"] = float(np.mean(parts)) if parts else 0.0
    return out
