"""``polyhead driving audit``: the checks a driving model gets before it ships, on frames it never trained on.

- lanes on the held-out TuSimple frames (0004, 0005 of the sample) at their original 1280x720: lane IoU
  and recall against ``gt_binary_image``;
- where lane pixels land on CamVid val frames (no lane labels there): the share of the frame predicted as
  lane and the share of those pixels on Road or Pavement (SegNet ids 3 and 4);
- detection on the unlabelled BDD100K night / day frames: boxes per class, with the overlays written for
  a person to look at.

>>> main(["--weights", "runs/train/driving/best.safetensors", "--out", "runs/audit"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from polyhead.errors import InputError

TUSIMPLE_HELD_OUT = ("0004", "0005")
ROAD, PAVEMENT = 3, 4


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="weights to audit (default: the shipped weights)")
    p.add_argument("--data-root", default="../shared/data/driving", help="the team's driving data folder")
    p.add_argument("--out", default="runs/audit/driving", help="folder for the BDD100K overlays and audit.json")
    p.add_argument("--conf", type=float, help="box threshold (default: the card's)")
    p.add_argument("--camvid-frames", type=int, default=101, help="CamVid val frames to check (all 101)")


def _iou(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    inter = float((pred & gt).sum())
    union = float((pred | gt).sum())
    return (inter / union if union else 1.0), (inter / gt.sum() if gt.sum() else 1.0)


def tusimple_lanes(app, root: Path) -> dict:
    """Lane IoU / recall over the held-out TuSimple sample frames (pixels pooled over frames)."""
    folder = root / "tusimple_sample" / "training_data_example"
    inter = union = gt_total = 0.0
    for stem in TUSIMPLE_HELD_OUT:
        img = cv2.cvtColor(cv2.imread(str(folder / "image" / f"{stem}.png")), cv2.COLOR_BGR2RGB)
        gt = cv2.imread(str(folder / "gt_binary_image" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        pred = app.predict_image(img).lane_mask
        inter += float((pred & gt).sum())
        union += float((pred | gt).sum())
        gt_total += float(gt.sum())
    return {
        "frames": len(TUSIMPLE_HELD_OUT),
        "lane_iou": inter / union if union else 1.0,
        "lane_recall": inter / gt_total if gt_total else 1.0,
    }


def camvid_lane_placement(app, root: Path, frames: int) -> dict:
    """Share of the frame predicted as lane, and share of those pixels on Road / Pavement, on CamVid val."""
    images = sorted((root / "camvid" / "val" / "images").iterdir())[:frames]
    lane_px = frame_px = on_road = 0
    for path in images:
        mask = cv2.imread(str(root / "camvid" / "val" / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError(path, "CamVid val image has no mask")
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        lane = app.predict_image(img).lane_mask
        lane_px += int(lane.sum())
        frame_px += lane.size
        on_road += int((lane & np.isin(mask, (ROAD, PAVEMENT))).sum())
    return {
        "frames": len(images),
        "lane_px_share": lane_px / max(frame_px, 1),
        "lane_on_road_or_pavement_share": on_road / lane_px if lane_px else 1.0,
    }


def bdd_frames(app, root: Path, out: Path) -> dict:
    """Boxes per class on the unlabelled BDD100K frames; overlays written to ``out/bdd100k``."""
    from polyhead.io.writers import write_image

    per_frame = {}
    for path in sorted((root / "bdd100k_frames").iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        r = app.predict_image(img)
        counts: dict[str, int] = {}
        for c in r.classes:
            counts[r.names[int(c)]] = counts.get(r.names[int(c)], 0) + 1
        per_frame[path.name] = {"boxes": counts, "mean_brightness": round(float(img.mean()), 1)}
        write_image(out / "bdd100k" / f"{path.stem}.jpg", r.plot(img))
    return per_frame


def run_audit(args: argparse.Namespace) -> int:
    from polyhead.apps.driving.app import DrivingApp
    from polyhead.io.writers import write_json

    root = Path(args.data_root)
    if not root.is_dir():
        raise InputError(root, "driving data folder not found (--data-root)")
    app = DrivingApp().load(args.weights, conf=args.conf)
    out = Path(args.out)
    report = {
        "weights": str(args.weights or app.default_weights),
        "conf": app.conf,
        "tusimple_held_out": tusimple_lanes(app, root),
        "camvid_val_lanes": camvid_lane_placement(app, root, args.camvid_frames),
        "bdd100k_frames": bdd_frames(app, root, out),
    }
    write_json(out / "audit.json", report)
    print(json.dumps({k: v for k, v in report.items() if k != "bdd100k_frames"}, indent=2))
    print(f"BDD100K overlays: {out / 'bdd100k'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="polyhead driving audit")
    add_audit_arguments(p)
    return run_audit(p.parse_args(argv))
