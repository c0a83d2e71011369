"""Age and gender on aligned face crops (the model's ``crop``: size and margin around the ArcFace layout): a
MultiTaskModel on the shared encoder.

Age is a distribution over one-year bins (``polyhead.apps.face.model.AGE_VALUES``, a ``distribution`` head
trained by label-distribution learning; weights before round 9: 14 coarse bins, ``AGE_BINS``) read out as
the expected value of the bin centres under the softmax, with a spread: the standard deviation of the bin
centres under the same softmax, times a factor fitted on the attribute val split (:func:`fit_spread_scale`,
stored in the card as ``age_spread_scale``) so that about 68.3% of the age errors lie within one spread.
Gender is a two-way classification. Training data: UTKFace chips, aligned with the shipped cascade's
5 points (a seeded share is held out for val).

>>> out = predict_attributes(model, crops)      # doctest: +SKIP
>>> out["age"], out["age_std"], out["p_female"]  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from polyhead.apps.face.align import TEMPLATE_112, align_face
from polyhead.apps.face.model import AGE_VALUES, age_centres, age_to_bin, attr_config
from polyhead.heads.classification import bin_expectation
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from polyhead.train.finetune import fine_tune_overrides, initialise


def align_detector(parts):
    """The cascade as used on UTKFace chips (a 200x200 chip holds one ~170 px face)."""
    from polyhead.apps.face.detect import DetectorConfig, FaceDetector

    return FaceDetector(parts, DetectorConfig(min_size=80, thresholds=(0.5, 0.5, 0.5)))


@torch.inference_mode()
def predict_attributes(model, crops: list[np.ndarray] | np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """Aligned RGB crops -> ``{"age": years, "age_std": years, "p_female": probability}`` for the heads the
    model has on; ``age_std`` is the uncalibrated spread (:func:`bin_spread`), multiply it by the card's
    ``age_spread_scale``."""
    out: dict[str, list] = {}
    tasks = list(getattr(model, "active_tasks", model.tasks))
    norm = getattr(model, "normalisation", (IMAGENET_MEAN, IMAGENET_STD))
    centres = age_values(model)
    for i in range(0, len(crops), batch):
        x = torch.stack([to_tensor(c, *norm) for c in crops[i : i + batch]])
        res = model(x, tasks)
        if "age" in res:
            mean, std = bin_spread(torch.as_tensor(res["age"]).softmax(1), centres)
            out.setdefault("age", []).append(mean)
            out.setdefault("age_std", []).append(std)
        if "gender" in res:
            out.setdefault("p_female", []).append(res["gender"].softmax(1)[:, 1])
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def age_values(model) -> torch.Tensor:
    """The age bins' centres of an attribute model (torch or ONNX Runtime): the ``values`` of its age head in
    its config, or the 14 coarse bins' centres of the weights that predate them.

    >>> age_values(build_model(attr_config("lcnet_075")))[:3].tolist()   # doctest: +SKIP
    [0.0, 1.0, 2.0]
    """
    spec = (getattr(model, "config", None) or {}).get("heads", {}).get("age", {})
    return torch.tensor(spec["values"], dtype=torch.float32) if "values" in spec else age_centres()


def bin_spread(probs: torch.Tensor, centres: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected value and standard deviation of the bin centres under per-row probabilities (n, bins).

    >>> m, s = bin_spread(torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), torch.tensor([10.0, 20.0, 30.0]))
    >>> m.tolist(), s.tolist()
    ([20.0, 20.0], [0.0, 10.0])
    """
    return bin_expectation(probs, age_centres() if centres is None else centres)


#: the share of age errors one calibrated spread should cover (that of +-1 sigma of a normal distribution)
SPREAD_COVERAGE = 0.683


def spread_coverage(error: np.ndarray, spread: np.ndarray, k: float = 1.0) -> float:
    """Share of ``|error| <= k * spread``.

    >>> spread_coverage(np.array([1.0, -3.0]), np.array([2.0, 2.0]))
    0.5
    """
    error, spread = np.asarray(error, np.float64), np.asarray(spread, np.float64)
    return float((np.abs(error) <= k * spread).mean()) if len(error) else 0.0


def fit_spread_scale(error: np.ndarray, std: np.ndarray, target: float = SPREAD_COVERAGE) -> float:
    """The factor ``s`` such that ``|error| <= s * std`` for the share ``target`` of the items: the
    ``target`` quantile of ``|error| / std`` (no interpolation). Raises ValueError when it is undefined.

    >>> fit_spread_scale(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4), target=0.5)
    2.0
    """
    error, std = np.abs(np.asarray(error, np.float64)), np.asarray(std, np.float64)
    if len(error) == 0 or len(error) != len(std):
        raise ValueError(f"need as many errors as spreads, got {len(error)} and {len(std)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0, 0.0, error / std)
    scale = float(np.quantile(ratio, target, method="inverted_cdf"))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"no finite positive spread factor (quantile {target} of |error| / spread is {scale})")
    return scale


def calibrate_age_spread(model, crops: np.ndarray, age: np.ndarray, target: float = SPREAD_COVERAGE) -> dict:
    """Fit ``age_spread_scale`` on aligned val crops with their true ages; the coverage at 1 and 2 spreads
    before (factor 1) and after the fit, and the figures of the spread itself.

    >>> calibrate_age_spread(app.attr, crops, ages)["age_spread_scale"]     # doctest: +SKIP
    1.37
    """
    model.eval()
    pred = predict_attributes(model, crops)
    if "age" not in pred:
        raise ValueError("the attribute model has no age head")
    err = pred["age"] - np.asarray(age, np.float64)
    std = pred["age_std"]
    scale = fit_spread_scale(err, std, target)
    # out-of-sample check: each fifth covered by the factor fitted on the other four fifths (seeded folds)
    folds = np.random.default_rng(0).permutation(len(err)) % 5
    held = {1: [], 2: []}
    for f in range(5):
        fit_on, test = folds != f, folds == f
        if fit_on.sum() and test.sum():
            s_f = fit_spread_scale(err[fit_on], std[fit_on], target)
            for k in held:
                held[k].append(np.abs(err[test]) <= k * s_f * std[test])
    r = lambda v: round(float(v), 4)  # noqa: E731
    return {
        "age_spread_scale": r(scale),
        "target_coverage": target,
        "crops": len(err),
        "age_mae": r(np.abs(err).mean()),
        "coverage_before": {"1_spread": r(spread_coverage(err, std, 1)), "2_spreads": r(spread_coverage(err, std, 2))},
        "coverage_after": {
            "1_spread": r(spread_coverage(err, std * scale, 1)),
            "2_spreads": r(spread_coverage(err, std * scale, 2)),
        },
        "coverage_5fold": {
            "1_spread": r(np.concatenate(held[1]).mean()) if held[1] else None,
            "2_spreads": r(np.concatenate(held[2]).mean()) if held[2] else None,
        },
        "mean_spread_before": r(std.mean()),
        "mean_spread_after": r((std * scale).mean()),
    }


def utk_points(items, detector, cache_dir: str | Path = "runs/face_cache", progress: bool = True):
    """The cascade's 5 points on each UTKFace chip (image pixels; where it finds no face, the mean of the
    found ones relative to the chip size) and whether it found one; cached per chip list and cascade
    weights, so any crop size or margin reuses one detection pass."""
    from tqdm import tqdm

    from polyhead.io.writers import atomic_path

    nets = (detector.pnet, detector.rnet, detector.onet)
    weights_sig = [_net_signature(n) for n in nets]
    sig = hashlib.sha1(repr(([str(p) for p, _, _ in items], weights_sig)).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"utk_points_{sig}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["points"], z["found"]
    points, sizes, found = [], [], []
    for p, _, _ in tqdm(items, desc="finding UTKFace points", disable=not progress):
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        r = detector.detect([img])[0]
        sizes.append(img.shape[1::-1])
        found.append(bool(len(r["scores"])))
        if found[-1]:
            k = int(np.argmax((r["boxes"][:, 2] - r["boxes"][:, 0]) * r["scores"]))
            points.append(r["points"][k])
        else:
            points.append(np.zeros((5, 2), np.float32))
    points, found = np.asarray(points, np.float32).reshape(-1, 5, 2), np.asarray(found, bool)
    wh = np.asarray(sizes, np.float32).reshape(-1, 1, 2)
    mean_rel = (points[found] / wh[found]).mean(0) if found.any() else TEMPLATE_112 / 112.0
    points[~found] = mean_rel * wh[~found]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, points=points, found=found)
    return points, found


def aligned_utk(
    items,
    detector,
    crop: tuple[int, float] = (112, 1.0),
    cache_dir: str | Path = "runs/face_cache",
    progress: bool = True,
):
    """Aligned crops (``crop``: size, margin; see :func:`polyhead.apps.face.model.attr_crop`) of UTKFace
    chips from the cascade's points (:func:`utk_points`), with ages, genders and how many chips the cascade
    found a face in."""
    points, found = utk_points(items, detector, cache_dir, progress)
    size, margin = crop
    crops = np.empty((len(items), size, size, 3), np.uint8)
    for i, (p, _, _) in enumerate(items):
        crops[i] = align_face(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), points[i], size, margin)
    age = np.array([a for _, a, _ in items], np.int16)
    gender = np.array([g for _, _, g in items], np.int8)
    return crops, age, gender, int(found.sum())


def _net_signature(net) -> object:
    """Identifies a cascade net's weights for the alignment cache (torch: a parameter sum; ONNX Runtime:
    the session's file and size)."""
    if isinstance(net, torch.nn.Module):
        return round(float(sum(p.detach().double().sum() for p in net.parameters())), 6)
    path = getattr(net, "path", None)
    return (str(path), Path(path).stat().st_size) if path else repr(net)


class AlignedFaces(Dataset):
    """Aligned crops with age and gender targets for the shared Trainer (light augmentation). The age target
    is the age in years (``age_as="value"``, for a ``distribution`` head) or its coarse bin (``"bin"``)."""

    def __init__(
        self,
        crops: np.ndarray,
        age: np.ndarray,
        gender: np.ndarray,
        tasks,
        augment: bool = False,
        age_as: str = "value",
    ):
        if age_as not in ("value", "bin"):
            raise ValueError(f"age_as must be 'value' or 'bin', got {age_as!r}")
        self.crops, self.age, self.gender, self.tasks, self.augment = crops, age, gender, tuple(tasks), augment
        self.age_as = age_as
        self.norm = (IMAGENET_MEAN, IMAGENET_STD)  # the model's input normalisation (set by the trainer)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> dict:
        img = self.crops[i]
        if self.augment:
            rng = np.random.default_rng()
            if rng.random() < 0.5:
                img = img[:, ::-1]
            side = img.shape[0]
            s = rng.uniform(0.94, 1.06)
            m = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-8, 8), s)
            m[:, 2] += rng.uniform(-4, 4, 2) * side / 112
            img = cv2.warpAffine(np.ascontiguousarray(img), m, (side, side), borderMode=cv2.BORDER_REFLECT)
            img = np.clip(img.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20), 0, 255)
            if rng.random() < 0.1:
                img = np.repeat(img.mean(2, keepdims=True), 3, 2)
            img = img.astype(np.uint8)
        targets = {}
        if "age" in self.tasks:
            a = int(self.age[i])
            targets["age"] = torch.tensor(age_to_bin(a)) if self.age_as == "bin" else torch.tensor(float(min(a, 100)))
        if "gender" in self.tasks:
            targets["gender"] = torch.tensor(int(self.gender[i]))
        return {"image": to_tensor(img, *self.norm), "targets": targets, "name": str(i)}


def evaluate_attributes(model, crops: np.ndarray, age: np.ndarray, gender: np.ndarray) -> dict[str, float]:
    """Age MAE (years, expected value over bins) and gender accuracy; ``score`` = accuracy - MAE / 20."""
    model.eval()
    pred = predict_attributes(model, crops)
    out: dict[str, float] = {}
    if "age" in pred:
        out["age_mae"] = float(np.abs(pred["age"] - age).mean())
    if "p_female" in pred:
        out["gender_acc"] = float(((pred["p_female"] > 0.5).astype(int) == gender).mean())
    out["score"] = out.get("gender_acc", 0.0) - out.get("age_mae", 0.0) / 20
    return out


def train_attributes(args: argparse.Namespace) -> int:
    """Train the attribute model; its weights go into the face weights file under ``attr.*``."""
    from polyhead.apps.face.model import load_face_weights, read_card, save_face_weights
    from polyhead.apps.face.samples import FaceSources
    from polyhead.apps.face.training import DEFAULT_OUT, command_line
    from polyhead.model import build_model
    from polyhead.train import Trainer, config_from_args
    from polyhead.weights import load_state

    t_start = time.time()
    src = FaceSources.from_yaml(args.data)
    out = Path(args.out or DEFAULT_OUT)
    det_weights = Path(args.weights) if args.weights else (out if out.is_file() else Path("weights/face.safetensors"))
    parts, _ = load_face_weights(det_weights)
    detector = align_detector(parts)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tr_items, va_items = src.utk_items("train"), src.utk_items("val")
    if args.scale < 1:
        tr_items, va_items = (
            tr_items[: max(8, int(len(tr_items) * args.scale))],
            va_items[: max(4, int(len(va_items) * args.scale))],
        )
    crop = (args.crop_size, args.crop_margin)
    tr = aligned_utk(tr_items, detector, crop)
    va = aligned_utk(va_items, detector, crop)
    t_data = time.time() - t_start
    print(f"attributes: {len(tr[0])} train crops ({tr[3]} aligned by the cascade), {len(va[0])} val, {t_data:.0f} s")
    model = build_model(attr_config(args.encoder, tuple(args.tasks), *crop, gender_smoothing=args.label_smoothing))
    # --weights is the detector's file here, so only the encoder options start the attribute model
    init = initialise(model, argparse.Namespace(no_pretrained=args.no_pretrained, encoder_weights=args.encoder_weights))
    train_set = AlignedFaces(tr[0], tr[1], tr[2], args.tasks, augment=True)
    train_set.norm = model.normalisation
    run_dir = out.parent / "attributes"
    cfg = config_from_args(args, run_dir, {"app": "face-attributes", **init}, **fine_tune_overrides(args, init))
    trainer = Trainer(model, train_set, lambda m: evaluate_attributes(m, va[0], va[1], va[2]), cfg)
    trainer.fit()
    model.load_state_dict(load_state(run_dir / "best.safetensors"))
    metrics = evaluate_attributes(model, va[0], va[1], va[2])
    card = read_card(out)
    for stale in ("age_spread_scale", "age_spread_calibration"):  # fitted on the previous attribute model
        card.pop(stale, None)
    card.setdefault("training", {})["attributes"] = {
        "command": command_line(),
        "wall_time_s": round(time.time() - t_start, 1),
        "data_time_s": round(t_data, 1),
        "epochs": args.epochs,
        "train_crops": len(tr[0]),
        "val_crops": len(va[0]),
        "aligned_by_cascade": {"train": tr[3], "val": va[3]},
        "age_values": [AGE_VALUES[0], AGE_VALUES[-1], len(AGE_VALUES)],
        "crop": {"size": crop[0], "margin": crop[1]},
        **init,
        "val_metrics": metrics,
        "history": trainer.history,
    }
    save_face_weights(out, {"attr": model}, card)
    print(f"attributes: {metrics} -> {out}")
    return 0
