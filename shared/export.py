"""ONNX export of any MultiTaskModel and an ONNX Runtime runner with the same call interface.

>>> export_onnx(model, "model.onnx", (384, 640))          # doctest: +SKIP
>>> OnnxModel("model.onnx")(torch.zeros(1, 3, 384, 640))   # doctest: +SKIP
{'det': tensor(...), 'drivable': tensor(...), 'lane': tensor(...)}
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from polyhead.errors import InputError
from polyhead.io.writers import atomic_path
from polyhead.model import MultiTaskModel


class _TupleOutputs(nn.Module):
    def __init__(self, model: MultiTaskModel, tasks: list[str]):
        super().__init__()
        self.model, self.tasks = model, tasks

    def forward(self, x: torch.Tensor):
        out = self.model(x, self.tasks)
        return tuple(out[t] for t in self.tasks)


def export_onnx(
    model: MultiTaskModel,
    path: str | Path,
    input_size: tuple[int, int],
    tasks: Sequence[str] | None = None,
    opset: int = 17,
) -> Path:
    """Export to ONNX (dynamic batch, fixed spatial size) with task names in the metadata."""
    import onnx

    path = Path(path)
    tasks = list(tasks or model.tasks)
    unknown = [t for t in tasks if t not in model.tasks]
    if unknown:
        raise InputError(None, f"--tasks: unknown head(s) {', '.join(unknown)}; the model has {', '.join(model.tasks)}")
    model = model.eval()
    wrapper = _TupleOutputs(model, tasks).eval()
    x = torch.zeros(1, 3, *input_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (x,),
            str(tmp),
            input_names=["images"],
            output_names=tasks,
            opset_version=opset,
            dynamic_axes={"images": {0: "batch"}, **{t: {0: "batch"} for t in tasks}},
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        meta = proto.metadata_props.add()
        meta.key, meta.value = "polyhead", json.dumps({"tasks": tasks, "input_size": list(input_size)})
        onnx.save(proto, str(tmp))
    return path


class OnnxModel:
    """Runs an exported model with ONNX Runtime; ``model(x)`` returns ``{task: tensor}`` like torch."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise InputError(path, "ONNX file not found")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # no busy-waiting between ops: pipelines (decode | infer | encode) need the spare cycles
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise InputError(path, f"not a loadable ONNX model ({type(e).__name__})") from None
        self.tasks = [o.name for o in self.session.get_outputs()]
        self.active_tasks = list(self.tasks)
        meta = self.session.get_modelmeta().custom_metadata_map.get("polyhead")
        self.input_size = tuple(json.loads(meta)["input_size"]) if meta else None

    def __call__(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = list(tasks or self.active_tasks)
        outs = self.session.run(wanted, {"images": np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})
        return {t: torch.from_numpy(o) for t, o in zip(wanted, outs, strict=True)}

    def eval(self) -> OnnxModel:
        return self
