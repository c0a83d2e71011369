"""``polyhead floorplan train``: the floor-plan model on a dataset YAML through the shared Trainer."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from polyhead.apps.floorplan.data import FloorplanDataset, list_items, load_spec
from polyhead.apps.floorplan.evaluate import evaluate
from polyhead.apps.floorplan.model import (
    BOUNDARY_CLASSES,
    INPUT_SIZE,
    ROOM_CLASSES,
    build_floorplan_model,
    frequency_weights,
)
from polyhead.preprocess import check_input_size
from polyhead.train import Trainer, config_from_args
from polyhead.train.finetune import fine_tune_overrides, initialise

DATA_TERMS = (
    "R3D annotations released with 'Deep Floor Plan Recognition Using a Multi-Task Network with "
    "Room-Boundary-Guided Attention' (Zeng et al., ICCV 2019; GPL-3.0 repo); plans from Rent3D, academic use"
)


def train(args: argparse.Namespace) -> int:
    """Train; best weights (by ``score``: mean of the two class-average IoUs) go to ``<out>/best.safetensors``."""
    t0 = time.time()
    spec = load_spec(args.data)
    imgsz = check_input_size(tuple(args.imgsz or INPUT_SIZE))
    train_items, val_items = list_items(spec, "train"), list_items(spec, "val")
    train_set = FloorplanDataset(train_items, imgsz=imgsz, augment=True)
    cb, cr = train_set.class_counts()
    wb, wr = frequency_weights(cb).tolist(), frequency_weights(cr).tolist()
    model = build_floorplan_model(args.encoder, boundary_weights=wb, room_weights=wr)
    # the class weights are this dataset's own: fine-tuning keeps them, not the file's
    keep = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(("boundary_weights", "room_weights"))}
    init = initialise(model, args)
    model.load_state_dict(keep, strict=False)
    train_set.norm = model.normalisation
    val_set = FloorplanDataset(val_items, imgsz=imgsz, norm=model.normalisation)
    out = Path(args.out or "runs/train/floorplan")
    card = {
        "app": "floorplan",
        "boundary_classes": BOUNDARY_CLASSES,
        "room_classes": ROOM_CLASSES,
        "input_size": list(imgsz),
        "normalisation": {**model.config["normalisation"], "scale": "1/255", "letterbox_pad": 255},
        **init,
        "tasks": {"floorplan": "channels 0-2 boundary logits, 3-9 room-type logits"},
        "training_command": "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "data": {
            "yaml": str(args.data),
            "format": spec.layout,
            "root": str(spec.root),
            "split": f"own seeded split: random.Random({spec.seed}).sample(sorted names, {spec.val_count}) -> val",
            "train_plans": len(train_items),
            "val_plans": len(val_items),
            "val_names": [i.name for i in val_items],
            "label_mapping": "R3D 'not used' room colours (224,224,224) and (224,224,128) -> background",
            "pixel_counts": {"boundary": cb.tolist(), "room": cr.tolist()},
            "terms": DATA_TERMS if spec.layout == "r3d" else "see the dataset's own licence",
        },
        "metric_definitions": "DeepFloorplan metrics over all val pixels inside the plan (padding excluded): "
        "*_acc overall pixel accuracy, *_class_acc mean per-class accuracy, *_miou class-average IoU "
        "(background included); acc/<class> and iou/<class> per class; score = (boundary_miou + room_miou) / 2",
    }
    # short CPU runs (~20 steps/epoch): EMA over the last ~2-3 epochs, a short warm-up
    cfg = config_from_args(args, out, card, ema_decay=0.98, warmup_iters=40, **fine_tune_overrides(args, init))
    trainer = Trainer(model, train_set, lambda m: evaluate(m, val_set), cfg)
    trainer.fit()
    if train_set.bad:
        print(f"{len(train_set.bad)} training plan(s) skipped as unreadable: {sorted(train_set.bad)}", file=sys.stderr)
    print(f"best score {trainer.best} -> {out / 'best.safetensors'} (wall time {time.time() - t0:.0f} s)")
    return 0
