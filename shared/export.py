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


class _DictOutputs(nn.Module):
    """A module returning ``{name: tensor}`` as a tuple in a fixed order (ONNX outputs are positional)."""

    def __init__(self, module: nn.Module, names: list[str]):
        super().__init__()
        self.module, self.names = module, names

    def forward(self, x: torch.Tensor):
        out = self.module(x)
        return tuple(out[n] for n in self.names) if isinstance(out, dict) else tuple(out)


def export_module(
    module: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    output_names: Sequence[str],
    dynamic_spatial: bool = False,
    metadata: dict | None = None,
    opset: int = 17,
) -> Path:
    """Export a module whose ``forward(x)`` returns ``{name: tensor}`` (or a tuple in ``output_names``
    order) to ONNX, atomically: input ``images``, a dynamic batch axis, and with ``dynamic_spatial``
    dynamic height and width too (fully convolutional nets such as the face cascade's P-Net).
    ``metadata`` is stored as JSON under the ``polyhead`` key and comes back as ``OnnxModel.metadata``.

    >>> export_module(pnet, "pnet.onnx", torch.zeros(1, 3, 12, 12), ["cls", "box", "lmk"], True)  # doctest: +SKIP
    """
    import onnx

    path = Path(path)
    names = list(output_names)
    module = module.eval()
    if dynamic_spatial:
        import copy

        from ultralytics.nn.modules.head import Detect

        if any(isinstance(m, Detect) for m in module.modules()):
            module = copy.deepcopy(module)
            for m in module.modules():
                if isinstance(m, Detect):
                    m.dynamic = True  # anchors from each input's shape, not cached from the last forward
    wrapper = _DictOutputs(module, names).eval()
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_spatial else {0: "batch"}
    out_axes = {n: ({0: "batch", 2: "out_h", 3: "out_w"} if dynamic_spatial else {0: "batch"}) for n in names}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=names,
            opset_version=opset,
            dynamic_axes={"images": axes, **out_axes},
            dynamo=False,
        )
        if metadata is not None:
            proto = onnx.load(str(tmp))
            meta = proto.metadata_props.add()
            meta.key, meta.value = "polyhead", json.dumps(metadata)
            onnx.save(proto, str(tmp))
    return path


#: bumped whenever the exported graph changes for the same weights, so cached exports are redone
EXPORT_VERSION = 2


def export_onnx(
    model: MultiTaskModel,
    path: str | Path,
    input_size: tuple[int, int],
    tasks: Sequence[str] | None = None,
    opset: int = 17,
    metadata: dict | None = None,
) -> Path:
    """Export to ONNX (dynamic batch, fixed spatial size) with task names in the metadata
    (plus ``metadata``, e.g. the input normalisation)."""
    tasks = list(tasks or model.tasks)
    unknown = [t for t in tasks if t not in model.tasks]
    if unknown:
        raise InputError(None, f"--tasks: unknown head(s) {', '.join(unknown)}; the model has {', '.join(model.tasks)}")
    model = model.eval()
    wrapper = _TupleOutputs(model, tasks).eval()
    meta = {**(metadata or {}), "tasks": tasks, "input_size": list(input_size)}
    return export_module(wrapper, path, torch.zeros(1, 3, *input_size), tasks, metadata=meta, opset=opset)


PINNED_BATCHES = 4  # batch sizes 1..4 get a session planned for exactly that size


def _session_options(ort, threads: int | None):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    # no busy-waiting between ops: pipelines (decode | infer | encode) need the spare cycles
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxModel:
    """Runs an exported model with ONNX Runtime; ``model(x)`` returns ``{task: tensor}`` like torch."""

    def __init__(self, path: str | Path, threads: int | None = None, device=None):
        """``device`` (default :func:`polyhead.device.current`): a CUDA device puts ONNX Runtime's CUDA
        execution provider first when it is installed (else a note and the CPU)."""
        import onnxruntime as ort

        from polyhead.device import onnx_provider_options, onnx_providers, resolve

        path = Path(path)
        if not path.is_file():
            raise InputError(path, "ONNX file not found")
        self.path = path
        dev = resolve(device)
        self.providers = onnx_providers(dev)
        provider_options = onnx_provider_options(dev, self.providers)

        def open_session(batch: int | None):
            # with every other input dimension fixed, a session per (small) batch size with the batch
            # axis pinned lets ONNX Runtime plan static shapes (driving model at 640x384: 35.8 ms against
            # 44.2 ms with it free); nets with dynamic height/width (P-Net) keep one free session
            opts = _session_options(ort, threads)
            if batch is not None:
                opts.add_free_dimension_override_by_name("batch", batch)
            return ort.InferenceSession(str(path), opts, providers=self.providers, provider_options=provider_options)

        self._open_session = open_session
        try:
            self.session = open_session(None)
        except Exception as e:
            raise InputError(path, f"not a loadable ONNX model ({type(e).__name__})") from None
        shape = self.session.get_inputs()[0].shape
        self._pin_batch = len(shape) > 1 and shape[0] == "batch" and all(isinstance(d, int) for d in shape[1:])
        self._sessions: dict[int, object] = {}
        self.tasks = [o.name for o in self.session.get_outputs()]
        self.active_tasks = list(self.tasks)
        meta = self.session.get_modelmeta().custom_metadata_map.get("polyhead")
        try:
            self.metadata: dict = json.loads(meta) if meta else {}
        except json.JSONDecodeError:
            raise InputError(path, "the 'polyhead' metadata of this ONNX file is not valid JSON") from None
        size = self.metadata.get("input_size") if isinstance(self.metadata, dict) else None
        self.input_size = tuple(size) if size else None

    def __call__(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = list(tasks or self.active_tasks)
        outs = self.session_for(len(x)).run(
            wanted, {"images": np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)}
        )
        return {t: torch.from_numpy(o) for t, o in zip(wanted, outs, strict=True)}

    def session_for(self, batch: int):
        """The session for ``batch`` images: one planned for that batch size (opened on first use, then
        kept) for the sizes up to :data:`PINNED_BATCHES` of a net with fixed height and width, else the
        session with a free batch axis (so a cascade's changing batch sizes never pile up sessions)."""
        if not self._pin_batch or batch > PINNED_BATCHES:
            return self.session
        if batch not in self._sessions:
            self._sessions[batch] = self._open_session(batch)
        return self._sessions[batch]

    def eval(self) -> OnnxModel:
        return self
