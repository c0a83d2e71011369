"""``polyhead medical train``: the medical model on a dataset YAML (one dataset, or several through a
``format: sources`` YAML) through the shared Trainer; afterwards the image heads are calibrated
(temperature scaling on the validation split) and the temperatures go into the best weights' card."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from polyhead.apps.medical.data import MedicalDataset, load_spec
from polyhead.apps.medical.evaluate import evaluate
from polyhead.apps.medical.model import build_medical_model
from polyhead.apps.medical.sources import MultiSourceDataset, evaluate_sources, is_sources_yaml, load_sources_spec
from polyhead.errors import InputError
from polyhead.train import Trainer, config_from_args
from polyhead.train.finetune import fine_tune_overrides, initialise

TASKS = ("mask", "diagnosis")


def image_heads(spec) -> dict[str, list[str]]:
    """Image-level heads of a spec -> their classes (``diagnosis`` first)."""
    heads = getattr(spec, "heads", None)
    if heads is not None:
        return dict(heads)
    return {"diagnosis": spec.diagnosis} if spec.diagnosis else {}


def build_card(args: argparse.Namespace, spec, train_set, val_set, tasks: list[str]) -> dict:
    """The model card fields known before training (metrics are added by the Trainer)."""
    heads = {h: c for h, c in image_heads(spec).items() if h in tasks}
    data = {
        "yaml": str(args.data),
        "root": str(spec.root),
        "layout": spec.layout,
        "split": spec.split,
        "train_items": len(train_set.items),
        "val_items": len(val_set.items),
        "val_keys": sorted({it.key.split(":")[0] for it in val_set.items}),
    }
    if hasattr(spec, "sources"):
        data["sources"] = {
            s.name: {"yaml": str(s.spec.source), "root": str(s.spec.root), "train_items": len(d.items)}
            for s, d in zip(spec.sources, train_set.datasets, strict=True)
        }
    return {
        "app": "medical",
        "classes": spec.classes,
        "diagnosis_classes": heads.get("diagnosis", []),
        "labels": {h: c for h, c in heads.items() if h != "diagnosis"},
        "tasks": tasks,
        "input": {
            "mode": spec.input_mode,
            "size": list(spec.input_size),
            **({"contrast": spec.input_contrast} if spec.input_contrast else {}),
        },
        "input_size": list(spec.input_size),
        "postprocess": {"keep_largest": spec.keep_largest},
        "fov_diameter": getattr(spec, "fov_diameter", None),
        "training_command": "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "data": data,
        "metric_definitions": "dice/iou: mean over val images of the foreground-class Dice/IoU at original "
        "resolution (pixels outside the field of view ignored; fundus sources at the common FOV scale); "
        "*_pooled: over all val pixels (dice_pooled = vessel F1); auc: pixel ROC AUC inside the FOV; hd95: "
        "symmetric 95th-percentile surface distance in pixels; sensitivity/specificity pooled; per image head "
        "<head>_accuracy, <head>_balanced_accuracy (mean per-class recall), <head>_macro_auc (one-vs-rest), "
        "<head>_melanoma_vs_rest_auc, <head>_ece (15 bins); <source>/...: one source of a sources YAML; "
        "score: mean of dice and the heads' balanced accuracies (or the sources YAML's 'score' metrics)",
    }


def load_any_spec(path):
    """A sources YAML -> :class:`SourcesSpec`, any other dataset YAML -> :class:`MedicalSpec`."""
    return load_sources_spec(path) if is_sources_yaml(path) else load_spec(path)


def make_dataset(spec, split: str, **kwargs):
    """The split of either kind of spec."""
    if hasattr(spec, "sources"):
        return MultiSourceDataset(spec, split, **kwargs)
    return MedicalDataset(spec, split, **kwargs)


def validation(spec, val_set, **kwargs):
    """The Trainer's ``evaluate(model)`` for either kind of spec."""
    if hasattr(spec, "sources"):
        return lambda m: evaluate_sources(m, val_set, hd95=False, **kwargs)
    return lambda m: evaluate(m, val_set, spec, hd95=False, keep_largest=spec.keep_largest, **kwargs)


def train(args: argparse.Namespace) -> int:
    """Train; best weights (by ``score``) go to ``<out>/best.safetensors`` with a model card that holds the
    image heads' temperatures (``calibration``) and their reliability diagrams beside it.

    >>> polyhead medical train --data datasets/medical-derm.yaml --epochs 12 --batch 16   # doctest: +SKIP
    """
    spec = load_any_spec(args.data)
    heads = image_heads(spec)
    tasks = list(args.tasks or ("mask", *heads))
    unknown = [t for t in tasks if t != "mask" and t not in heads]
    if unknown:
        raise InputError(
            args.data, f"--tasks {unknown}: the dataset has no such labels; it has mask, {', '.join(heads)}"
        )
    if not tasks:
        raise InputError(args.data, "nothing to train: the dataset has no image labels and --tasks excludes mask")
    if args.imgsz:
        spec.input_size = tuple(args.imgsz)
        for s in getattr(spec, "sources", []):
            s.spec.input_size = tuple(args.imgsz)
    model = build_medical_model(
        args.encoder,
        mask_classes=len(spec.classes) if "mask" in tasks else 0,
        diagnosis_classes=len(heads["diagnosis"]) if "diagnosis" in tasks and "diagnosis" in heads else 0,
        neck_channels=args.neck_channels,
        mask_stride=args.mask_stride,
        image_heads={h: len(c) for h, c in heads.items() if h != "diagnosis" and h in tasks},
        dice_weight=getattr(args, "dice_weight", 1.0),
        lovasz_weight=getattr(args, "lovasz_weight", 0.0),
    )
    init = initialise(model, args)
    norm = model.normalisation
    train_set = make_dataset(spec, "train", augment=True, patches_per_image=args.patches_per_image, norm=norm)
    val_set = make_dataset(spec, "val", norm=norm)
    out = Path(args.out or "runs/train/medical")
    card = {**build_card(args, spec, train_set, val_set, tasks), **init}
    card["normalisation"] = {**model.config["normalisation"], "scale": "1/255"}
    cfg = config_from_args(args, out, card, **fine_tune_overrides(args, init))
    t0 = time.time()
    trainer = Trainer(model, train_set, validation(spec, val_set), cfg)
    trainer.fit()
    if train_set.bad:
        print(f"{len(train_set.bad)} training sample(s) skipped as unreadable or invalid", file=sys.stderr)
    best = out / cfg.weights_name
    if any(t != "mask" for t in tasks) and best.is_file() and trainer.is_main:
        calibrate_card(best, spec, val_set)
    print(f"best score {trainer.best} -> {best} ({time.time() - t0:.0f} s)")
    return 0


def calibrate_card(weights: Path, spec, val_set) -> dict:
    """Fit each image head's temperature on the validation split with the best weights; write it (and the
    NLL / ECE before and after) into the card, the reliability diagrams beside the weights."""
    from polyhead.apps.medical.calibrate import calibrate_heads, collect_logits
    from polyhead.io.writers import write_json
    from polyhead.weights import card_path, load_card, load_model

    model, _ = load_model(weights)
    model.eval()
    _, logits = collect_logits(model, val_set, spec)
    report = calibrate_heads(logits, plots=weights.parent, prefix=f"{weights.stem}_reliability")
    card = load_card(weights)
    card["calibration"] = {
        "method": "temperature scaling: one T per head, LBFGS on the NLL of the validation logits; p = softmax(z / T)",
        "split": "val",
        **{h: {k: v for k, v in r.items() if k != "fitted_here"} for h, r in report.items()},
    }
    write_json(card_path(weights), card)
    for h, r in report.items():
        print(f"calibrated {h}: T={r['temperature']:.3f}, ECE {r['ece_before']:.4f} -> {r['ece_after']:.4f}, "
              f"NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f} ({r['n']} val images)")  # fmt: skip
    return report
