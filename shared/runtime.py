"""One loader for a network in either runtime: torch eager, or ONNX Runtime from an ``.onnx`` file or
from safetensors weights exported once and cached (depthwise-heavy encoders such as EfficientNet-Lite
run several times faster in ONNX Runtime on a CPU).

>>> model, card = load_network("weights/driving.safetensors", runtime="onnx", input_size=(384, 640))  # doctest: +SKIP
>>> model(torch.zeros(1, 3, 384, 640))["drivable"].shape                                          # doctest: +SKIP
torch.Size([1, 2, 384, 640])
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from polyhead.errors import InputError

RUNTIMES = ("auto", "torch", "onnx", "openvino")


def for_cpu_inference(model):
    """``model`` in eval mode, BatchNorm folded into the convolutions and channels-last weights, for
    torch eager inference (the model is no longer trainable). oneDNN's convolutions run about 1.2x
    faster channels-last on these CPUs and folding halves the EfficientNet-Lite0 encoder's time
    (driving model, 640x384); same results within 1e-4; inputs may stay in the usual layout."""
    import torch

    from polyhead.bn_fold import fold_batchnorm

    example = model.example_input() if hasattr(model, "example_input") else None
    return fold_batchnorm(model, example).to(memory_format=torch.channels_last)


def onnx_cache_dir() -> Path:
    from polyhead.offline import CACHE_DIR

    return CACHE_DIR / "onnx"


def _fingerprint(weights: Path, input_size: tuple[int, int], tasks: list[str]) -> str:
    """Changes whenever the weights, their card, the input size or the exported heads change."""
    h = hashlib.sha256()
    for part in (weights, weights.with_suffix(".json")):
        if part.is_file():
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    from polyhead.export import EXPORT_VERSION

    h.update(repr((tuple(input_size), sorted(tasks), EXPORT_VERSION)).encode())
    return h.hexdigest()[:16]


def cached_onnx(model, weights: Path, input_size: tuple[int, int]) -> Path:
    """The ONNX export of ``model`` (loaded from ``weights``) at ``input_size``, made once and cached."""
    from polyhead.export import export_onnx

    tasks = list(model.tasks)
    key = _fingerprint(weights, input_size, tasks)
    path = onnx_cache_dir() / f"{weights.stem}-{key}-{input_size[0]}x{input_size[1]}.onnx"
    if not path.is_file():
        export_onnx(model, path, tuple(input_size), tasks=tasks)
    return path


def cached_part_onnx(
    module,
    weights: Path,
    part: str,
    example,
    output_names: list[str],
    dynamic_spatial: bool = False,
) -> Path:
    """The ONNX export of one part of a weights file (``module``, e.g. the face app's single-shot detector),
    made once and cached beside the whole-model exports; the key covers the file, its card, the part, the
    example's size and the outputs.

    >>> cached_part_onnx(single, Path("weights/face.safetensors"), "single", torch.zeros(1, 3, 480, 640),
    ...                  ["faces"], dynamic_spatial=True)  # doctest: +SKIP
    """
    from polyhead.export import export_module

    size = tuple(example.shape[-2:])
    key = _fingerprint(weights, size, [part, *output_names, f"dynamic={dynamic_spatial}"])
    path = onnx_cache_dir() / f"{weights.stem}-{part}-{key}.onnx"
    if not path.is_file():
        export_module(module, path, example, output_names, dynamic_spatial)
    return path


def load_network(
    weights: str | Path,
    runtime: str = "torch",
    input_size: tuple[int, int] | None = None,
    trust_pickle: bool = False,
    device=None,
):
    """``(model, card)``: a callable ``model(x) -> {task: tensor}`` in the asked runtime and its model card.

    ``runtime``: ``"torch"`` (eager), ``"onnx"`` (ONNX Runtime; safetensors weights are exported once to
    ``~/.cache/polyhead/onnx``), ``"openvino"`` (the same export in OpenVINO, bfloat16 on CPUs that have
    it: the ``openvino`` extra) or ``"auto"`` (ONNX Runtime when the export works, else torch with a
    warning). An ``.onnx`` file runs in ONNX Runtime, or in OpenVINO when asked. ``device`` (default: ``--device``, see
    :func:`polyhead.device.current`) is where torch runs the model (it takes and returns CPU tensors) and
    which execution provider ONNX Runtime gets first.
    """
    from polyhead.device import place, resolve
    from polyhead.export import OnnxModel
    from polyhead.weights import load_card, load_model

    if runtime not in RUNTIMES:
        raise InputError(None, f"--runtime must be one of {', '.join(RUNTIMES)}, got '{runtime}'")
    path = Path(weights)
    if runtime == "openvino":
        from polyhead.openvino_runtime import OpenVinoModel, require_openvino

        require_openvino()  # one line naming the extra before any export work
        if path.suffix == ".onnx":
            return OpenVinoModel(path), load_card(path)
    if path.suffix == ".onnx":
        return OnnxModel(path, device=device), load_card(path)
    model, card = load_model(path, trust_pickle=trust_pickle)
    dev = resolve(device)
    if runtime == "torch":
        return place(for_cpu_inference(model), dev), card
    size = tuple(input_size or card.get("input_size") or ())
    if len(size) != 2:
        raise InputError(path, "ONNX Runtime needs a fixed input size: the card has no input_size")
    if runtime == "openvino":
        net = OpenVinoModel(cached_onnx(model, path, size))
        net.active_tasks = list(getattr(model, "active_tasks", net.tasks))
        return net, card
    try:
        onnx = OnnxModel(cached_onnx(model, path, size), device=dev)
    except Exception as e:  # noqa: BLE001 - the torch model still works
        if runtime == "onnx":
            raise InputError(path, f"ONNX export failed ({type(e).__name__}: {e})") from None
        warnings.warn(f"{path}: ONNX Runtime unavailable ({type(e).__name__}), running in torch", stacklevel=2)
        return place(model, dev), card
    onnx.active_tasks = list(getattr(model, "active_tasks", onnx.tasks))
    return onnx, card
