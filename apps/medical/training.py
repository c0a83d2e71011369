"""``polyhead medical train``: the medical model on a dataset YAML through the shared Trainer."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from polyhead.apps.medical.data import MedicalDataset, load_spec
from polyhead.apps.medical.evaluate import evaluate
from polyhead.apps.medical.model import build_medical_model
from polyhead.errors import InputError
from polyhead.train import Trainer, config_from_args
from polyhead.train.finetune import fine_tune_overrides, initialise

TASKS = ("mask", "diagnosis")


def build_card(args: argparse.Namespace, spec, train_set, val_set, tasks: list[str]) -> dict:
    """The model card fields known before training (metrics are added by the Trainer)."""
    return {
        "app": "medical",
        "classes": spec.classes,
        "diagnosis_classes": spec.diagnosis if "diagnosis" in tasks else [],
        "tasks": tasks,
        "input": {"mode": spec.input_mode, "size": list(spec.input_size)},
        "input_size": list(spec.input_size),
        "postprocess": {"keep_largest": spec.keep_largest},
        "training_command": "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "data": {
            "yaml": str(args.data),
            "root": str(spec.root),
            "layout": spec.layout,
            "split": spec.split,
            "train_items": len(train_set.items),
            "val_items": len(val_set.items),
            "val_keys": sorted({it.key.split(":")[0] for it in val_set.items}),
        },
        "metric_definitions": "dice/iou: mean over val images of the foreground-class Dice/IoU at original "
        "resolution (pixels outside the field of view ignored); *_pooled: over all val pixels; hd95: symmetric "
        "95th-percentile surface distance in pixels; sensitivity/specificity pooled; diagnosis_accuracy, "
        "balanced accuracy (mean per-class recall), macro one-vs-rest AUC; score: mean of dice and "
        "diagnosis balanced accuracy",
    }


def train(args: argparse.Namespace) -> int:
    """Train; best weights (by ``score``) go to ``<out>/best.safetensors`` with a model card."""
    spec = load_spec(args.data)
    tasks = list(args.tasks or TASKS)
    if not spec.diagnosis and "diagnosis" in tasks:
        tasks.remove("diagnosis")
    if not tasks:
        raise InputError(args.data, "nothing to train: the dataset has no diagnosis labels and --tasks excludes mask")
    if args.imgsz:
        spec.input_size = tuple(args.imgsz)
    model = build_medical_model(
        args.encoder,
        mask_classes=len(spec.classes) if "mask" in tasks else 0,
        diagnosis_classes=len(spec.diagnosis) if "diagnosis" in tasks else 0,
        neck_channels=args.neck_channels,
        mask_stride=args.mask_stride,
    )
    init = initialise(model, args)
    norm = model.normalisation
    train_set = MedicalDataset(spec, "train", augment=True, patches_per_image=args.patches_per_image, norm=norm)
    val_set = MedicalDataset(spec, "val", norm=norm)
    out = Path(args.out or "runs/train/medical")
    card = {**build_card(args, spec, train_set, val_set, tasks), **init}
    card["normalisation"] = {**model.config["normalisation"], "scale": "1/255"}
    cfg = config_from_args(args, out, card, **fine_tune_overrides(args, init))
    t0 = time.time()
    trainer = Trainer(
        model, train_set, lambda m: evaluate(m, val_set, spec, hd95=False, keep_largest=spec.keep_largest), cfg
    )
    trainer.fit()
    if train_set.bad:
        print(f"{len(train_set.bad)} training sample(s) skipped as unreadable or invalid", file=sys.stderr)
    print(f"best score {trainer.best} -> {out / 'best.safetensors'} ({time.time() - t0:.0f} s)")
    return 0
