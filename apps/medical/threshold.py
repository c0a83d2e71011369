"""``polyhead medical threshold``: the foreground threshold of a binary-mask model, fitted on training images.

A model trained with class weights or a Dice term rarely has its best F1 at probability 0.5 (the shipped
vessel model over-segments there: sensitivity 0.885, specificity 0.955 on DRIVE). This runs the model over
the **training** split as predict does (windows, field-of-view rescaling, inside the field of view only),
accumulates one histogram of the foreground probability for foreground pixels and one for background
pixels, and picks the threshold with the best pooled F1. The validation split is never read, so the val
figures stay honest; the result goes into the card (``postprocess.threshold`` and ``threshold_fit``), where
predict and val read it (``--threshold`` still overrides).

>>> main(["medical", "threshold", "--data", "datasets/medical-fundus.yaml", "--weights", "W"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from polyhead.errors import InputError

BINS = 1000
GRID = np.round(np.arange(0.20, 0.805, 0.01), 2)


def f1_curve(pos_hist: np.ndarray, neg_hist: np.ndarray, grid=GRID) -> np.ndarray:
    """Pooled F1 at each threshold of ``grid`` from histograms of the foreground probability (``BINS``
    equal bins on [0, 1]) of foreground and background pixels; a pixel is foreground when p >= t.

    >>> pos, neg = np.zeros(BINS), np.zeros(BINS)
    >>> pos[900], neg[100] = 10, 90
    >>> f1_curve(pos, neg, np.array([0.5, 0.95])).tolist()
    [1.0, 0.0]
    """
    pos_above = np.cumsum(pos_hist[::-1])[::-1]  # pixels with p in bin k or higher
    neg_above = np.cumsum(neg_hist[::-1])[::-1]
    k = np.clip(np.ceil(np.asarray(grid) * BINS - 1e-9).astype(int), 0, BINS - 1)
    tp, fp = pos_above[k], neg_above[k]
    fn = pos_hist.sum() - tp
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def fit_threshold(app, dataset) -> dict:
    """The F1-best threshold of ``app``'s binary mask over ``dataset`` (any split the caller picks)."""
    pos, neg = np.zeros(BINS), np.zeros(BINS)
    images = 0
    for i in range(len(dataset.items)):
        try:
            img, mask, fov, _ = dataset.load_raw(i)
        except InputError as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        if mask is None:
            continue
        probs, _ = app.predictor.outputs(img)
        if probs is None or probs.shape[0] != 2:
            raise InputError(None, "threshold fitting needs a binary mask model (background + one class)")
        valid = fov > 0 if fov is not None else np.ones(mask.shape, bool)
        p = probs[1][valid]
        bins = np.clip((p * BINS).astype(int), 0, BINS - 1)
        fg = mask[valid] > 0
        pos += np.bincount(bins[fg], minlength=BINS)
        neg += np.bincount(bins[~fg], minlength=BINS)
        images += 1
    if not images:
        raise InputError(None, "no image with a mask to fit the threshold on")
    f1 = f1_curve(pos, neg)
    best = int(np.argmax(f1))
    at_half = float(f1[int(np.argmin(np.abs(GRID - 0.5)))])
    return {"threshold": float(GRID[best]), "f1": round(float(f1[best]), 4), "f1_at_0.5": round(at_half, 4),
            "images": images, "grid": [float(GRID[0]), float(GRID[-1]), 0.01]}  # fmt: skip


def run_threshold(args: argparse.Namespace) -> int:
    from polyhead.apps.medical.app import MedicalApp
    from polyhead.apps.medical.training import load_any_spec, make_dataset
    from polyhead.io.writers import write_json
    from polyhead.weights import card_path, load_card

    app = MedicalApp().load(args.weights, threshold=0.5)
    spec = load_any_spec(args.data)
    specs = [s.spec for s in spec.sources] if hasattr(spec, "sources") else [spec]
    for sp in [spec, *specs]:
        sp.input_mode, sp.input_size, sp.classes = app.predictor.mode, app.predictor.size, app.predictor.classes
    ds = make_dataset(spec, args.split, norm=app.predictor.norm)
    parts = getattr(ds, "datasets", [ds])
    results = [fit_threshold(app, part) for part in parts] if args.per_source else []
    fit = fit_threshold(app, _Concat(parts))
    fit["split"] = args.split
    fit["data"] = str(args.data)
    if results:
        fit["per_source"] = {s.name: r for s, r in zip(spec.sources, results, strict=True)}
    print(f"threshold {fit['threshold']}: F1 {fit['f1']} on {fit['images']} {args.split} images "
          f"(at 0.5: {fit['f1_at_0.5']})")  # fmt: skip
    if not args.dry_run:
        path = app.weights_path
        card = load_card(path)
        card.setdefault("postprocess", {})["threshold"] = fit["threshold"]
        card["threshold_fit"] = fit
        write_json(card_path(path), card)
        print(f"wrote postprocess.threshold = {fit['threshold']} into {card_path(path)}")
    return 0


class _Concat:
    """The items of several datasets behind one ``items`` / ``load_raw`` (a multi-source split)."""

    def __init__(self, parts):
        self.parts = list(parts)
        self.index = [(k, i) for k, p in enumerate(self.parts) for i in range(len(p.items))]
        self.items = self.index

    def load_raw(self, j: int):
        k, i = self.index[j]
        return self.parts[k].load_raw(i)


def threshold_command():
    from polyhead.app import Command

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="dataset YAML whose training images fit the threshold")
        p.add_argument("--weights", required=True, help="binary-mask weights; their card is updated")
        p.add_argument("--split", default="train", help="split to fit on (default train: never the val split)")
        p.add_argument("--per-source", action="store_true", help="also report each source's own best threshold")
        p.add_argument("--dry-run", action="store_true", help="report only, do not write the card")

    return Command(
        "fit a binary mask's foreground threshold on the training images (best pooled F1) into the card",
        add,
        run_threshold,
        "example:\n  polyhead medical threshold --data datasets/medical-fundus.yaml "
        "--weights runs/train/medical-fundus/best.safetensors",
    )
