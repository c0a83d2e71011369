"""``--device``: which processor runs the networks (``cpu``, ``cuda``, ``cuda:N``, ``mps``; default ``cpu``).

The CLI parses and checks the option once (:func:`select`) and makes it the process default that every
network polyhead loads picks up (:func:`current`); the Trainer puts the model and batches on it, runs
mixed precision on CUDA only (:func:`use_amp`), and under ``torchrun`` uses nccl with the rank's
``cuda:LOCAL_RANK`` on GPUs and gloo on CPUs (:func:`distributed_setup`). ONNX Runtime gets the CUDA
execution provider first on a CUDA device when it is installed (:func:`onnx_providers`).

>>> parse_device("cuda:1")
device(type='cuda', index=1)
>>> distributed_setup(torch.device("cpu"), local_rank=1)
('gloo', device(type='cpu'))
"""

from __future__ import annotations

import re
import sys

import torch

from polyhead.errors import InputError

#: what ``--device`` accepts
CHOICES = "cpu, cuda, cuda:N, mps"
_PATTERN = re.compile(r"\A(cpu|mps|cuda)(?::(\d+))?\Z")
_current = torch.device("cpu")


def parse_device(text: str | torch.device | None) -> torch.device:
    """``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` / ``"mps"`` -> a :class:`torch.device` (syntax only; see
    :func:`check_device`). ``None`` or ``""`` is the CPU; anything else is a one-line InputError."""
    if isinstance(text, torch.device):
        text = str(text)
    if text is None or str(text).strip() == "":
        return torch.device("cpu")
    m = _PATTERN.match(str(text).strip().lower())
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise InputError(None, f"--device {text}: expected one of {CHOICES}")
    kind, index = m.group(1), m.group(2)
    return torch.device(kind, int(index)) if index is not None else torch.device(kind)


def check_device(device: torch.device, option: str | None = None) -> torch.device:
    """``device`` if this machine has it, else a one-line InputError saying what is missing."""
    option = option or str(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(None, f"--device {option}: no CUDA GPU visible (torch.cuda.is_available() is False)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(
                None,
                f"--device {option}: GPU {device.index} does not exist ({count} visible: cuda:0..cuda:{count - 1})",
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(None, f"--device {option}: Apple MPS is not available on this machine")
    return device


def select(text: str | torch.device | None) -> torch.device:
    """Parse and check ``--device`` and make it the process default (:func:`current`); returns it.

    >>> select("cpu")
    device(type='cpu')
    """
    global _current
    device = check_device(parse_device(text), None if text is None else str(text))
    _current = device
    return device


def current() -> torch.device:
    """The device chosen with :func:`select` (the CPU until then)."""
    return _current


def resolve(text: str | torch.device | None = None) -> torch.device:
    """``text`` parsed and checked, or :func:`current` when it is None."""
    if text is None:
        return _current
    return check_device(parse_device(text), str(text))


def use_amp(device: torch.device) -> bool:
    """Mixed precision (``torch.autocast`` + GradScaler) is used on CUDA only: on the CPU bfloat16
    autocast is slower for these small convolutions, and MPS autocast is incomplete."""
    return device.type == "cuda"


def distributed_setup(device: torch.device, local_rank: int) -> tuple[str, torch.device]:
    """``(backend, device)`` of one ``torchrun`` rank: nccl on ``cuda:LOCAL_RANK`` when ``--device`` is
    CUDA (each rank its own GPU, whatever index was asked), gloo on the CPU otherwise."""
    if device.type == "cuda":
        return "nccl", torch.device("cuda", local_rank)
    return "gloo", torch.device("cpu")


def onnx_providers(device: torch.device, available: list[str] | None = None) -> list[str]:
    """The ONNX Runtime execution providers for ``device``: ``CUDAExecutionProvider`` first on a CUDA
    device when ONNX Runtime has it (``onnxruntime-gpu``), else a one-line note on stderr and the CPU."""
    if available is None:
        import onnxruntime as ort

        available = list(ort.get_available_providers())
    if device.type == "cuda":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        print(
            f"note: --device {device}: this ONNX Runtime has no CUDAExecutionProvider (install onnxruntime-gpu); "
            "running the ONNX model on the CPU",
            file=sys.stderr,
        )
    return ["CPUExecutionProvider"]


def onnx_provider_options(device: torch.device, providers: list[str]) -> list[dict]:
    """Per-provider options matching :func:`onnx_providers` (the GPU index for CUDA)."""
    return [{"device_id": device.index or 0} if p == "CUDAExecutionProvider" else {} for p in providers]


def to_device(obj, device: torch.device, non_blocking: bool = False):
    """``obj`` with every tensor inside (dicts, lists, tuples) moved to ``device``; other values as they are."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device, non_blocking) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device, non_blocking) for v in obj)
    return obj


def _inputs_to_model_device(module: torch.nn.Module, args: tuple) -> tuple:
    param = next(module.parameters(), None)
    return args if param is None else to_device(args, param.device)


def _outputs_to_cpu_in_eval(module: torch.nn.Module, args: tuple, output):
    return output if module.training else to_device(output, torch.device("cpu"))


def place(model: torch.nn.Module, device: torch.device | None = None) -> torch.nn.Module:
    """``model`` moved to ``device`` (default :func:`current`). Off the CPU it also takes CPU inputs
    (moved to its device on each call) and, in eval mode, hands its outputs back on the CPU, so
    pre- and post-processing written for the CPU work unchanged; in train mode outputs stay on the
    device for the loss. On the CPU nothing else changes.
    """
    device = current() if device is None else device
    model = model.to(device)
    if device.type != "cpu" and not getattr(model, "_polyhead_placed", False):
        model.register_forward_pre_hook(_inputs_to_model_device)
        model.register_forward_hook(_outputs_to_cpu_in_eval)
        model._polyhead_placed = True
    return model
