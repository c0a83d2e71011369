"""``polyhead face train --stage single``: the single-shot detector on the shared Trainer.

Training scenes come from the dataset YAML (``datasets/face-masks.yaml``): the VOC crowd photos of the
``train`` part (the crowd hold-out list is excluded by the YAML, the seeded ``holdout`` share is the val),
dlib's training photos and composites of the landmark crops on the face-free backgrounds. The checkpoint
score is the WIDER-style AP50 on the VOC val part (faces >= 20 px, :func:`polyhead.apps.face.crowd.evaluate_crowd`);
the crowd hold-out itself is never read here. The best weights go into the face weights file under
``single.*`` with the card's ``single_model`` (config) and ``single_shot`` (inference settings).

>>> main(["face", "train", "--data", "datasets/face-masks.yaml", "--stage", "single"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from polyhead.apps.face.crowd import evaluate_crowd
from polyhead.apps.face.single_shot import SingleShotConfig, SingleShotDetector, build_single_shot_model
from polyhead.apps.face.single_shot_data import SingleShotScenes

TRAIN_SIZE = 416


def evaluate_single_shot(model, items: list, config: SingleShotConfig, norm) -> dict[str, float]:
    """AP50 / recall / false positives per image on ``[(path, boxes)]`` photos (WIDER-style, >= min size)."""
    from polyhead.io import read_image

    det = SingleShotDetector(model, config, norm=norm)
    was_training = model.training
    dets = [det.detect([read_image(p)])[0] for p, _ in items]
    model.train(was_training)
    m = evaluate_crowd(dets, [b for _, b in items], min_face=config.min_size)["all"]
    ap = m["ap50"] if m["ap50"] is not None else 0.0
    return {"score": ap, "ap50": ap, "recall": m["recall"] or 0.0, "fp_per_image": m["fp_per_image"]}


def train_single_shot(args: argparse.Namespace) -> int:
    """Train; the best weights (by val AP50) are written into the face weights file ``--out``."""
    from polyhead.apps.face.model import read_card, save_face_weights
    from polyhead.apps.face.samples import FaceSources, read_dlib_xml
    from polyhead.apps.face.training import DEFAULT_OUT, command_line
    from polyhead.train import Trainer, config_from_args
    from polyhead.train.finetune import fine_tune_overrides, initialise
    from polyhead.weights import load_state

    t_start = time.time()
    src = FaceSources.from_yaml(args.data)
    out = Path(args.out or DEFAULT_OUT)
    size = int(args.imgsz[0]) if args.imgsz else TRAIN_SIZE
    photos = list(src.voc_items("train"))
    for xml in src.box_xml:
        photos += read_dlib_xml(xml)
    val_items = src.voc_items("val")
    landmarks = src.landmark_items("train")
    if args.scale < 1:
        photos = photos[: max(4, int(len(photos) * args.scale))]
        val_items = val_items[: max(2, int(len(val_items) * args.scale))]
    composites = int(len(photos) * args.composites)
    model = build_single_shot_model(args.encoder, pretrained=False)
    init = initialise(model, argparse.Namespace(no_pretrained=args.no_pretrained, encoder_weights=args.encoder_weights))
    config = SingleShotConfig()
    train_set = SingleShotScenes(
        photos, landmarks, src.background_files(), size=size, long_side=config.long_side,
        composites=composites, norm=model.normalisation, seed=args.seed,
    )  # fmt: skip
    print(
        f"single-shot: {len(photos)} photos + {train_set.composites} composites per epoch at {size}x{size}, "
        f"{len(val_items)} val photos"
    )
    run_dir = out.parent / "single_shot"
    cfg = config_from_args(args, run_dir, {"app": "face-single-shot", **init}, **fine_tune_overrides(args, init))
    norm = model.normalisation
    trainer = Trainer(model, train_set, lambda m: evaluate_single_shot(m, val_items, config, norm), cfg)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    trainer.fit()
    model.load_state_dict(load_state(run_dir / "best.safetensors"))
    metrics = evaluate_single_shot(model.eval(), val_items, config, norm)
    card = read_card(out)
    card["single_shot"] = asdict(config)
    card.setdefault("training", {})["single_shot"] = {
        "command": command_line(),
        "wall_time_s": round(time.time() - t_start, 1),
        "epochs": args.epochs,
        "train_size": size,
        "photos": len(photos),
        "composites_per_epoch": train_set.composites,
        "val_photos": len(val_items),
        **init,
        "val_metrics": metrics,
        "history": trainer.history,
    }
    save_face_weights(out, {"single": model}, card)
    print(f"single-shot: {metrics} -> {out}")
    return 0
