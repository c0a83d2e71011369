"""``polyhead face ship``: copy trained face weights into place with a complete model card.

The card gathers the per-part training records (commands, wall times, window counts), the detector
settings, the val and bench figures and the data origins and terms.

>>> main(["face", "ship", "--weights", "runs/train/face/face.safetensors"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from polyhead.errors import InputError

DATA_TERMS = {
    "landmarks5 (lfw_5590 part)": "CUHK facial-point set (Sun, Wang, Tang, CVPR 2013), 5 points on LFW-based crops; "
    "research use only",
    "landmarks5 (net_7876 part)": "same set; NOT used: many of its labels are misplaced (points above the face)",
    "utkface": "UTKFace (Zhang, Song, Qi, CVPR 2017): aligned chips with age/gender/race; non-commercial research only",
    "dlib_examples": "dlib example photos (PASCAL VOC images) with dlib's face boxes; Boost license; training.xml used "
    "for training windows, testing.xml only for val",
    "backgrounds": "face-free scenes: CamVid (research use), R3D floor plans (academic use), PH2 / DRIVE / ISBI 2012 / "
    "Kvasir-SEG medical images (research use)",
    "consequence": "the weights inherit the most restrictive terms: non-commercial research use only",
}


def add_ship_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, help="trained face weights (.safetensors with its card)")
    p.add_argument("--val", help="JSON written by 'polyhead face val --json'")
    p.add_argument("--bench", help="JSON written by 'polyhead bench face --json'")
    p.add_argument("--thresholds", type=float, nargs=3, default=[0.6, 0.7, 0.9], metavar=("P", "R", "O"))
    p.add_argument("--min-size", type=float, default=20.0)
    p.add_argument("--out", default="weights/face.safetensors")


def run_ship(args: argparse.Namespace) -> int:
    from polyhead.apps.face.model import load_face_weights
    from polyhead.io.writers import write_json

    src = Path(args.weights)
    parts, card = load_face_weights(src)
    missing = {"pnet", "rnet", "onet", "attr"} - set(parts)
    if missing:
        raise InputError(src, f"weights lack {sorted(missing)}")

    def read(p):
        if not p:
            return None
        try:
            return json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(p, f"not readable JSON ({e})") from None

    card = {
        "app": "face",
        **card,
        "parts": {
            "pnet": "P-Net, 12x12 windows, fully convolutional (stride 2): face prob, box offsets, 5 points",
            "rnet": "R-Net on 24x24 crops",
            "onet": "O-Net on 48x48 crops: final score, box, 5 points",
            "attr": "MultiTaskModel (shared encoder + FPN-PAN neck) on aligned 112x112 crops: age bins + gender",
        },
        "detector": {
            "min_size": args.min_size,
            "factor": 0.709,
            "thresholds": list(args.thresholds),
            "nms": [0.5, 0.7, 0.4],
            "nms_min": 0.7,
        },
        "normalisation": {
            "cascade": "(rgb - 127.5) / 128",
            "attr": {**parts["attr"].config.get("normalisation", {}), "scale": "1/255 RGB"},
        },
        "alignment": "similarity (Umeyama) from the 5 points onto ArcFace's 112x112 reference points",
        "outputs": "boxes xyxy, scores, points (left eye, right eye, nose, left/right mouth corner) in original "
        "pixels; age in years (expected value over bins), gender male/female with p_female",
        "data": DATA_TERMS,
        "recipe": "docs/face.md",
        "val": read(args.val),
        "bench": read(args.bench),
        "ship_command": "polyhead face ship "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k in ("weights", "val", "bench", "thresholds", "min_size", "out") and v
        ),
    }
    out = Path(args.out)
    if out.resolve() != src.resolve():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    write_json(out.with_suffix(".json"), card)
    print(f"shipped {src} -> {out} (+ {out.with_suffix('.json').name})")
    return 0
