"""MedicalApp: what ``polyhead medical ...`` and the demo's medical tab call.

>>> app = MedicalApp().load("ph2")                        # shipped lesion + diagnosis weights
>>> result = app.predict_image(read_image("lesion.jpg"))  # doctest: +SKIP
>>> result.to_json()["diagnosis"]["label"]                # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from polyhead.app import App, Command, DemoProbe, DemoTab, lazy
from polyhead.apps.medical.data import to_rgb
from polyhead.apps.medical.postprocess import MedicalResult, Predictor, default_window
from polyhead.cli import non_negative_int, positive_int
from polyhead.encoders import DEFAULT_ENCODER
from polyhead.errors import InputError
from polyhead.preprocess import card_normalisation
from polyhead.weights import WEIGHTS_DIR, load_card

SHIPPED = {"ph2": "medical-ph2", "drive": "medical-drive"}


class MedicalApp(App):
    name = "medical"
    named_weights = SHIPPED
    title = "Medical"
    description = "lesion / structure masks + image-level diagnosis; sliding windows; NIfTI volumes and meshes"
    examples = {
        "predict": "examples:\n  polyhead medical predict dermoscopy/ --weights ph2 --out runs/medical\n"
        "  polyhead medical predict fundus.png --weights drive --tta\n"
        "  polyhead medical predict case_0000.nii.gz --weights my.safetensors --mesh stl",
        "train": "examples:\n  polyhead medical train --data datasets/medical-ph2.yaml --epochs 30\n"
        "  polyhead medical train --data datasets/medical-drive.yaml --patches-per-image 16",
        "val": "example:\n  polyhead medical val --data datasets/medical-ph2.yaml --weights ph2 --json runs/val.json",
    }

    def __init__(self):
        self.model = None
        self.card: dict = {}
        self.predictor: Predictor | None = None
        self.weights_path: Path | None = None

    @property
    def default_weights(self) -> Path:
        return WEIGHTS_DIR / f"{SHIPPED['ph2']}.safetensors"

    # ------------------------------------------------------------ model
    def load(
        self,
        weights=None,
        tta: bool = False,
        threshold: float | None = None,
        overlap: float = 0.5,
        min_area: int = 0,
        tasks=None,
        trust_pickle: bool = False,
        keep_largest: bool | None = None,
        window: tuple[int, int] | None = None,
        runtime: str = "torch",
    ) -> MedicalApp:
        """Load weights (a path or a shipped name). ``window``: sliding-window tile of patch models (default:
        the card's ``input.window``, else :func:`default_window`); it must be a multiple of 32 pixels.
        ``runtime="onnx"`` runs safetensors weights in ONNX Runtime, exported once at the window size (patch
        models) or the input size (whole-image models). ``threshold``: foreground probability of a binary
        mask (default: the card's ``postprocess.threshold``, fitted on the training images, else 0.5)."""
        from polyhead.runtime import load_network

        path = self.resolve_weights(weights)
        if not 0 <= overlap < 1:
            raise InputError(None, f"--overlap must be in [0, 1), got {overlap}")
        if window is not None and (len(window) != 2 or any(int(v) < 32 or int(v) % 32 for v in window)):
            raise InputError(None, f"--window must be H W, multiples of 32 (at least 32), got {list(window)}")
        self.card = load_card(path)
        inp = self.card.get("input", {"mode": "resize", "size": self.card.get("input_size", [256, 320])})
        if inp["mode"] == "patch" and window is None:
            window = tuple(inp.get("window") or default_window(tuple(inp["size"])))
        size = tuple(window) if inp["mode"] == "patch" else tuple(inp["size"])
        self.model, self.card = load_network(path, runtime, input_size=size, trust_pickle=trust_pickle)
        if tasks:
            unknown = set(tasks) - set(self.model.tasks)
            if unknown:
                raise InputError(path, f"model has no task {sorted(unknown)}; it has {self.model.tasks}")
            self.model.active_tasks = list(tasks)
        calibration = self.card.get("calibration") or {}  # cards before calibration: temperature 1
        post = self.card.get("postprocess", {})
        self.predictor = Predictor(
            self.model,
            self.card.get("classes", ["background", "foreground"]),
            self.card.get("diagnosis_classes", []),
            inp["mode"],
            tuple(inp["size"]),
            overlap=overlap,
            tta=tta,
            threshold=float(threshold if threshold is not None else post.get("threshold", 0.5)),
            min_area=min_area,
            keep_largest=self.card.get("postprocess", {}).get("keep_largest", False)
            if keep_largest is None
            else keep_largest,
            norm=card_normalisation(self.card),
            labels=self.card.get("labels") or {},
            temperature={h: float(c["temperature"]) for h, c in calibration.items() if isinstance(c, dict)},
            window=window,
            fov_diameter=self.card.get("fov_diameter"),
            fixed_window=not isinstance(self.model, torch.nn.Module),  # ONNX: exported at the window size
            contrast=inp.get("contrast"),
        )
        self.weights_path = path
        return self

    def ensure_loaded(self) -> None:
        if self.predictor is None:
            self.load()

    # ------------------------------------------------------------ inference
    def predict_image(self, rgb: np.ndarray) -> MedicalResult:
        """One image (RGB, grey or 16-bit) -> mask, regions and diagnosis in original pixels."""
        self.ensure_loaded()
        return self.predictor(to_rgb(rgb))

    def predict(self, source, out_dir: str | Path, axis: int = 2, mesh: str | None = None, **options):
        """Images, folders and videos as every app; NIfTI volumes (``.nii``/``.nii.gz``) slice by slice.

        Images, videos and volumes share one set of unique output names (``case.jpg`` and
        ``case.nii.gz`` never share ``case.json``), and a volume's outputs never replace a file this
        program did not write (a BIDS sidecar ``sub-01_T1w.json`` beside ``sub-01_T1w.nii.gz``).
        """
        from polyhead.apps.medical.volume import is_nifti
        from polyhead.io import SourceItem
        from polyhead.predict import BatchReport, item_key, unique_names

        src = Path(str(source))
        if is_nifti(src):
            volumes, has_images = [src], False
        elif src.is_dir():
            files = [p for p in src.iterdir() if p.is_file()]
            out_abs = Path(out_dir).resolve()
            volumes = sorted(p for p in files if is_nifti(p) and p.resolve().parent != out_abs)  # not our outputs
            has_images = any(p.suffix.lower() in _image_like() for p in files)
        else:  # an image, a video, a glob or a camera index
            volumes, has_images = [], True
        if not volumes and not has_images:
            raise InputError(source, "no images, videos or NIfTI volumes found")
        vol_items = [SourceItem(v, "volume") for v in volumes]
        options = self.batch_options(out_dir, options)
        run_files = options["run_files"]
        if has_images:
            report = super().predict(source, out_dir, also_named=vol_items, **options)
        else:
            run_files.check()
            run_files.begin(vol_items)
            if Path(out_dir).exists() and not Path(out_dir).is_dir():
                raise InputError(out_dir, "--out is a file, not a folder")
            from polyhead.io.writers import sweep_temp_files

            sweep_temp_files(out_dir)
            report = BatchReport(names=unique_names(vol_items, out_dir))
        for item in vol_items:
            name = report.names[item_key(item)]
            skipped = len(report.skipped)
            self._predict_volume_into(item, name, Path(out_dir), axis, mesh, report, options.get("resume", False))
            if len(report.skipped) > skipped:
                run_files.skipped(item, name, report.skipped[-1][1])
            else:
                run_files.resumed(item, name, Path(out_dir) / f"{name}.json")
        if vol_items:
            report.run_files = run_files.finish()  # summary.csv again, now with a row per volume
        return report

    def _predict_volume_into(self, item, name: str, out: Path, axis: int, mesh, report, resume: bool) -> None:
        """One volume into ``out`` as ``<name>_pred.nii.gz`` + ``<name>.json``; any error skips it alone."""
        import sys

        from polyhead.apps.medical.volume_predict import predict_volume
        from polyhead.predict import json_claims, problem_of

        if resume and json_claims(out / f"{name}.json", item):
            report.resumed += 1
            return
        try:
            written, slices = predict_volume(self, item.path, out, name, axis=axis, mesh=mesh)
            report.written.extend(written)
            report.frames += slices
        except Exception as e:  # noqa: BLE001 - one bad volume never costs the others
            problem = problem_of(e, str(item.path))
            print(f"skipped {item.path}: {problem}", file=sys.stderr)
            report.skipped.append((str(item.path), problem))

    # ------------------------------------------------------------ CLI
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        if mode in ("predict", "val"):
            parser.set_defaults(weights=None)
            parser.add_argument("--tta", action="store_true", help="average flipped runs (4x slower)")
        if mode == "predict":
            parser.add_argument(
                "--threshold", type=float, help="foreground probability threshold (default: the card's, else 0.5)"
            )
            parser.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap (patch models)")
            parser.add_argument(
                "--window",
                type=positive_int,
                nargs=2,
                metavar=("H", "W"),
                help="sliding-window tile (patch models; multiples of 32; default: the card's, else 4x the patch)",
            )
            parser.add_argument(
                "--min-area", type=non_negative_int, default=0, help="drop regions smaller than this (pixels)"
            )
            parser.add_argument(
                "--keep-largest",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="keep only the largest region per class (default: the model card's choice)",
            )
            parser.add_argument("--tasks", nargs="+", help="run only these heads (mask, diagnosis, melanoma...)")
            parser.add_argument("--axis", type=int, default=2, choices=[0, 1, 2], help="slice axis of volumes")
            parser.add_argument(
                "--runtime",
                choices=["auto", "torch", "onnx", "openvino"],
                default="torch",
                help="torch eager, ONNX Runtime or OpenVINO (bfloat16 on CPUs with AMX; the openvino extra); "
                "exported once at the window / input size and cached",
            )
            parser.add_argument(
                "--mesh",
                choices=["ply", "stl", "obj", "glb"],
                help="also write a surface mesh of each predicted volume",
            )
        elif mode == "train":
            parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name (see polyhead.encoders)")
            parser.add_argument(
                "--tasks", nargs="+", help="train only these heads (mask and the dataset's image heads)"
            )
            parser.add_argument(
                "--patches-per-image",
                type=int,
                default=8,
                help="random patches per image and epoch (patch-mode datasets)",
            )
            parser.add_argument(
                "--mask-stride",
                type=int,
                default=2,
                choices=[1, 2, 4],
                help="finest decoder level (1: full resolution)",
            )
            parser.add_argument("--neck-channels", type=positive_int, default=32)
            parser.add_argument("--dice-weight", type=float, default=1.0, help="Dice term of the mask loss")
            parser.add_argument(
                "--lovasz-weight", type=float, default=0.0, help="Lovasz-softmax term of the mask loss (smp's)"
            )
        elif mode == "val":
            parser.add_argument("--no-hd95", action="store_true", help="skip the (slower) Hausdorff distance")
            parser.add_argument(
                "--plots",
                help="folder for the reliability diagrams (default: beside --json, else runs/val/medical)",
            )
            parser.add_argument(
                "--keep-largest",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="keep only the largest region per class (default: the model card's choice)",
            )

    def predict_options(self, args: argparse.Namespace) -> dict:
        return {"axis": args.axis, "mesh": args.mesh}

    def load_options(self, args: argparse.Namespace) -> dict:
        return {
            "tta": args.tta,
            "threshold": args.threshold,
            "overlap": args.overlap,
            "min_area": args.min_area,
            "keep_largest": args.keep_largest,
            "tasks": args.tasks,
            "trust_pickle": args.trust_pickle,
            "window": tuple(args.window) if args.window else None,
            "runtime": getattr(args, "runtime", "torch"),
        }

    def summary_row(self, doc: dict) -> dict:
        """One image's ``summary.csv`` row (the core adds the ``image`` column): per mask class its area in
        pixels (and mm² when the pixel size is known), share and region count; the diagnosis with its
        probabilities (``p_<class>``) and every further image head (``melanoma``: ``p_melanoma_<class>``).

        >>> row = MedicalApp().summary_row({"classes": {"lesion": {"area_px": 900, "share": 0.1, "count": 1}},
        ...     "melanoma": {"label": "melanoma", "probabilities": {"not_melanoma": 0.3, "melanoma": 0.7}}})
        >>> row["lesion_area_px"], row["melanoma"], row["p_melanoma_melanoma"]
        (900, 'melanoma', 0.7)
        """
        row: dict = {}
        for name, entry in (doc.get("classes") or {}).items():
            row[f"{name}_area_px"] = entry.get("area_px")
            if "area_mm2" in entry:
                row[f"{name}_area_mm2"] = entry["area_mm2"]
            row[f"{name}_share"] = entry.get("share")
            row[f"{name}_regions"] = entry.get("count")
        heads = [k for k, v in doc.items() if isinstance(v, dict) and "label" in v and "probabilities" in v]
        for head in sorted(heads, key=lambda h: h != "diagnosis"):  # the diagnosis first
            row[head] = doc[head]["label"]
            prefix = "p_" if head == "diagnosis" else f"p_{head}_"
            row.update({f"{prefix}{k}": v for k, v in (doc[head].get("probabilities") or {}).items()})
        return row

    def run_train(self, args: argparse.Namespace) -> int:
        from polyhead.apps.medical.training import train

        return train(args)

    def run_val(self, args: argparse.Namespace) -> int:
        """Metrics on a split (``--split``), per source for a sources YAML; for the image heads also the
        calibration with the card's temperatures (fitted on this split when the card has none, and said
        so), ECE before / after and one reliability diagram PNG per head."""
        from polyhead.apps.medical.calibrate import calibrate_heads, merge_sources
        from polyhead.apps.medical.training import load_any_spec, make_dataset
        from polyhead.io.writers import write_json

        self.load(args.weights, trust_pickle=args.trust_pickle)
        spec = load_any_spec(args.data)
        specs = [s.spec for s in spec.sources] if hasattr(spec, "sources") else [spec]
        for sp in [spec, *specs]:
            sp.input_mode, sp.input_size = self.predictor.mode, self.predictor.size
            sp.input_contrast = self.predictor.contrast  # the model's input pipeline, whatever the YAML says
            sp.classes = self.predictor.classes
        if args.keep_largest is not None:
            spec.keep_largest = args.keep_largest
        elif not hasattr(spec, "sources"):
            spec.keep_largest = self.predictor.keep_largest
        ds = make_dataset(spec, args.split, norm=self.predictor.norm)  # the card's, as predict uses
        temps = self.predictor.temperature
        raw: dict = {}
        if hasattr(spec, "sources"):
            from polyhead.apps.medical.sources import evaluate_sources

            metrics = evaluate_sources(
                self.model, ds, tta=args.tta, hd95=not args.no_hd95, detail=True, temperature=temps, collect=raw,
                threshold=self.predictor.threshold,
            )  # fmt: skip
            raw = merge_sources(raw)
        else:
            from polyhead.apps.medical.evaluate import evaluate

            metrics = evaluate(
                self.model, ds, spec, tta=args.tta, hd95=not args.no_hd95, detail=True,
                keep_largest=spec.keep_largest, temperature=temps, collect=raw, threshold=self.predictor.threshold,
            )  # fmt: skip
        logits = {h: (np.stack(z), np.asarray(y)) for h, (z, y) in raw.items() if z}
        if logits:
            plots = Path(args.plots or (Path(args.json).parent if args.json else "runs/val/medical"))
            metrics["calibration"] = calibrate_heads(logits, temps or None, plots, prefix=f"{args.split}_reliability")
            for rep in metrics["calibration"].values():
                if rep["fitted_here"]:
                    rep["note"] = "the card has no temperature for this head: fitted on this split (in-sample)"
        print(json.dumps(metrics, indent=2))
        if args.json:
            write_json(
                args.json,
                {
                    "weights": str(self.weights_path),
                    "data": str(args.data),
                    "split": args.split,
                    "tta": args.tta,
                    "threshold": self.predictor.threshold,
                    "metrics": metrics,
                },
            )
        return 0

    def run_export(self, args: argparse.Namespace) -> int:
        args.weights = str(self.resolve_weights(args.weights))
        return super().run_export(args)

    def extra_modes(self) -> dict[str, Command]:
        from polyhead.apps.medical.threshold import threshold_command
        from polyhead.ship import ship_command

        return {"ship": ship_command("medical", None, one_file=False), "threshold": threshold_command()}

    def benchmarks(self) -> dict[str, Command]:
        return {
            "medical": Command(
                "images/s at 512x512; sliding window on 2048x2048 with and without TTA",
                lazy("polyhead.apps.medical.bench", "add_bench_arguments"),
                lazy("polyhead.apps.medical.bench", "run_bench"),
            )
        }

    def demo_tabs(self) -> list[DemoTab]:
        from polyhead.apps.medical.demo import EXAMPLES, build_medical_tab

        return [
            DemoTab(
                "Medical",
                "tab-medical",
                lambda: build_medical_tab(self),
                example=EXAMPLES / "generated_lesion.jpg",
                input_id="medical-in-img",
                run_id="medical-run",
                output_id="medical-out-img",
                json_id="medical-json",
                json_keys=("classes", "diagnosis"),
            )
        ]

    def demo_probes(self) -> list[DemoProbe]:
        from polyhead.apps.medical.demo import EXAMPLES

        def inputs():
            from gradio_client import handle_file

            return [handle_file(str(EXAMPLES / "generated_lesion.jpg")), "PH2 lesion + diagnosis", False]

        def check(answer) -> bool:
            _, doc = answer
            return "lesion" in doc.get("classes", {}) and "diagnosis" in doc

        return [DemoProbe("/medical_image", inputs, check)]


def _image_like() -> set[str]:
    from polyhead.io.readers import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    return IMAGE_SUFFIXES | VIDEO_SUFFIXES
