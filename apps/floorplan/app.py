"""FloorplanApp: what ``polyhead floorplan ...`` and the demo's floor-plan tab call.

>>> app = FloorplanApp().load()                                  # doctest: +SKIP
>>> result = app.predict_image(read_image("plan.jpg"))           # doctest: +SKIP
>>> [r["type"] for r in result.to_json()["rooms"]][:3]           # doctest: +SKIP
['bedroom', 'bathroom', 'living_kitchen_dining']
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from types import EllipsisType

import numpy as np
import torch

from polyhead.app import App, Command, DemoProbe, DemoTab
from polyhead.apps.floorplan.model import BOUNDARY_CLASSES, INPUT_SIZE, TASK, split_logits
from polyhead.cli import positive_int
from polyhead.encoders import DEFAULT_ENCODER
from polyhead.errors import InputError
from polyhead.preprocess import card_normalisation, check_input_size
from polyhead.tta import flip_tta, flips_for

#: plans whose long side exceeds this are downscaled before vectorisation (bounded memory and time)
MAX_SIDE = 2048


class FloorplanApp(App):
    name = "floorplan"
    title = "Floor plan"
    description = "floor-plan rasters -> walls, doors/windows, typed rooms; vectors (JSON/SVG) and a 3D mesh"
    examples = {
        "predict": "examples:\n  polyhead floorplan predict plan.jpg --out runs/predict\n"
        "  polyhead floorplan predict plans/ --scale 50 --3d\n"
        "  polyhead floorplan predict plans/ --no-ocr          # room types from the network alone",
        "train": "example:\n  polyhead floorplan train --data datasets/floorplan.yaml --imgsz 320 320 --epochs 16",
        "val": "example:\n  polyhead floorplan val --data datasets/floorplan.yaml --json runs/floorplan_val.json",
        "export": "example:\n  polyhead floorplan export --out weights/floorplan.onnx",
    }

    def __init__(self):
        self.model = None
        self.card: dict = {}
        self.imgsz = INPUT_SIZE
        self.scale: float | None = None  # pixels per metre
        self.mesh = False  # batch predict also writes the 3-D model (.glb + .ply)
        self.ocr = True  # read the printed room names and dimensions (when the OCR extra is installed)
        self.tta = False  # average the 4 mirrored runs (3.6x the network time; see docs/floorplan.md)

    overlay_suffix = ".png"  # plans are line art: PNG keeps the thin walls sharp
    artifact_suffixes = (".svg", ".geojson", ".glb", ".ply")

    # ------------------------------------------------------------ model
    def load(
        self,
        weights=None,
        imgsz=None,
        trust_pickle: bool = False,
        scale=None,
        mesh: bool = False,
        ocr: bool = True,
        tta: bool = False,
    ) -> FloorplanApp:
        """Load weights (default: ``weights/floorplan.safetensors``); ``.onnx`` runs on ONNX Runtime.
        ``ocr=False`` switches text reading off (room types from the network alone, no scale estimate);
        ``tta=True`` averages the network over the plan and its 3 mirror images."""
        import polyhead.apps.floorplan.model  # noqa: F401  (registers the head type before the card is built)
        from polyhead.runtime import load_network

        path = self.resolve_weights(weights)
        self.model, self.card = load_network(path, "torch", trust_pickle=trust_pickle)
        self.imgsz = check_input_size(tuple(imgsz or self.card.get("input_size", INPUT_SIZE)))
        self.scale = float(scale) if scale is not None else None  # a reload never keeps an earlier --scale
        self.mesh = bool(mesh)
        self.ocr = bool(ocr)
        self.tta = bool(tta)
        return self

    def ensure_loaded(self) -> None:
        if self.model is None:
            self.load()

    # ------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict_masks(self, rgb: np.ndarray, tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 plan -> ``(boundary ids, room ids)`` at the image's size (``tta``: None = loaded setting)."""
        from polyhead.apps.floorplan.data import prepare

        self.ensure_loaded()
        h, w = rgb.shape[:2]
        dummy = np.zeros((h, w), np.uint8)
        x, _, lb = prepare(rgb, dummy, dummy, self.imgsz, card_normalisation(self.card))
        out = flip_tta(self.model, x[None], flips_for(self.tta if tta is None else tta))
        out = out[TASK] if isinstance(out, dict) else out
        bl, rl = split_logits(out, len(BOUNDARY_CLASSES))
        b = lb.to_original_map(bl[0].argmax(0).numpy().astype(np.uint8))
        r = lb.to_original_map(rl[0].argmax(0).numpy().astype(np.uint8))
        return b, r

    def predict_image(
        self,
        rgb: np.ndarray,
        *,
        scale: float | None | EllipsisType = ...,
        mesh: bool | EllipsisType = ...,
        ocr: bool | EllipsisType = ...,
        tta: bool | EllipsisType = ...,
    ):
        """One RGB plan -> :class:`FloorplanResult` in original pixels (blank page -> empty result).

        Plans whose long side exceeds ``MAX_SIDE`` are downscaled first (one warning line); coordinates
        in the result stay in the original image's pixels. ``scale`` (pixels per metre, None: unknown)
        holds for this call only; left out, the loaded setting applies. ``mesh`` makes the result's
        extra files (``artifacts()``) include the 3-D model; the SVG and GeoJSON are always among them.
        ``ocr`` (default on) reads the printed text: room names reweight each room's type, dimension
        strings give the scale when ``scale`` is not given (see ``docs/floorplan.md``); without the OCR
        extra one line says text reading is off and the rest of the prediction is unchanged. ``tta``
        averages the network over the plan's mirror images (for this call; left out, the loaded setting).

        >>> doc = FloorplanApp().load().predict_image(read_image("plan.jpg")).to_json()   # doctest: +SKIP
        >>> room = doc["rooms"][0]                                                          # doctest: +SKIP
        >>> doc["scale"]["source"], room["network_type"], room["text"], room["type"]       # doctest: +SKIP
        ('dimensions', 'bedroom', ['KITCHEN', '3.2m x 2.6m'], 'living_kitchen_dining')
        """
        from polyhead.apps.floorplan.postprocess import FloorplanResult, apply_text, text_off, vectorise

        scale = self.scale if scale is ... else (float(scale) if scale else None)
        mesh = self.mesh if mesh is ... else bool(mesh)
        ocr = self.ocr if ocr is ... else bool(ocr)

        rgb = np.ascontiguousarray(rgb[..., :3]) if rgb.ndim == 3 else np.stack([rgb] * 3, -1)
        h, w = rgb.shape[:2]
        factor = 1.0
        work = rgb
        if max(h, w) > MAX_SIDE:
            import cv2

            factor = MAX_SIDE / max(h, w)
            work = cv2.resize(rgb, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
            warnings.warn(f"{w}x{h} plan downscaled to {work.shape[1]}x{work.shape[0]} for vectorisation", stacklevel=2)
        if _is_blank(work):
            return text_off(FloorplanResult.empty((h, w), scale), "blank page")
        b, r = self.predict_masks(work, tta=None if tta is ... else bool(tta))
        result = vectorise(b, r, scale=scale, unit=1 / factor, original_size=(h, w))
        result.mesh = mesh
        if not ocr:
            return text_off(result, "not asked for (ocr=False / --no-ocr)")
        from polyhead import ocr as ocr_engine

        if not ocr_engine.available():
            _say_once(ocr_engine.ocr_missing_message())
            return text_off(result, ocr_engine.ocr_missing_message())
        try:
            lines = [_scaled(ln, 1 / factor) for ln in ocr_engine.read_text(work)]
        except Exception as e:  # noqa: BLE001 - the OCR engine failing costs the text, not the plan
            return text_off(result, f"OCR failed: {type(e).__name__}: {str(e).strip()[:200]}")
        return apply_text(result, lines, user_scale=scale is not None)

    # ------------------------------------------------------------ CLI
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        if mode == "predict":
            parser.add_argument("--scale", type=float, help="pixels per metre: adds m² areas and sizes the 3D model")
            parser.add_argument("--3d", dest="mesh", action="store_true", help="also write a 3D mesh (.glb + .ply)")
            parser.add_argument(
                "--no-ocr",
                dest="ocr",
                action="store_false",
                help="do not read the printed text (room names, dimensions): network types, no scale estimate",
            )
            parser.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="network input size")
            parser.add_argument(
                "--tta", action="store_true", help="average the plan and its 3 mirror images (3.6x slower)"
            )
        elif mode == "train":
            parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name (see polyhead.encoders)")
        elif mode == "val":
            parser.add_argument("--batch", type=positive_int, default=4)
            parser.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size (default: card)")
            parser.add_argument(
                "--tta", action="store_true", help="average the plan and its 3 mirror images (3.6x slower)"
            )

    def load_options(self, args: argparse.Namespace) -> dict:
        if args.scale is not None and not args.scale > 0:
            raise InputError(None, "--scale must be a positive number of pixels per metre")
        return {
            "trust_pickle": args.trust_pickle,
            "scale": args.scale,
            "imgsz": args.imgsz,
            "mesh": args.mesh,
            "ocr": args.ocr,
            "tta": args.tta,
        }

    def summary_row(self, doc: dict) -> dict:
        """Rooms, walls, doors, windows, the room area (m^2 with --scale) and each room type's share of it."""
        totals = doc.get("totals") or {}
        row: dict = {k: totals.get(k) for k in ("rooms", "walls", "doors", "windows", "area_m2")}
        area = sum(r.get("area_px", 0) for r in doc.get("rooms", []))
        for room in doc.get("rooms", []):
            key = f"{room.get('type')}_share"
            row[key] = round(row.get(key, 0) + room.get("area_px", 0) / area, 4) if area else 0.0
        return row

    def run_train(self, args: argparse.Namespace) -> int:
        from polyhead.apps.floorplan.training import train

        return train(args)

    def run_val(self, args: argparse.Namespace) -> int:
        from polyhead.apps.floorplan.data import FloorplanDataset, list_items, load_spec
        from polyhead.apps.floorplan.evaluate import evaluate
        from polyhead.io.writers import write_json

        self.load(args.weights, trust_pickle=args.trust_pickle, imgsz=args.imgsz)
        spec = load_spec(args.data)
        ds = FloorplanDataset(
            list_items(spec, args.split), imgsz=self.imgsz, norm=card_normalisation(self.card), cache=False
        )  # the card's normalisation: an EfficientNet-Lite model reads (x - 127) / 128, not ImageNet mean/std
        metrics = evaluate(self.model, ds, batch_size=args.batch, detailed=True, tta=args.tta)
        if ds.bad:
            print(f"skipped {len(ds.bad)} unreadable plan(s): {sorted(ds.bad)}", file=sys.stderr)
        print(json.dumps(metrics, indent=2))
        if args.json:
            doc = {"weights": str(args.weights or self.default_weights), "data": str(args.data), "split": args.split}
            doc["tta"] = args.tta
            write_json(args.json, {**doc, "plans": len(ds) - len(ds.bad), "metrics": metrics})
        return 0

    def extra_modes(self) -> dict[str, Command]:
        from polyhead.ship import ship_command

        return {"ship": ship_command("floorplan", "polyhead.apps.floorplan.training")}

    def benchmarks(self) -> dict[str, Command]:
        return {
            "floorplan": Command(
                "plans/s at 512x512, vectorisation and 3D extrusion times",
                _lazy("polyhead.apps.floorplan.bench", "add_bench_arguments"),
                _lazy("polyhead.apps.floorplan.bench", "run_bench"),
            )
        }

    def demo_tabs(self) -> list[DemoTab]:
        from polyhead.apps.floorplan.demo import EXAMPLE, build_tab

        return [
            DemoTab(
                "Floor plan",
                "tab-floorplan",
                lambda: build_tab(self),
                example=EXAMPLE,
                input_id="floorplan-in-img",
                run_id="floorplan-run",
                output_id="floorplan-out-img",
                json_id="floorplan-json",
                json_keys=("rooms", "walls", "openings"),
            )
        ]

    def demo_probes(self) -> list[DemoProbe]:
        from polyhead.apps.floorplan.demo import EXAMPLE

        def inputs():
            from gradio_client import handle_file

            return [handle_file(str(EXAMPLE)), 0.0]

        def check(answer) -> bool:
            doc = answer[-1]
            return isinstance(doc, dict) and {"rooms", "walls", "openings"} <= set(doc)

        return [DemoProbe("/floorplan_image", inputs, check)]


_said: set[str] = set()


def _say_once(message: str) -> None:
    """One line on stderr per process (a folder of plans says "text reading off" once, not per plan)."""
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def _scaled(line, k: float):
    """An OCR line of the downscaled working image in original pixels."""
    if k == 1:
        return line
    from polyhead.ocr import TextLine

    return TextLine(line.text, tuple(v * k for v in line.box), line.score)


def _is_blank(rgb: np.ndarray) -> bool:
    """A page with (almost) no ink: nearly uniform grey levels."""
    grey = rgb.mean(2) if rgb.ndim == 3 else rgb
    return float(grey.std()) < 2.0 or float((np.abs(grey - np.median(grey)) > 40).mean()) < 0.001


def _lazy(module: str, attr: str):
    """Import the function only when the mode is used (keeps ``polyhead --help`` fast)."""

    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call
