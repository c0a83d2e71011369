"""The face weights file: every cascade stage and the attribute model in one safetensors file.

Keys are prefixed by part (``pnet.*``, ``rnet.*``, ``onet.*``, ``attr.*`` and, when trained, the
single-shot detector ``single.*``); the card beside it (``face.json``) holds the multi-task parts'
configs (``attr_model``, ``single_model``), detector settings, figures and provenance.
Loading reads safetensors only (never unpickles).

>>> parts, card = load_face_weights("weights/face.safetensors")   # doctest: +SKIP
>>> sorted(parts)                                                 # doctest: +SKIP
['attr', 'onet', 'pnet', 'rnet']
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from polyhead.apps.face.cascade import STAGES, build_net
from polyhead.errors import InputError
from polyhead.io.writers import atomic_path, write_json
from polyhead.model import MultiTaskModel, build_model

#: parts that are MultiTaskModels -> the card key holding their config
MODEL_PARTS = {"attr": "attr_model", "single": "single_model"}
PARTS = (*STAGES, *MODEL_PARTS)
AGE_BINS = [0, 3, 7, 13, 18, 23, 28, 33, 38, 45, 52, 60, 70, 80, 120]  # class k: AGE_BINS[k] <= age < AGE_BINS[k+1]
GENDERS = ["male", "female"]


def age_centres() -> torch.Tensor:
    """The representative age of every bin (its midpoint) for the expected-value estimate."""
    b = torch.tensor(AGE_BINS, dtype=torch.float32)
    c = (b[:-1] + b[1:]) / 2
    c[-1] = 88.0
    return c


def age_to_bin(age: float) -> int:
    """The coarse age class (``AGE_BINS``) of an age in years, for weights that predate the one-year bins.

    >>> age_to_bin(0), age_to_bin(25), age_to_bin(119)
    (0, 5, 13)
    """
    for k in range(len(AGE_BINS) - 1):
        if age < AGE_BINS[k + 1]:
            return k
    return len(AGE_BINS) - 2


#: the age head's bins since the attribute model of round 9: one per year of age, 0-100 (older ages count as 100)
AGE_VALUES = [float(a) for a in range(101)]


def attr_config(
    encoder: str = "lcnet_075",
    tasks: tuple[str, ...] = ("age", "gender"),
    crop_size: int = 112,
    crop_margin: float = 1.0,
    gender_smoothing: float = 0.0,
) -> dict:
    """The attribute model: the shared encoder's deepest level projected to 256 channels (``"last"`` neck),
    an age distribution over one-year bins (label-distribution learning, read out as expected value and
    spread) and a gender classification head, on aligned ``crop_size`` crops zoomed out by ``crop_margin``
    (:func:`polyhead.apps.face.align.align_face`; the config's ``crop``); ``gender_smoothing`` is the gender
    head's label smoothing. Older weights (14 coarse age bins on an FPN neck, 112 px ArcFace crops) keep
    loading from their own card.

    >>> cfg = attr_config("efficientnet_lite0", crop_size=128, crop_margin=1.3)
    >>> cfg["neck"], cfg["heads"]["age"]["type"], len(cfg["heads"]["age"]["values"]), cfg["crop"]["size"]
    ('last', 'distribution', 101, 128)
    """
    if crop_size < 32 or crop_size % 16 or not 0.5 <= crop_margin <= 3:
        raise ValueError(
            f"crop size must be a multiple of 16 (>= 32) and margin in 0.5..3, got {crop_size}, {crop_margin}"
        )
    heads = {}
    if "age" in tasks:
        heads["age"] = {"type": "distribution", "values": AGE_VALUES, "sigma": 2.0, "l1_weight": 0.25}
    if "gender" in tasks:
        heads["gender"] = {"type": "classify", "num_outputs": 2}
        if gender_smoothing:
            heads["gender"]["label_smoothing"] = gender_smoothing
    if not heads:
        raise ValueError("the attribute model needs at least one of the tasks age, gender")
    return {
        "encoder": encoder,
        "neck": "last",
        "strides": [32],
        "neck_channels": 256,
        "heads": heads,
        "input_size": [crop_size, crop_size],
        "crop": {"size": crop_size, "margin": crop_margin},
    }


def attr_crop(model) -> tuple[int, float]:
    """``(size, margin)`` of the aligned crops an attribute model (torch or ONNX Runtime) reads, from its
    config; weights that predate the setting read 112 px ArcFace crops (margin 1).

    >>> attr_crop(build_model(attr_config("efficientnet_lite0", crop_size=128, crop_margin=1.3)))
    (128, 1.3)
    """
    cfg = getattr(model, "config", None) or {}
    crop = cfg.get("crop") or {}
    return int(crop.get("size", cfg.get("input_size", [112])[0])), float(crop.get("margin", 1.0))


def load_face_weights(path: str | Path) -> tuple[dict[str, torch.nn.Module], dict]:
    """``({"pnet": net, ..., "attr": MultiTaskModel}, card)`` from a face weights file; parts that the
    file lacks are missing from the dict. Raises :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix != ".safetensors":
        raise InputError(path, "face weights must be a .safetensors file (pickle checkpoints are not loaded)")
    card_file = path.with_suffix(".json")
    card = {}
    if card_file.is_file():
        try:
            card = json.loads(card_file.read_text())
        except json.JSONDecodeError as e:
            raise InputError(card_file, f"model card is not valid JSON ({e.msg})") from None
    try:
        state = load_file(str(path))
    except Exception as e:
        raise InputError(path, f"not a readable safetensors file ({type(e).__name__})") from None
    from polyhead.weights import check_finite

    state = check_finite(state, path)  # NaN / inf weights would give plausible-looking nonsense
    parts: dict[str, torch.nn.Module] = {}
    for part in PARTS:
        sub = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(part + ".")}
        if not sub:
            continue
        if part in MODEL_PARTS:
            key = MODEL_PARTS[part]
            if key not in card:
                raise InputError(card_file, f"card has no {key!r} config for the {part}.* weights")
            net: torch.nn.Module = build_model(card[key])
        else:
            net = build_net(part)
        missing, unexpected = net.load_state_dict(sub, strict=False)
        if missing or unexpected:
            raise InputError(
                path, f"{part} weights do not match ({len(missing)} missing, {len(unexpected)} unexpected)"
            )
        parts[part] = net.eval()
    return parts, card


def save_face_weights(path: str | Path, parts: dict[str, torch.nn.Module], card: dict) -> Path:
    """Write (or update) a face weights file: the given parts replace theirs, others are kept."""
    path = Path(path)
    state: dict[str, torch.Tensor] = {}
    if path.is_file():
        state = {k: v for k, v in load_file(str(path)).items() if k.split(".", 1)[0] not in parts}
    for part, net in parts.items():
        state.update({f"{part}.{k}": v.detach().contiguous().cpu() for k, v in net.state_dict().items()})
        if isinstance(net, MultiTaskModel):
            card = {**card, MODEL_PARTS[part]: net.config}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "polyhead": "1", "app": "face"})
    write_json(path.with_suffix(".json"), card)
    return path


def read_card(path: str | Path) -> dict:
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else {}
