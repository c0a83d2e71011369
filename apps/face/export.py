"""``polyhead face export``: the three cascade nets and the attribute model as ONNX; the cascade logic
(pyramid, NMS, crops, alignment) stays in Python and runs the same way on either runtime.

Convention: ``--out face.onnx`` writes four files side by side and the model card:

- ``face.onnx``: P-Net, fully convolutional (dynamic batch, height and width: it runs on every pyramid
  level); its ``polyhead`` metadata names the other parts and holds the detector settings;
- ``face.rnet.onnx``, ``face.onet.onnx``: R-Net (24x24 crops) and O-Net (48x48), dynamic batch;
- ``face.attr.onnx``: age and gender on aligned 112x112 crops (dynamic batch), when the weights have it;
- ``face.single.onnx``: the single-shot detector (dynamic batch, height and width, multiples of 32), when
  the weights have it;
- ``face.json``: a copy of the model card.

``--weights face.onnx`` loads all of them (``load_face_onnx``); a missing or corrupt part is a one-line
error naming the file.

>>> export_face("weights/face.safetensors", "runs/face.onnx")        # doctest: +SKIP
>>> parts, card = load_face_onnx("runs/face.onnx")                     # doctest: +SKIP
>>> FaceApp().load("runs/face.onnx").predict_image(rgb)                 # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from polyhead.errors import InputError

NET_OUTPUTS = ["cls", "box", "lmk"]
CROP_SIZES = {"rnet": 24, "onet": 48}
SIDE_PARTS = ("rnet", "onet", "attr", "single")  # the files beside the main (P-Net) one


def part_files(out: str | Path) -> dict[str, Path]:
    """The files of an export at ``out`` (``x.onnx`` -> P-Net ``x.onnx``, ``x.rnet.onnx``, ...).

    >>> {k: v.name for k, v in part_files("runs/face.onnx").items()}  # doctest: +NORMALIZE_WHITESPACE
    {'pnet': 'face.onnx', 'rnet': 'face.rnet.onnx', 'onet': 'face.onet.onnx', 'attr': 'face.attr.onnx',
     'single': 'face.single.onnx'}
    """
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "pnet": out,
        **{part: stem.with_name(f"{stem.name}.{part}.onnx") for part in SIDE_PARTS},
    }


def export_spec(part: str, net) -> tuple[torch.Tensor, list[str], bool]:
    """``(example input, output names, dynamic height/width)`` of a multi-task part's ONNX export (the
    single-shot detector takes any size, the attribute model its fixed crop size); used by ``face export``
    and by the cached export the app runs in ONNX Runtime."""
    if part == "single":
        from polyhead.apps.face.single_shot import TASK

        return torch.zeros(1, 3, 480, 640), [TASK], True
    return torch.zeros(1, 3, *net.config.get("input_size", (112, 112))), list(net.tasks), False


def part_metadata(part: str, net) -> dict:
    """The ``polyhead`` metadata of a multi-task part's export: its name, input normalisation and config
    (what reads its outputs needs it, e.g. the age head's bins)."""
    mean, std = net.normalisation
    return {
        "app": "face",
        "part": part,
        "normalisation": {"mean": list(mean), "std": list(std)},
        "config": getattr(net, "config", None) or {},
    }


def export_face(
    weights: str | Path, out: str | Path, tasks: list[str] | None = None, detector: dict | None = None
) -> dict[str, Path]:
    """Export the cascade (+ attribute model) of a face weights file; returns ``{part: file}``.

    The nets are exported in their inference arrangement (:class:`~polyhead.apps.face.cascade.InferenceNet`,
    which gives the same outputs as the trained layout). ``tasks`` limits the attribute heads;
    ``["none"]`` leaves the attribute model out. ``detector`` overrides the card's detector settings.
    """
    from polyhead.apps.face.cascade import InferenceNet
    from polyhead.apps.face.model import load_face_weights
    from polyhead.export import export_module, export_onnx

    weights, out = Path(weights), Path(out)
    if out.suffix != ".onnx":
        raise InputError(out, "export target must end in .onnx (the other parts are written beside it)")
    parts, card = load_face_weights(weights)
    missing = [s for s in ("pnet", "rnet", "onet") if s not in parts]
    if missing:
        raise InputError(weights, f"weights lack the cascade stage(s) {missing}")
    files = part_files(out)
    wanted = [t for t in (tasks or []) if t != "none"]
    with_attr = "attr" in parts and not (tasks and not wanted)
    names = {k: files[k].name for k in ("rnet", "onet")}
    if with_attr:
        names["attr"] = files["attr"].name
    with_single = "single" in parts
    if with_single:
        names["single"] = files["single"].name
    det = {**card.get("detector", {}), **(detector or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        export_module(
            InferenceNet(parts["pnet"]),
            files["pnet"],
            torch.zeros(1, 3, 24, 32),
            NET_OUTPUTS,
            dynamic_spatial=True,
            metadata={"app": "face", "part": "pnet", "parts": names, "detector": det},
        )
        for stage, size in CROP_SIZES.items():
            export_module(
                InferenceNet(parts[stage]),
                files[stage],
                torch.zeros(2, 3, size, size),
                NET_OUTPUTS,
                metadata={"app": "face", "part": stage, "input_size": [size, size]},
            )
        if with_attr:
            attr = parts["attr"]
            size = tuple(export_spec("attr", attr)[0].shape[-2:])
            export_onnx(attr, files["attr"], size, tasks=wanted or None, metadata=part_metadata("attr", attr))
        if with_single:
            single = parts["single"]
            example, names, dynamic = export_spec("single", single)
            export_module(single, files["single"], example, names, dynamic, metadata=part_metadata("single", single))
    for part, kept in (("attr", with_attr), ("single", with_single)):
        if not kept and files[part].is_file():
            files[part].unlink()  # a part left from an earlier export would not match these nets
    card_src, card_dst = weights.with_suffix(".json"), out.with_suffix(".json")
    if card_src.is_file() and card_src.resolve() != card_dst.resolve():
        shutil.copyfile(card_src, card_dst)
    return {k: v for k, v in files.items() if k in names or k == "pnet"}


def load_face_onnx(path: str | Path) -> tuple[dict, dict]:
    """``({"pnet": OnnxModel, "rnet": ..., "onet": ..., ["attr": ...]}, card)`` from an export's main file.

    The cascade nets run on one ONNX Runtime thread each (a batch is split across the cores by the
    detector, as in torch); the attribute model on as many threads as torch has.
    """
    import json

    from polyhead.export import OnnxModel

    path = Path(path)
    pnet = OnnxModel(path, threads=1)
    meta = pnet.metadata
    if not isinstance(meta, dict) or meta.get("app") != "face" or meta.get("part") != "pnet":
        raise InputError(path, "not the main file of a face export (write one with `polyhead face export`)")
    names = meta.get("parts", {})
    parts: dict = {"pnet": pnet}
    for part in SIDE_PARTS:
        if part not in names:
            if part in ("attr", "single"):
                continue
            raise InputError(path, f"the export's metadata names no {part} file")
        f = path.parent / str(names[part])
        if not f.is_file():
            raise InputError(f, f"missing: the {part} part of the face export {path.name}")
        net = OnnxModel(f, threads=1 if part in CROP_SIZES else torch.get_num_threads())
        if net.metadata.get("part") != part:
            raise InputError(f, f"not the {part} part of a face export")
        if part in ("attr", "single"):
            norm = net.metadata.get("normalisation") or {}
            if "mean" not in norm or "std" not in norm:
                raise InputError(f, f"the {part} part has no input normalisation in its metadata")
            net.normalisation = (tuple(norm["mean"]), tuple(norm["std"]))
            net.config = net.metadata.get("config") or {}
        parts[part] = net
    card: dict = {}
    card_file = path.with_suffix(".json")
    if card_file.is_file():
        try:
            card = json.loads(card_file.read_text())
        except json.JSONDecodeError as e:
            raise InputError(card_file, f"model card is not valid JSON ({e.msg})") from None
    card["detector"] = {**card.get("detector", {}), **meta.get("detector", {})}  # the export's settings win
    return parts, card
