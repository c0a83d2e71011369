"""OpenVINO runner for an exported polyhead ONNX file, with the call interface of torch and ONNX Runtime.

On CPUs with AMX or AVX-512 bfloat16 support OpenVINO runs the convolutions in bfloat16 (``precision
"auto"``), which ONNX Runtime's CPU provider cannot; elsewhere it runs float32. Optional extra:
``pip install 'polyhead[openvino]'``. Nothing is downloaded: the runtime and its CPU plugin are in the wheel.

>>> net = OpenVinoModel("model.onnx")                       # doctest: +SKIP
>>> net(torch.zeros(1, 3, 384, 640))["drivable"].shape     # doctest: +SKIP
torch.Size([1, 2, 48, 80])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from polyhead.errors import InputError

PRECISIONS = ("auto", "bf16", "f32")
MISSING = "the OpenVINO runtime is not installed (pip install 'polyhead[openvino]')"


def require_openvino():
    """The ``openvino`` module, or a one-line :class:`InputError` naming the extra to install."""
    try:
        import openvino
    except ImportError:
        raise InputError(None, MISSING) from None
    return openvino


def cpu_has_bf16(core=None) -> bool:
    """True when OpenVINO's CPU plugin reports native bfloat16 (AMX / AVX-512 BF16)."""
    core = core or require_openvino().Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _polyhead_metadata(path: Path) -> dict:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        raise InputError(path, f"not a loadable ONNX model ({type(e).__name__})") from None
    raw = next((p.value for p in proto.metadata_props if p.key == "polyhead"), None)
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise InputError(path, "the 'polyhead' metadata of this ONNX file is not valid JSON") from None


class OpenVinoModel:
    """Runs an exported model with OpenVINO on the CPU; ``model(x)`` returns ``{task: tensor}``.

    One compiled model per batch size (static shapes plan best), opened on first use and kept.
    ``precision``: ``"auto"`` (bfloat16 where the CPU has it natively, else float32), ``"bf16"`` or
    ``"f32"``; ``threads`` caps the inference threads (default: OpenVINO's, one per core)."""

    def __init__(self, path: str | Path, precision: str = "auto", threads: int | None = None):
        ov = require_openvino()
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "ONNX file not found")
        if precision not in PRECISIONS:
            raise InputError(None, f"--precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
        self.path = path
        self.metadata = _polyhead_metadata(path)
        self.core = ov.Core()
        try:
            self._model = self.core.read_model(str(path))
        except Exception as e:  # noqa: BLE001
            raise InputError(path, f"OpenVINO cannot read this ONNX model ({type(e).__name__})") from None
        self.tasks = [o.get_any_name() for o in self._model.outputs]
        self.active_tasks = list(self.tasks)
        if precision == "auto":
            precision = "bf16" if cpu_has_bf16(self.core) else "f32"
        self.precision = precision
        self._config: dict = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        size = self.metadata.get("input_size") if isinstance(self.metadata, dict) else None
        self.input_size = tuple(size) if size else None
        self._compiled: dict[tuple, object] = {}

    def _request(self, shape: tuple[int, ...]):
        if shape not in self._compiled:
            model = self._model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            try:
                compiled = self.core.compile_model(model, "CPU", self._config)
            except Exception as e:  # noqa: BLE001 - a shape the network cannot take
                raise InputError(self.path, f"OpenVINO cannot run input {list(shape)} ({type(e).__name__})") from None
            self._compiled[shape] = compiled.create_infer_request()
        return self._compiled[shape]

    def __call__(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = list(tasks or self.active_tasks)
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)
        if self.input_size and tuple(arr.shape[2:]) != tuple(self.input_size):
            h, w = self.input_size
            raise InputError(self.path, f"this export takes {w}x{h} input, got {arr.shape[3]}x{arr.shape[2]}")
        request = self._request(tuple(arr.shape))
        request.infer({0: arr})
        # copies: the request's output buffers are reused by the next call
        return {t: torch.from_numpy(np.array(request.get_tensor(t).data, copy=True)) for t in wanted}

    def eval(self) -> OpenVinoModel:
        return self
