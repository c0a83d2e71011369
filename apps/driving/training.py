"""``polyhead driving train``: the driving model on a dataset YAML through the shared Trainer."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from polyhead.apps.driving.data import DrivingDataset, load_spec
from polyhead.apps.driving.evaluate import evaluate
from polyhead.apps.driving.model import INPUT_SIZE, build_driving_model
from polyhead.preprocess import check_input_size
from polyhead.train import Trainer, config_from_args
from polyhead.train.finetune import fine_tune_overrides, initialise

#: origins and terms of the team's driving data, for the shipped card (``polyhead driving ship``)
DATA_TERMS = {
    "sources": {
        "CamVid (SegNet 11-class, 367 train / 101 val frames)": "boxes (Car, Pedestrian, Bicyclist components) "
        "and drivable area (Road); research use",
        "KITTI object sample (6 frames, label_2)": "2D boxes (Car/Van/Truck, Pedestrian, Cyclist; DontCare "
        "painted grey); CC BY-NC-SA 3.0",
        "TuSimple lane sample (lanenet repo, Apache-2.0)": "lane masks; 0000-0003 train, 0004-0005 held out",
        "Udacity lane-lines highway clip and stills (MIT)": "classical lane pseudo-labels, split by time",
    },
    "terms": "Weights trained on CamVid (research use), KITTI (CC BY-NC-SA 3.0: non-commercial), the TuSimple "
    "sample (Apache-2.0) and the Udacity lane-lines clip (MIT): non-commercial research use. No data file is in "
    "this repository.",
}


def train(args: argparse.Namespace) -> int:
    """Train; best weights (by the combined score) go to ``<out>/best.safetensors`` with a model card."""
    spec = load_spec(args.data)
    imgsz = check_input_size(tuple(args.imgsz or INPUT_SIZE))
    model = build_driving_model(args.encoder, num_classes=len(spec.names))
    init = initialise(model, args)
    train_set = DrivingDataset(spec, "train", imgsz=imgsz, augment=True, norm=model.normalisation)
    val_set = DrivingDataset(spec, "val", imgsz=imgsz, norm=model.normalisation)
    out = Path(args.out or "runs/train/driving")
    card = {
        "app": "driving",
        "classes": spec.names,
        "input_size": list(imgsz),
        "normalisation": {**model.config["normalisation"], "scale": "1/255", "letterbox_pad": 114},
        **init,
        "tasks": {"det": "boxes xyxy + class", "drivable": "background/drivable", "lane": "background/lane"},
        "training_command": "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "data": {
            "yaml": str(args.data),
            "root": str(spec.root),
            "train_images": len(train_set),
            "val_images": len(val_set),
        },
        "metric_definitions": "det_map50: mAP@0.5; det_recall: recall at max-F1 conf; da_miou: mean IoU of "
        "background+drivable; lane_acc: lane-pixel recall; lane_iou: IoU of the lane class "
        "(YOLOP's definitions); score: 0.4 det_map50 + 0.3 da_miou + 0.3 lane_iou",
    }
    cfg = config_from_args(args, out, card, **fine_tune_overrides(args, init))
    trainer = Trainer(model, train_set, lambda m: evaluate(m, val_set), cfg)
    trainer.fit()
    if train_set.bad:
        print(f"{len(train_set.bad)} training sample(s) skipped as unreadable or invalid", file=sys.stderr)
    print(f"best score {trainer.best} -> {out / 'best.safetensors'}")
    return 0
