"""Shipped weights: ``<name>.safetensors`` + ``<name>.json`` model card. Never unpickles by default.

>>> card = load_card("weights/driving.json")            # doctest: +SKIP
>>> model = load_model("weights/driving.safetensors")    # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from shared.errors import InputError
from shared.io.writers import atomic_path, write_json
from shared.model import MultiTaskModel, build_model

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl"}


def card_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(model: MultiTaskModel, path: str | Path, card: dict) -> Path:
    """Write the state dict as safetensors and the model card (with the model config) beside it."""
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "polyhead": "1"})
    card = {**card, "model": model.config}
    write_json(card_path(path), card)
    return path


def load_card(path: str | Path) -> dict:
    """The model card of a weights file (``.json`` beside it)."""
    p = card_path(path)
    if not p.is_file():
        raise InputError(path, f"no model card {p.name} beside the weights (it holds the architecture)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise InputError(p, f"model card is not valid JSON ({e.msg}, line {e.lineno})") from None


def load_state(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """A state dict from safetensors; pickle checkpoints only with ``trust_pickle=True``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise InputError(
                path,
                "pickle checkpoints can run code when loaded; convert to .safetensors "
                "or pass --trust-pickle if you trust the file",
            )
        obj = torch.load(path, map_location="cpu", weights_only=False)
        return obj.get("model", obj) if isinstance(obj, dict) else obj.state_dict()
    try:
        return load_file(str(path))
    except Exception as e:
        raise InputError(path, f"not a readable safetensors file ({type(e).__name__})") from None


def load_model(path: str | Path, trust_pickle: bool = False) -> tuple[MultiTaskModel, dict]:
    """Rebuild the architecture from the card and load the weights; returns ``(model, card)`` in eval mode."""
    card = load_card(path)
    if "model" not in card:
        raise InputError(card_path(path), "model card has no 'model' config")
    model = build_model(card["model"])
    state = load_state(path, trust_pickle)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            path,
            f"weights do not match the card's architecture "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors)",
        )
    return model.eval(), card
