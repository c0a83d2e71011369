"""``polyhead floorplan train``: the floor-plan model on a dataset YAML through the shared Trainer."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from apps.floorplan.data import FloorplanDataset, list_items, load_spec
from apps.floorplan.evaluate import evaluate
from apps.floorplan.model import BOUNDARY_CLASSES, INPUT_SIZE, ROOM_CLASSES, build_floorplan_model, frequency_weights
from shared.preprocess import IMAGENET_MEAN, IMAGENET_STD, check_input_size
from shared.train import Trainer, config_from_args

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
    val_set = FloorplanDataset(val_items, imgsz=imgsz)
    cb, cr = train_set.class_counts()
    wb, wr = frequency_weights(cb).tolist(), frequency_weights(cr).tolist()
    model = build_floorplan_model(args.encoder, boundary_weights=wb, room_weights=wr)
    if args.weights:
        from shared.weights import load_state

        state = load_state(args.weights, args.trust_pickle)
        state = {k: v for k, v in state.items() if not k.endswith(("boundary_weights", "room_weights"))}
        model.load_state_dict(state, strict=False)
    out = Path(args.out or "runs/train/floorplan")
    card = {
        "app": "floorplan",
        "boundary_classes": BOUNDARY_CLASSES,
        "room_classes": ROOM_CLASSES,
        "input_size": list(imgsz),
        "normalisation": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "scale": "1/255", "letterbox_pad": 255},
        "tasks": {"floorplan": "channels 0-2 boundary logits, 3-9 room-type logits"},
        "training_command": "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "initialised_from": str(args.weights) if args.weights else "random (pretrained=False)",
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
    cfg = config_from_args(args, out, card, ema_decay=0.98, warmup_iters=40)
    trainer = Trainer(model, train_set, lambda m: evaluate(m, val_set), cfg)
    trainer.fit()
    if train_set.bad:
        print(f"{len(train_set.bad)} training plan(s) skipped as unreadable: {sorted(train_set.bad)}", file=sys.stderr)
    print(f"best score {trainer.best} -> {out / 'best.safetensors'} (wall time {time.time() - t0:.0f} s)")
    return 0
