"""FaceApp: what ``polyhead face ...`` and the demo's face tab call.

>>> app = FaceApp().load()                                  # the shipped weights
>>> result = app.predict_image(read_image("group.jpg"))     # doctest: +SKIP
>>> [f["box_xyxy"] for f in result.to_json()["faces"]]           # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from polyhead.app import App, Command, DemoProbe, DemoTab
from polyhead.apps.face.result import Face, FaceResult
from polyhead.cli import positive_float, positive_int
from polyhead.errors import InputError

MAX_CROPS_PER_FRAME = 64


def check_image(rgb) -> np.ndarray:
    """Any array a user may hand us -> RGB uint8 (h, w, 3); InputError for what cannot be an image."""
    from polyhead.io import to_rgb8

    if not isinstance(rgb, np.ndarray) or rgb.ndim not in (2, 3) or rgb.size == 0:
        raise InputError(None, f"expected an image array (h, w[, c]), got {getattr(rgb, 'shape', type(rgb).__name__)}")
    if rgb.ndim == 3 and rgb.shape[2] not in (1, 3, 4):
        raise InputError(None, f"image has {rgb.shape[2]} channels (expected 1, 3 or 4)")
    if not np.issubdtype(rgb.dtype, np.number) or (rgb.dtype.kind == "f" and not np.isfinite(rgb).all()):
        raise InputError(None, "image holds non-finite or non-numeric values")
    return rgb if (rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3) else to_rgb8(rgb)


#: the face detectors a weights file can hold
DETECTORS = ("cascade", "single")


FACE_RUNTIMES = ("auto", "torch", "onnx")


def _for_inference(net, part: str, weights: Path, runtime: str):
    """A multi-task part (``single``, ``attr``) ready for inference: with ``runtime`` ``torch``, BatchNorm
    folded and channels-last weights (about 2x faster than as trained, same outputs within 1e-4); with
    ``onnx`` / ``auto``, its ONNX export (cached, see :func:`polyhead.runtime.cached_part_onnx`) in ONNX
    Runtime, where the depthwise convolutions of EfficientNet-Lite run several times faster (``auto``
    falls back to torch with a warning if the export fails). ONNX Runtime parts and ``None`` pass through.
    """
    from polyhead.model import MultiTaskModel

    if not isinstance(net, MultiTaskModel):
        return net
    from polyhead.runtime import for_cpu_inference

    if runtime == "torch":
        return for_cpu_inference(net)
    import warnings

    from polyhead.apps.face.export import export_spec
    from polyhead.export import OnnxModel
    from polyhead.runtime import cached_part_onnx

    try:
        onnx = OnnxModel(cached_part_onnx(net, weights, part, *export_spec(part, net)))
    except Exception as e:  # noqa: BLE001 - the torch part still works
        if runtime == "onnx":
            raise InputError(weights, f"ONNX export of the {part} part failed ({type(e).__name__}: {e})") from None
        warnings.warn(f"{weights}: the {part} part runs in torch (ONNX export: {type(e).__name__})", stacklevel=2)
        return for_cpu_inference(net)
    onnx.normalisation = net.normalisation
    onnx.config = net.config  # what reads the outputs needs it (e.g. the age head's bins)
    return onnx


class FaceApp(App):
    name = "face"
    title = "Face"
    description = "faces: MTCNN-style cascade (boxes + 5 points), alignment, age and gender, blur, tracking"
    examples = {
        "predict": "examples:\n  polyhead face predict group.jpg --out runs/predict\n"
        "  polyhead face predict clip.mp4 --blur\n  polyhead face predict photos/ --save-crops --min-size 30",
        "train": "examples:\n  polyhead face train --data datasets/face.yaml --stage pnet --epochs 10 --batch 256\n"
        "  polyhead face train --data datasets/face.yaml --stage attributes --epochs 8 --batch 64",
        "val": "examples:\n  polyhead face val --data datasets/face.yaml --json runs/face_val.json\n"
        "  polyhead face val --protocol wider --data datasets/face-crowd.yaml --json runs/face_crowd.json",
    }

    def __init__(self):
        self.parts: dict = {}
        self.card: dict = {}
        self.detector = None
        self.detector_kind = "cascade"
        self.attr = None
        self.age_spread_scale = 1.0
        self.blur = False
        self.save_crops = False

    # ------------------------------------------------------------ model
    def load(
        self,
        weights=None,
        min_size: float | None = None,
        factor: float | None = None,
        thresholds=None,
        tasks=None,
        blur: bool = False,
        detector: str | None = None,
        runtime: str = "auto",
    ) -> FaceApp:
        """Load the detector (+ attribute model) from one safetensors file; options override the card's
        detector settings. ``tasks`` picks attribute heads (``[]`` or ``["none"]``: detection only).
        ``detector``: ``cascade`` (P/R/O-Net) or ``single`` (the single-shot detector, when the file has
        one); default: the card's ``default_detector``, else the cascade. ``runtime``: how the multi-task
        parts (single-shot detector, attributes) of a safetensors file run: ``auto`` (default: ONNX Runtime
        on a cached export), ``torch`` or ``onnx``; the small cascade nets always run in torch."""
        from polyhead.apps.face.detect import DetectorConfig, FaceDetector
        from polyhead.apps.face.model import load_face_weights

        path = self.resolve_weights(weights)
        if runtime not in FACE_RUNTIMES:
            raise InputError(None, f"--runtime must be one of {', '.join(FACE_RUNTIMES)}, got '{runtime}'")
        if path.suffix == ".onnx":  # an export of `polyhead face export`: the nets run in ONNX Runtime
            from polyhead.apps.face.export import load_face_onnx

            self.parts, self.card = load_face_onnx(path)
        else:
            self.parts, self.card = load_face_weights(path)
        kind = detector or self.card.get("default_detector", "cascade")
        if kind not in DETECTORS:
            raise InputError(None, f"--detector must be one of {list(DETECTORS)}, got {kind!r}")
        if kind == "single":
            if "single" not in self.parts:
                raise InputError(path, "weights have no single-shot detector (train one: face train --stage single)")
        else:
            missing = [s for s in ("pnet", "rnet", "onet") if s not in self.parts]
            if missing:
                raise InputError(path, f"weights lack the cascade stage(s) {missing}")
        d = dict(self.card.get("detector", {}))
        cfg = DetectorConfig(
            min_size=float(min_size or d.get("min_size", 20.0)),
            factor=float(factor or d.get("factor", 0.709)),
            thresholds=tuple(thresholds or d.get("thresholds", (0.6, 0.7, 0.9))),
            nms=tuple(d.get("nms", (0.5, 0.7, 0.4))),
            nms_min=float(d.get("nms_min", 0.7)),
            nms_levels=float(d.get("nms_levels", 0.7)),
            max_proposals=int(d.get("max_proposals", 1500)),
            final_flip=bool(d.get("final_flip", False)),
        )
        if len(cfg.thresholds) != 3 or not all(0 <= t <= 1 for t in cfg.thresholds):
            raise InputError(None, f"--thresholds needs three probabilities (P, R, O-Net), got {cfg.thresholds}")
        if not 0 < cfg.factor < 1 or cfg.min_size < 6:
            raise InputError(
                None, f"scale factor must be in (0, 1) and min size >= 6 px (got {cfg.factor}, {cfg.min_size})"
            )
        if kind == "single":
            from dataclasses import fields

            from polyhead.apps.face.single_shot import SingleShotConfig, SingleShotDetector

            known = {f.name for f in fields(SingleShotConfig)}
            ss = SingleShotConfig(**{k: v for k, v in self.card.get("single_shot", {}).items() if k in known})
            if min_size:
                ss.min_size = float(min_size)
            self.detector = SingleShotDetector(_for_inference(self.parts["single"], "single", path, runtime), ss)
        else:
            self.detector = FaceDetector(self.parts, cfg)
        self.detector_kind = kind
        self.attr = _for_inference(self.parts.get("attr"), "attr", path, runtime)
        self.age_spread_scale = age_spread_scale(self.card, path)
        if self.attr is not None:
            if tasks is not None:
                wanted = [t for t in tasks if t != "none"]
                unknown = set(wanted) - set(self.attr.tasks)
                if unknown:
                    raise InputError(path, f"attribute model has no head {sorted(unknown)}; it has {self.attr.tasks}")
                self.attr.active_tasks = wanted
            if not self.attr.active_tasks:
                self.attr = None
        self.blur = blur
        return self

    def ensure_loaded(self) -> None:
        if self.detector is None:
            self.load()

    # ------------------------------------------------------------ inference
    def predict_images(self, images: list[np.ndarray], with_crops: bool = False, *, blur: bool | None = None):
        """RGB images -> FaceResults (and aligned crops per image with ``with_crops``); the cascade runs
        batched over all images, the attribute model over all faces of all images in one batch.
        ``blur`` holds for this call only (default: the loaded setting)."""
        from polyhead.apps.face.align import CROP_SIZE, align_face
        from polyhead.apps.face.attributes import predict_attributes
        from polyhead.apps.face.model import attr_crop

        blur = self.blur if blur is None else bool(blur)

        self.ensure_loaded()
        images = [check_image(im) for im in images]
        dets = self.detector.detect(images)
        # the ArcFace crops users save are cut only when asked for, or when the attribute model reads them too
        size, margin = attr_crop(self.attr) if self.attr is not None else (CROP_SIZE, 1.0)
        arcface = (size, margin) == (CROP_SIZE, 1.0)
        crops, attr_in = [], []
        for im, d in zip(images, dets, strict=True):
            for k in range(len(d["scores"])):
                saved = align_face(im, d["points"][k]) if with_crops or (arcface and self.attr is not None) else None
                crops.append(saved)
                if self.attr is not None:
                    attr_in.append(saved if arcface else align_face(im, d["points"][k], size, margin))
        attrs = predict_attributes(self.attr, attr_in) if attr_in else {}
        results, per_image_crops = [], [[] for _ in images]
        j = 0
        for i, (im, d) in enumerate(zip(images, dets, strict=True)):
            faces = []
            for k in range(len(d["scores"])):
                faces.append(
                    Face(
                        d["boxes"][k],
                        float(d["scores"][k]),
                        d["points"][k],
                        float(attrs["age"][j]) if "age" in attrs else None,
                        float(attrs["p_female"][j]) if "p_female" in attrs else None,
                        age_spread=float(attrs["age_std"][j] * self.age_spread_scale) if "age_std" in attrs else None,
                    )
                )
                per_image_crops[i].append(crops[j])
                j += 1
            results.append(FaceResult(faces, im.shape[:2], blur=blur))
        return (results, per_image_crops) if with_crops else results

    def predict_image(self, rgb: np.ndarray, *, blur: bool | None = None) -> FaceResult:
        return self.predict_images([rgb], blur=blur)[0]

    def tracked_predictor(self, crops_dir: Path | None = None, *, blur: bool | None = None):
        """A per-video predict function: IoU tracking ids and smoothed age / gender across frames;
        ``blur`` holds for this video only (default: the loaded setting)."""
        from polyhead.apps.face.track import Tracker
        from polyhead.io import write_image

        tracker = Tracker()
        state = {"frame": 0}

        def predict(rgb: np.ndarray) -> FaceResult:
            (result,), (crops,) = self.predict_images([rgb], with_crops=True, blur=blur)
            ids = tracker.update([f.box for f in result.faces])
            for f, tid, crop in zip(result.faces, ids, crops, strict=True):
                f.track_id = tid
                f.age, f.p_female = tracker.smooth(tid, f.age, f.p_female)
                if crops_dir is not None:
                    write_image(crops_dir / f"{state['frame']:06d}_id{tid}.jpg", crop)
            state["frame"] += 1
            return result

        return predict

    predict_batch = 8  # images per cascade call in batch predict (the cascade splits them across cores)

    def predict(self, source, out_dir, batch: int | None = None, **options):
        """Batch predict: images ``batch`` at a time through the batched cascade, videos frame by frame
        with per-video tracking; ``self.save_crops`` also writes aligned crops under ``<out>/crops``.
        Returns a BatchReport.

        >>> FaceApp().load().predict("photos/", "runs/predict")   # doctest: +SKIP
        """
        from polyhead.predict import predict_source

        crops_root = Path(out_dir) / "crops" if self.save_crops else None

        def many(images: list[np.ndarray]) -> list[FaceResult]:
            results, crops = self.predict_images(images, with_crops=True)
            if crops_root is not None:
                for result, faces in zip(results, crops, strict=True):
                    result.crops = faces[:MAX_CROPS_PER_FRAME]
            return results

        return predict_source(
            source,
            out_dir,
            lambda rgb: many([rgb])[0],
            predict_many=many,
            batch=batch or self.predict_batch,
            per_video=lambda name: self.tracked_predictor(crops_root / name if crops_root is not None else None),
            **self.batch_options(out_dir, options),
        )

    # ------------------------------------------------------------ CLI
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        if mode in ("predict", "val"):
            parser.add_argument(
                "--min-size", type=positive_float, help="smallest face searched, pixels (default: the card's)"
            )
            parser.add_argument("--factor", type=float, help="pyramid scale factor in (0, 1) (default 0.709)")
            parser.add_argument(
                "--thresholds",
                type=float,
                nargs=3,
                metavar=("P", "R", "O"),
                help="face probability thresholds of P-, R- and O-Net",
            )
            parser.add_argument(
                "--detector",
                choices=DETECTORS,
                help="cascade (P/R/O-Net) or single (single-shot, if the weights hold one); default: the card's",
            )
            parser.add_argument(
                "--runtime",
                choices=FACE_RUNTIMES,
                default="auto",
                help="how the single-shot detector and the attribute model run: auto (default: ONNX Runtime on "
                "an export cached in ~/.cache/polyhead/onnx, torch if it fails), torch or onnx",
            )
        if mode == "predict":
            parser.add_argument(
                "--tasks",
                nargs="+",
                choices=["age", "gender", "none"],
                help="attribute heads to run ('none': detection only)",
            )
            parser.add_argument("--blur", action="store_true", help="anonymise: blur faces instead of annotating")
            parser.add_argument("--save-crops", action="store_true", help="write aligned 112x112 crops to <out>/crops")
        elif mode == "train":
            from polyhead.apps.face.training import add_train_arguments

            add_train_arguments(parser)
        elif mode == "val":
            parser.add_argument(
                "--limit", type=positive_int, help="evaluate at most this many items per set (smoke runs)"
            )
            parser.add_argument(
                "--protocol",
                choices=["standard", "wider"],
                default="standard",
                help="standard: dlib boxes, landmarks, attributes (datasets/face.yaml); wider: crowd detection "
                "AP50 / recall at fixed FP per image by face size (datasets/face-crowd.yaml or a VOC folder)",
            )
            parser.add_argument(
                "--stages",
                action="store_true",
                help="wider: where faces are lost (recall after each cascade step, P-Net recall per pyramid level)",
            )

    def load_options(self, args: argparse.Namespace) -> dict:
        return {
            "min_size": args.min_size,
            "factor": args.factor,
            "thresholds": args.thresholds,
            "tasks": args.tasks,
            "blur": args.blur,
            "detector": args.detector,
            "runtime": getattr(args, "runtime", "auto"),
        }

    def run_predict(self, args: argparse.Namespace) -> int:
        self.save_crops = bool(args.save_crops)
        return super().run_predict(args)

    def detections(self, doc: dict):
        """Face boxes (one class, ``face``) for ``--save-txt`` / ``--save-coco`` and the summary's count."""
        from polyhead.io.boxes import Detections

        return Detections.from_json(doc.get("faces", []), ["face"])

    def run_train(self, args: argparse.Namespace) -> int:
        if args.stage == "attributes":
            from polyhead.apps.face.attributes import train_attributes

            return train_attributes(args)
        if args.stage == "single":
            from polyhead.apps.face.single_shot_train import train_single_shot

            return train_single_shot(args)
        unsupported = [
            flag
            for flag, used in (
                ("--resume", args.resume),
                ("--balancing", args.balancing != "fixed"),
                ("--task-weights", bool(args.task_weights)),
                ("--workers", bool(args.workers)),
            )
            if used
        ]
        if unsupported:
            raise InputError(
                None,
                f"face --stage {args.stage}: {', '.join(unsupported)} not supported: the cascade nets train in their "
                "own loop (online hard-sample mining over generated windows, fixed loss weights, time-boxed); "
                "--stage attributes and --stage single run on the shared Trainer and take them",
            )
        from polyhead.apps.face.training import train_stage

        return train_stage(args)

    def run_val(self, args: argparse.Namespace) -> int:
        from polyhead.apps.face.evaluate import run_val

        self.load(
            args.weights,
            min_size=args.min_size,
            factor=args.factor,
            thresholds=args.thresholds,
            detector=args.detector,
            runtime=getattr(args, "runtime", "auto"),
        )
        if getattr(args, "protocol", "standard") == "wider":
            from polyhead.apps.face.crowd import run_crowd_val

            return run_crowd_val(self, args)
        return run_val(self, args)

    def run_export(self, args: argparse.Namespace) -> int:
        """``polyhead face export [--weights W] [--out face.onnx] [--tasks age gender|none]``: P-Net as
        ``face.onnx`` (dynamic height and width), R-Net, O-Net and the attribute model beside it
        (``face.rnet.onnx``, ``face.onet.onnx``, ``face.attr.onnx``) and the card ``face.json``;
        ``polyhead face predict ... --weights face.onnx`` runs them in ONNX Runtime.

        >>> FaceApp().export(out="runs/face.onnx")   # doctest: +SKIP
        """
        from polyhead.app import check_card_target
        from polyhead.apps.face.export import export_face
        from polyhead.weights import card_path

        if args.imgsz:
            raise InputError(None, "face export: --imgsz is not used (P-Net takes any size, R/O-Net fixed crops)")
        weights = self.resolve_weights(args.weights)
        out = Path(args.out or weights.with_suffix(".onnx"))
        if out.suffix != ".onnx":
            raise InputError(out, "export target must end in .onnx")
        check_card_target(card_path(out), card_path(weights))
        files = export_face(weights, out, tasks=args.tasks)
        print(f"exported {weights} -> {', '.join(str(f) for f in files.values())} (+ {card_path(out).name})")
        return 0

    def extra_modes(self) -> dict[str, Command]:
        return {
            "ship": Command(
                "copy trained face weights into place with a full model card (figures, commands, data terms)",
                _lazy("polyhead.apps.face.ship", "add_ship_arguments"),
                _lazy("polyhead.apps.face.ship", "run_ship"),
            ),
            "calibrate": Command(
                "fit the age spread factor on the attribute val split and write it into the weights' card",
                _lazy("polyhead.apps.face.ship", "add_calibrate_arguments"),
                _lazy("polyhead.apps.face.ship", "run_calibrate"),
            ),
        }

    def benchmarks(self) -> dict[str, Command]:
        return {
            "face": Command(
                "cascade speed: 8 images batched vs one at a time (640x480), per-stage times, attributes",
                _lazy("polyhead.apps.face.bench", "add_bench_arguments"),
                _lazy("polyhead.apps.face.bench", "run_bench"),
            )
        }

    def demo_tabs(self) -> list[DemoTab]:
        from polyhead.apps.face.demo import EXAMPLE, build_face_tab

        return [
            DemoTab(
                "Face",
                "tab-face",
                lambda: build_face_tab(self),
                example=EXAMPLE,
                input_id="face-in-img",
                run_id="face-run",
                output_id="face-out-img",
                json_id="face-json",
                json_keys=("faces", "count"),
            )
        ]

    def demo_probes(self) -> list[DemoProbe]:
        from polyhead.apps.face.demo import EXAMPLE

        def inputs():
            from gradio_client import handle_file

            return [handle_file(str(EXAMPLE)), False]

        def check(answer) -> bool:
            _, doc = answer
            return isinstance(doc, dict) and doc.get("count", 0) >= 1 and "faces" in doc

        return [DemoProbe("/face_image", inputs, check)]


def age_spread_scale(card: dict, path=None) -> float:
    """The card's ``age_spread_scale`` (fitted by ``polyhead face calibrate``); 1.0 for cards without it.

    >>> age_spread_scale({}), age_spread_scale({"age_spread_scale": 1.4})
    (1.0, 1.4)
    """
    v = card.get("age_spread_scale", 1.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
        raise InputError(
            Path(path).with_suffix(".json") if path else None, f"age_spread_scale must be a positive number, got {v!r}"
        )
    return float(v)


def _lazy(module: str, attr: str):
    """Import the function only when the command is used (keeps ``polyhead --help`` fast)."""

    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call
