"""``polyhead face train --stage pnet|rnet|onet|attributes``.

Cascade stages train on cached windows (:mod:`polyhead.apps.face.samples`) with the joint MTCNN loss and online
hard-sample mining; the attribute model trains through the shared Trainer on aligned UTKFace crops.
Each run writes its part into one face weights file (``--out``, default runs/train/face/face.safetensors)
and records its figures, command and wall time in the card beside it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from polyhead.apps.face.cascade import STAGES, build_net, cascade_loss
from polyhead.apps.face.model import read_card, save_face_weights
from polyhead.apps.face.samples import FLIP_ORDER, FaceSources, Samples, cached
from polyhead.encoders import DEFAULT_ENCODER
from polyhead.errors import InputError

DEFAULT_OUT = Path("runs/train/face/face.safetensors")


def command_line() -> str:
    return "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (n, s, s, 3) -> normalised float (n, 3, s, s)."""
    t = torch.as_tensor(images)
    return (t.permute(0, 3, 1, 2).float() - 127.5) / 128.0


def augment(x: torch.Tensor, box: torch.Tensor, lmk: torch.Tensor, g: torch.Generator):
    """Horizontal flips (targets mirrored, left/right points swapped), brightness/contrast, some greyscale."""
    n = len(x)
    flip = torch.rand(n, generator=g) < 0.5
    if flip.any():
        x[flip] = x[flip].flip(-1)
        b = box[flip]
        box[flip] = torch.stack([-b[:, 2], b[:, 1], -b[:, 0], b[:, 3]], 1)
        lx, ly = lmk[flip, :5], lmk[flip, 5:]
        lmk[flip] = torch.cat([(1 - lx)[:, FLIP_ORDER], ly[:, FLIP_ORDER]], 1)
    c = 1 + (torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.5
    b = (torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.4
    x = x * c + b
    grey = torch.rand(n, generator=g) < 0.1
    if grey.any():
        x[grey] = x[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    return x.clamp(-1, 1), box, lmk


@torch.inference_mode()
def evaluate_windows(net: torch.nn.Module, data: Samples, threshold: float = 0.5, batch: int = 1024) -> dict:
    """Window-level figures: face recall, non-face false-positive rate, box and landmark errors."""
    net.eval()
    probs, boxes, lmks = [], [], []
    for i in range(0, len(data), batch):
        out = net(to_input(data.images[i : i + batch]))
        probs.append(out["cls"].flatten(1).softmax(1)[:, 1])
        boxes.append(out["box"].flatten(1))
        lmks.append(out["lmk"].flatten(1))
    p, b, lm = torch.cat(probs).numpy(), torch.cat(boxes).numpy(), torch.cat(lmks).numpy()
    face, neg, part = data.label == 1, data.label == 0, data.label == -1
    has = np.isfinite(data.lmk).all(1)
    boxed = face | part
    out = {
        "face_recall": float((p[face] > threshold).mean()) if face.any() else 0.0,
        "non_face_fpr": float((p[neg] > threshold).mean()) if neg.any() else 0.0,
        "box_mae": float(np.abs(b[boxed] - data.box[boxed]).mean()) if boxed.any() else 0.0,
        "lmk_mae": float(np.abs(lm[has] - data.lmk[has]).mean()) if has.any() else 0.0,
    }
    out["score"] = out["face_recall"] - out["non_face_fpr"] - out["box_mae"] - out["lmk_mae"]
    return out


def train_stage(args: argparse.Namespace) -> int:
    stage = args.stage
    torch.manual_seed(args.seed)
    src = FaceSources.from_yaml(args.data)
    t_start = time.time()
    train = cached(stage, src, "train", scale=args.scale)
    val = cached(stage, src, "val", scale=args.scale)
    hard = {}
    if getattr(args, "mine", None):  # MTCNN bootstrapping: add what the earlier stages let through
        from polyhead.apps.face.mining import mined_cached

        mined_train = mined_cached(stage, src, args.mine, "train", scale=args.scale)
        mined_val = mined_cached(stage, src, args.mine, "val", scale=args.scale)
        hard = {"mined_with": str(args.mine), "train": mined_train.counts(), "val": mined_val.counts()}
        print(f"{stage}: mined {len(mined_train)} train / {len(mined_val)} val windows {mined_train.counts()}")
        train = Samples.concat([train, mined_train], train.images.shape[1])
        val = Samples.concat([val, mined_val], val.images.shape[1])
    t_data = time.time() - t_start
    print(f"{stage}: {len(train)} train windows {train.counts()}, {len(val)} val windows, data {t_data:.0f} s")
    net = build_net(stage)
    init = None
    if getattr(args, "weights", None):  # fine-tune: start from this stage of a face weights file
        from polyhead.apps.face.model import load_face_weights

        init = Path(args.weights)
        parts, _ = load_face_weights(init)
        if stage not in parts:
            raise InputError(init, f"weights lack the {stage} stage to start from")
        net.load_state_dict(parts[stage].state_dict())
        print(f"{stage}: starting from {init}")
    out = Path(args.out or DEFAULT_OUT)
    epochs, bs = args.epochs, args.batch
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = max(1, epochs * ((len(train) + bs - 1) // bs))
    limit = args.time_limit * 60 if args.time_limit else None

    def set_lr(step: int, elapsed: float) -> float:
        """Warm-up, then cosine decay over whichever runs out first: the steps or the time budget."""
        frac = max(step / steps, elapsed / limit if limit else 0.0)
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        return frac

    g = torch.Generator().manual_seed(args.seed)
    images = torch.from_numpy(train.images)
    label, box, lmk = (torch.from_numpy(a) for a in (train.label, train.box, train.lmk))
    best, best_state, history = None, None, []
    t0 = time.time()
    step, done = 0, False
    set_lr(0, 0.0)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(train), generator=g)
        sums, n = {"total": 0.0, "cls": 0.0, "box": 0.0, "lmk": 0.0}, 0
        for i in range(0, len(perm), bs):
            idx = perm[i : i + bs]
            x, bx, lm = augment(to_input(images[idx]), box[idx].clone(), lmk[idx].clone(), g)
            losses = cascade_loss(net(x), label[idx], bx, lm, stage)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            step += 1
            n += 1
            if set_lr(step, time.time() - t0) >= 1.0:
                done = True
                break
            for k in sums:
                sums[k] += float(losses[k].detach())
        metrics = evaluate_windows(net, val)
        row = {
            "epoch": epoch + 1,
            **{f"loss_{k}": v / max(n, 1) for k, v in sums.items()},
            **metrics,
            "time_s": round(time.time() - t0, 1),
        }
        history.append(row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        if best is None or metrics["score"] > best["score"]:
            best, best_state = metrics, {k: v.clone() for k, v in net.state_dict().items()}
        if done:
            print(f"step or time budget used up in epoch {epoch + 1}")
            break
    net.load_state_dict(best_state)
    card = read_card(out)
    stages = card.setdefault("training", {})
    # the run this one fine-tuned, kept as its lineage
    previous = read_card(init).get("training", {}).get(stage) if init else None
    stages[stage] = {
        "command": command_line(),
        "initialised_from": str(init) if init else None,
        "wall_time_s": round(time.time() - t_start, 1),
        "data_time_s": round(t_data, 1),
        "epochs_run": len(history),
        "train_windows": train.counts(),
        "hard_examples": hard or None,
        "val_windows": val.counts(),
        "val_window_metrics": best,
        "history": history,
        "previous": previous,
    }
    save_face_weights(out, {stage: net}, card)
    print(f"{stage}: best {best} -> {out}")
    return 0


def _smoothing(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stage", choices=[*STAGES, "attributes", "single"], required=True,
        help="which part to train (single: the single-shot detector, see docs/face.md)",
    )  # fmt: skip
    p.add_argument(
        "--composites", type=float, default=1.0,
        help="single: generated landmark scenes per epoch, as a multiple of the photos",
    )  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0, help="share of the generated windows to use (smoke runs)")
    p.add_argument("--time-limit", type=float, default=8.0, help="minutes of training before stopping (0: none)")
    p.add_argument(
        "--tasks", nargs="+", choices=["age", "gender"], default=["age", "gender"], help="attribute heads to train"
    )
    p.add_argument(
        "--mine",
        metavar="WEIGHTS",
        help="add hard windows mined by running this face weights file's cascade: for rnet/onet what its earlier "
        "stages pass on, for pnet the proposals of its own P-Net (false windows become negatives)",
    )
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="attribute encoder (see polyhead.encoders)")
    p.add_argument(
        "--crop-size", type=int, default=112, help="attributes: aligned crop side in pixels (multiple of 16)"
    )
    p.add_argument(
        "--crop-margin", type=float, default=1.0,
        help="attributes: zoom-out of the aligned crop about its centre (1: the ArcFace crop; more shows the hair)",
    )  # fmt: skip
    p.add_argument(
        "--label-smoothing", type=_smoothing, default=0.0,
        help="attributes: label smoothing of the gender head (0..1; 0.1 is the usual choice)",
    )  # fmt: skip
