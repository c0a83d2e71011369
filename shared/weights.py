"""Shipped weights: ``<name>.safetensors`` + ``<name>.json`` model card. Never unpickles by default.

>>> card = load_card("weights/driving.json")            # doctest: +SKIP
>>> model = load_model("weights/driving.safetensors")    # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

from polyhead.errors import InputError
from polyhead.io.writers import atomic_path, write_json
from polyhead.model import MultiTaskModel, build_model


def _weights_dir() -> Path:
    """Where the shipped weights are: ``POLYHEAD_WEIGHTS``, else the installed package data
    (``polyhead/_weights`` beside this module), else the repository's ``weights/`` (editable install)."""
    if os.environ.get("POLYHEAD_WEIGHTS"):
        return Path(os.environ["POLYHEAD_WEIGHTS"]).expanduser()
    here = Path(__file__).resolve().parent
    for candidate in (here / "_weights", here.parent / "weights"):
        if any(candidate.glob("*.safetensors")):
            return candidate
    return here.parent / "weights"


WEIGHTS_DIR = _weights_dir()
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
    if Path(path) != p and not Path(path).is_file():
        raise InputError(path, "weights file not found")
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
        state = obj.get("model", obj) if isinstance(obj, dict) else obj.state_dict()
        return check_finite(state, path) if isinstance(state, dict) else state
    try:
        state = load_file(str(path))
    except Exception as e:
        raise InputError(path, f"not a readable safetensors file ({type(e).__name__})") from None
    return check_finite(state, path)


def load_model(path: str | Path, trust_pickle: bool = False) -> tuple[MultiTaskModel, dict]:
    """Rebuild the architecture from the card and load the weights; returns ``(model, card)`` in eval mode."""
    card = load_card(path)
    if "model" not in card:
        raise InputError(card_path(path), "model card has no 'model' config")
    model = build_checked(card["model"], path)
    state = load_state(path, trust_pickle)
    check_tensors(model, state, path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            path,
            f"weights do not match the card's architecture "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors)",
        )
    return model.eval(), card


MAX_MODEL_BYTES = 2 << 30  # 2 GiB of tensors: far above any app's model (the largest ships at ~25 MB)


def build_checked(config: dict, path: str | Path) -> MultiTaskModel:
    """Build the card's architecture after checking what it would allocate, without allocating it.

    The model is first built on PyTorch's ``meta`` device (shapes only). A card whose architecture cannot
    be built (unknown encoder, head or neck, wrong option types) or that needs more than
    :data:`MAX_MODEL_BYTES`, or more tensor bytes than the weights file holds, is an InputError.
    """
    where = card_path(path)
    if not isinstance(config, dict) or not isinstance(config.get("heads"), dict) or "encoder" not in config:
        raise InputError(where, "model card's 'model' needs 'encoder' and a 'heads' mapping")
    if len(config["heads"]) > MAX_HEADS:
        raise InputError(where, f"model card claims {len(config['heads'])} heads (limit {MAX_HEADS})")
    probe = None
    for context in (lambda: torch.device("meta"), _BigTensorsOnMeta):  # the second for code calling .item()
        try:
            with context():
                probe = build_model(config)
            break
        except (NotImplementedError, RuntimeError) as e:
            if "meta" not in str(e):
                raise _unbuildable(where, e) from None
        except (KeyError, ValueError, TypeError, AttributeError, AssertionError) as e:
            raise _unbuildable(where, e) from None
    if probe is None:  # not sizeable without building it: build it for real (its tensors are checked below)
        return build_model(config)
    tensors = probe.state_dict().values()
    need, need_numel = sum(t.numel() * t.element_size() for t in tensors), sum(t.numel() for t in tensors)
    del probe, tensors
    if need > MAX_MODEL_BYTES:
        raise InputError(
            where, f"model card claims a {need / 2**30:.1f} GB network, above the {MAX_MODEL_BYTES >> 30} GB limit"
        )
    have = safetensors_numel(path) if Path(path).suffix == ".safetensors" and Path(path).is_file() else None
    if have is not None and need_numel > have:  # values, not bytes: shipped weights may be stored as float16
        raise InputError(path, f"model card's architecture needs {need_numel:,} tensor values, the file holds {have:,}")
    return build_model(config)


def safetensors_numel(path: str | Path) -> int:
    """Total tensor values a safetensors file declares, from its header only (InputError if it is not one)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if size < 10 or not 2 <= n <= min(size - 8, 100 << 20):
            raise InputError(path, "not a readable safetensors file (bad header length)")
        try:
            header = json.loads(f.read(n))
            entries = [v for k, v in header.items() if k != "__metadata__"]
            total = sum(int(end) - int(start) for start, end in (v["data_offsets"] for v in entries))
            numel = sum(math.prod(int(d) for d in v["shape"]) for v in entries)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
            raise InputError(path, "not a readable safetensors file (bad header)") from None
    if total > size - 8 - n:
        raise InputError(
            path, f"not a readable safetensors file (cut short: {total} tensor bytes declared, {size - 8 - n} held)"
        )
    return numel


MAX_HEADS = 64


class _BigTensorsOnMeta(TorchFunctionMode):
    """Create every tensor above 65,536 elements on the ``meta`` device (shapes only, no memory); small
    ones stay real, so architectures that read a value while being built (``.item()``) still build."""

    LIMIT = 1 << 16
    FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.empty_strided}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES and kwargs.get("device") is None and args:
            sized = isinstance(args[0], tuple | list | torch.Size)
            dims = args[0] if sized else [a for a in args if isinstance(a, int)]
            if math.prod(int(d) for d in dims) > self.LIMIT:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def check_tensors(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Every entry of ``state`` is a tensor of the shape the model expects, with finite values (else InputError)."""
    if not isinstance(state, dict):
        raise InputError(path, f"weights hold a {type(state).__name__}, not a state dict of tensors")
    expected = model.state_dict()
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise InputError(path, f"entry '{name}' is a {type(tensor).__name__}, not a tensor")
        want = expected.get(name)
        if want is not None and tuple(want.shape) != tuple(tensor.shape):
            raise InputError(
                path,
                f"tensor '{name}' has shape {tuple(tensor.shape)}, the card's architecture needs {tuple(want.shape)}",
            )
    check_finite(state, path)


def check_finite(state: dict, path: str | Path) -> dict:
    """``state`` unchanged if every floating tensor is finite; else an InputError naming the first bad tensor."""
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InputError(path, f"tensor '{name}' holds {bad} NaN/inf value(s): the weights are broken")
    return state


def _unbuildable(where: Path, e: BaseException) -> InputError:
    return InputError(where, f"model card describes an architecture that cannot be built ({_reason(e)})")


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__
