"""``polyhead face ship``: copy trained face weights into place with a complete model card.

The card gathers the per-part training records (commands, wall times, window counts), the detector
settings, the val and bench figures and the data origins and terms.

>>> main(["face", "ship", "--weights", "runs/train/face/face.safetensors"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument(
        "--thresholds",
        type=float,
        nargs=3,
        default=[0.6, 0.7, 0.7],
        metavar=("P", "R", "O"),
        help="face probability thresholds of P-, R- and O-Net (default 0.6 0.7 0.7, the original MTCNN's)",
    )
    p.add_argument(
        "--no-final-flip",
        dest="final_flip",
        action="store_false",
        help="O-Net sees each crop once (default: also mirrored, scores, boxes and points averaged)",
    )
    p.add_argument("--min-size", type=float, default=20.0)
    p.add_argument(
        "--default-detector",
        choices=("cascade", "single"),
        default="cascade",
        help="the detector predict uses without --detector (single needs a single-shot part in the weights)",
    )
    p.add_argument("--out", default="weights/face.safetensors")


def run_ship(args: argparse.Namespace) -> int:
    from polyhead.apps.face.model import load_face_weights
    from polyhead.io.writers import write_json

    src = Path(args.weights)
    parts, card = load_face_weights(src)
    missing = {"pnet", "rnet", "onet", "attr"} - set(parts)
    if missing:
        raise InputError(src, f"weights lack {sorted(missing)}")
    if args.default_detector == "single" and "single" not in parts:
        raise InputError(src, "--default-detector single: the weights have no single-shot detector")

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
            "attr": attr_description(parts["attr"].config),
            **(
                {
                    "single": "single-shot detector: MultiTaskModel (shared encoder + FPN-PAN neck, strides 8-32) "
                    "with the core pose head: box, face score and 5 points per anchor, one pass per image"
                }
                if "single" in parts
                else {}
            ),
        },
        "default_detector": args.default_detector,
        "detector": {
            "min_size": args.min_size,
            "factor": 0.709,
            "thresholds": list(args.thresholds),
            "nms": [0.5, 0.7, 0.4],
            "nms_min": 0.7,
            "final_flip": bool(args.final_flip),
        },
        "normalisation": {
            "cascade": "(rgb - 127.5) / 128",
            "attr": {**parts["attr"].config.get("normalisation", {}), "scale": "1/255 RGB"},
        },
        "alignment": "similarity (Umeyama) from the 5 points onto ArcFace's 112x112 reference points; the "
        "attribute model reads the crop its config names (attr_model.crop: size, zoom-out about the centre)",
        "outputs": "boxes xyxy, scores, points (left eye, right eye, nose, left/right mouth corner) in original "
        "pixels; age in years (expected value over bins), gender male/female with p_female",
        "data": DATA_TERMS,
        "recipe": "docs/face.md",
        "val": read(args.val),
        "bench": read(args.bench),
        "storage": "the multi-task parts (attr, single) as float16 tensors, the cascade nets as float32; "
        "loading casts to float32",
        "ship_command": "polyhead face ship "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k in ("weights", "val", "bench", "thresholds", "min_size", "default_detector", "out") and v
        )
        + ("" if args.final_flip else " --no-final-flip"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_half_precision(src, out)
    write_json(out.with_suffix(".json"), card)
    print(f"shipped {src} -> {out} (+ {out.with_suffix('.json').name})")
    return 0


def attr_description(config: dict) -> str:
    """One line on the attribute model of a card's ``attr_model`` config.

    >>> attr_description({"neck": "last", "heads": {"age": {"type": "distribution", "values": [0, 1]}}})
    'MultiTaskModel (shared encoder + last-level neck) on aligned 112x112 crops: age distribution over 2 bins'
    >>> attr_description({"neck": "last", "heads": {"gender": {}}, "crop": {"size": 128, "margin": 1.1}})
    'MultiTaskModel (shared encoder + last-level neck) on aligned 128x128 crops, zoomed out 1.1x: gender'
    """
    neck = {"last": "last-level neck", "fpnpan": "FPN-PAN neck"}.get(config.get("neck", "fpnpan"), config.get("neck"))
    heads = config.get("heads", {})
    what = []
    if "age" in heads:
        age = heads["age"]
        what.append(f"age distribution over {len(age['values'])} bins" if "values" in age else "age bins")
    if "gender" in heads:
        what.append("gender")
    crop = config.get("crop") or {}
    size, margin = int(crop.get("size", 112)), float(crop.get("margin", 1.0))
    zoom = f", zoomed out {margin:g}x" if margin != 1.0 else ""
    return f"MultiTaskModel (shared encoder + {neck}) on aligned {size}x{size} crops{zoom}: {' + '.join(what)}"


def write_half_precision(src: Path, out: Path) -> Path:
    """Copy a face weights file with the multi-task parts' float tensors as float16 (half the bytes; the
    attribute and single-shot figures are measured on the shipped file), atomically; ``src`` may be ``out``."""
    import torch
    from safetensors.torch import load_file, save_file

    from polyhead.apps.face.model import MODEL_PARTS
    from polyhead.io.writers import atomic_path

    state = load_file(str(src))
    for k, v in state.items():
        if k.split(".", 1)[0] in MODEL_PARTS and v.is_floating_point():
            state[k] = v.to(torch.float16)
    with atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "polyhead": "1", "app": "face"})
    return out


def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="weights/face.safetensors", help="face weights whose card gets the factor")
    p.add_argument("--data", default="datasets/face.yaml", help="face dataset YAML: its UTKFace val split is used")
    p.add_argument("--target", type=float, default=0.683, help="share of val age errors within one spread")
    p.add_argument("--dry-run", action="store_true", help="print the fit, leave the card as it is")


def calibrate_card(weights: str | Path, data: str | Path, target: float = 0.683, write: bool = True) -> dict:
    """Fit ``age_spread_scale`` on the attribute val split of ``data`` (the held-out UTKFace chips that
    ``polyhead face val`` and ``--stage attributes`` use, aligned by the weights' own cascade) and write it,
    with the coverage figures under ``age_spread_calibration``, into the card beside ``weights``.

    >>> calibrate_card("weights/face.safetensors", "datasets/face.yaml")["age_spread_scale"]  # doctest: +SKIP
    """
    import time

    import torch

    from polyhead.apps.face.attributes import align_detector, aligned_utk, calibrate_age_spread
    from polyhead.apps.face.model import attr_crop, load_face_weights
    from polyhead.apps.face.samples import FaceSources
    from polyhead.io.writers import write_json

    t0 = time.time()
    weights = Path(weights)
    if not 0 < target < 1:
        raise InputError(None, f"--target must be a share in (0, 1), got {target}")
    parts, card = load_face_weights(weights)
    if "attr" not in parts:
        raise InputError(weights, "weights have no attribute model to calibrate")
    src = FaceSources.from_yaml(data)
    items = src.utk_items("val")
    if not items:
        raise InputError(data, "no UTKFace val chips (the 'utkface' folder is missing or empty)")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    crops, age, _, found = aligned_utk(items, align_detector(parts), attr_crop(parts["attr"]), progress=False)
    try:
        fit = calibrate_age_spread(parts["attr"], crops, age, target)
    except ValueError as e:
        raise InputError(weights, str(e)) from None
    fit = {
        **fit,
        "data": str(data),
        "split": "UTKFace val (FaceSources.utk_items('val'): the seeded hold-out share), aligned by the cascade",
        "aligned_by_cascade": found,
        "command": f"polyhead face calibrate --weights {weights} --data {data} --target {target}",
        "wall_time_s": round(time.time() - t0, 1),
    }
    if write:
        card = {**card, "age_spread_scale": fit["age_spread_scale"], "age_spread_calibration": fit}
        write_json(weights.with_suffix(".json"), card)
    return fit


def run_calibrate(args: argparse.Namespace) -> int:
    """``polyhead face calibrate [--weights W] [--data datasets/face.yaml] [--target 0.683] [--dry-run]``.

    >>> main(["face", "calibrate", "--weights", "runs/train/face8/face.safetensors"])  # doctest: +SKIP
    """
    fit = calibrate_card(args.weights, args.data, args.target, write=not args.dry_run)
    print(json.dumps(fit, indent=1))
    if not args.dry_run:
        print(f"age_spread_scale {fit['age_spread_scale']} -> {Path(args.weights).with_suffix('.json')}")
    return 0
