"""The App base class: one object per app that the CLI, the demo and the benchmarks call.

An app subclasses :class:`App`, fills in the hooks, and announces itself in ``pyproject.toml``
under ``[project.entry-points."polyhead.apps"]``. Nothing else in the core names it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.results import Result
from polyhead.weights import WEIGHTS_DIR

AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass
class Command:
    """An extra CLI mode or a benchmark an app contributes."""

    help: str
    add_arguments: AddArgs
    run: Run
    epilog: str = ""


@dataclass
class DemoProbe:
    """How a load test calls one of an app's demo endpoints and checks the answer.

    ``inputs()`` returns the positional arguments for ``gradio_client`` (files wrapped with
    ``handle_file``); ``check(result)`` returns True when the answer is right.
    """

    api_name: str
    inputs: Callable[[], list]
    check: Callable[[object], bool]


@dataclass
class DemoTab:
    """A tab of the demo: title, ``elem_id`` and a builder called inside ``with gr.Tab(...)``.

    The optional fields tell the browser test how a person uses the tab: upload ``example`` into the
    file input inside ``#<input_id>``, click ``#<run_id>``, expect ``#<output_id>`` to show an image,
    video or 3D view (``output_kind``) and ``#<json_id>`` to hold ``json_keys``.
    """

    title: str
    elem_id: str
    build: Callable[[], None]
    example: Path | None = None
    input_id: str = ""
    run_id: str = ""
    output_id: str = ""
    output_kind: str = "img"  # "img" | "video" | "canvas"
    json_id: str = ""
    json_keys: tuple[str, ...] = ()


class App:
    """Base of every polyhead app.

    Subclasses set ``name``/``title``/``description`` and implement ``load``, ``predict_image``,
    ``train`` and ``val``; ``predict`` over sources and ``export`` come for free.
    """

    name: str = ""
    title: str = ""
    description: str = ""
    #: example commands shown in ``polyhead APP MODE --help``
    examples: dict[str, str] = {}

    # ------------------------------------------------------------ weights
    #: short names of shipped weights (``--weights ph2``) -> file stems in the weights folder
    named_weights: dict[str, str] = {}

    @property
    def default_weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"

    def resolve_weights(self, weights: str | Path | None) -> Path:
        """``None`` -> :attr:`default_weights`; a name in :attr:`named_weights` -> that shipped file;
        anything else is a path (``.safetensors``, ``.onnx``, or ``.pt`` with ``--trust-pickle``)."""
        if weights is None or str(weights) == "":
            return self.default_weights
        if str(weights) in self.named_weights:
            return WEIGHTS_DIR / f"{self.named_weights[str(weights)]}.safetensors"
        return Path(weights)

    def load(self, weights: str | Path | None = None, **options) -> None:  # pragma: no cover - abstract
        """Load weights (default: the shipped file; ``.onnx`` runs on ONNX Runtime)."""
        raise NotImplementedError

    # ------------------------------------------------------------ inference
    def predict_image(self, rgb: np.ndarray) -> Result:  # pragma: no cover - abstract
        """One RGB uint8 image -> a result in original pixels."""
        raise NotImplementedError

    def predict_images(self, images: list[np.ndarray]) -> list[Result]:
        """Several RGB images -> their results; apps whose model batches well override this."""
        return [self.predict_image(rgb) for rgb in images]

    #: images per :meth:`predict_images` call in batch predict (1: one image at a time)
    predict_batch: int = 1
    #: the overlay's file type in batch predict (line art such as plans stays sharper in PNG)
    overlay_suffix: str = ".jpg"
    #: suffixes of the extra files a result's ``artifacts()`` may write (kept free of user files)
    artifact_suffixes: tuple[str, ...] = ()

    def predict(self, source, out_dir: str | Path, batch: int | None = None, **options):
        """Batch predict over an image, folder, glob or video into ``out_dir``; returns a BatchReport.
        Images go through :meth:`predict_images` ``batch`` at a time (default :attr:`predict_batch`).
        ``out_dir`` is used as given (the CLI counts run folders up, see :mod:`polyhead.run_dir`);
        ``summary.csv`` is written unless ``run_files=None`` is passed (see :meth:`run_files`).

        >>> report = app.predict("photos/", "runs/predict", save_txt=True, shard=(0, 2))   # doctest: +SKIP
        >>> report = polyhead.load("floorplan").predict("plans/", "runs/fp", scale=50, mesh=True)  # doctest: +SKIP
        """
        import functools
        import inspect

        from polyhead.predict import predict_source

        # per-call options of predict_image (floorplan's scale=, mesh=; driving's conf=) hold for this
        # run, as the CLI's flags do: Python predict() and the CLI write the same files
        own = set(inspect.signature(predict_source).parameters)
        params = list(inspect.signature(self.predict_image).parameters.values())[1:]
        names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in own]
        per_call = {k: options.pop(k) for k in names if k in options}
        predict = functools.partial(self.predict_image, **per_call) if per_call else self.predict_image
        n = batch or self.predict_batch
        many_takes = set(inspect.signature(self.predict_images).parameters)
        many = None
        if n > 1 and set(per_call) <= many_takes:  # driving's predict_images(images, conf=...) batches still
            many = functools.partial(self.predict_images, **per_call) if per_call else self.predict_images
        options = self.batch_options(out_dir, options)
        stage_keys = set(inspect.signature(self.video_stages).parameters)
        stages = self.video_stages(**per_call) if set(per_call) <= stage_keys else None
        return predict_source(source, out_dir, predict, stages=stages, predict_many=many, batch=n, **options)

    def batch_options(self, out_dir: str | Path, options: dict) -> dict:
        """``options`` for :func:`polyhead.predict.predict_source` completed with this app's file naming
        and its run-level writers (``summary.csv``; ``save_txt`` / ``save_conf`` / ``save_coco`` for boxes)."""
        options = dict(options)
        options.setdefault("overlay_suffix", self.overlay_suffix)
        options.setdefault("extra_suffixes", self.artifact_suffixes)
        writers = {k: options.pop(k) for k in ("save_txt", "save_conf", "save_coco") if k in options}
        if "run_files" not in options:
            options["run_files"] = self.run_files(out_dir, shard=options.get("shard"), **writers)
        return options

    def run_files(
        self,
        out_dir: str | Path,
        save_txt: bool = False,
        save_conf: bool = False,
        save_coco: bool = False,
        shard: tuple[int, int] | None = None,
    ):
        """The run-level writers of a batch predict into ``out_dir``: ``summary.csv`` with
        :meth:`summary_row`, and for apps with boxes (:meth:`detections`) YOLO labels and COCO results."""
        from polyhead.io.run_files import RunFiles

        return RunFiles(
            out_dir,
            self.summary_row,
            self.detections,
            save_txt=save_txt,
            save_conf=save_conf,
            save_coco=save_coco,
            shard=shard,
        )

    def detections(self, doc: dict):
        """The 2-D boxes of one result JSON as :class:`polyhead.io.boxes.Detections` (for ``--save-txt``
        and ``--save-coco``), or None for an app without boxes (the default)."""
        return None

    def summary_row(self, doc: dict) -> dict:
        """The key figures of one result JSON for its ``summary.csv`` row (``{column: value}``).
        Default: the count per class of :meth:`detections`, or nothing. Apps override this with their
        own figures (area shares of masks, diagnosis and probabilities, ...)."""
        dets = self.detections(doc)
        return dets.counts() if dets is not None else {}

    def video_stages(self):
        """Optional ``(infer, finish)`` split of :meth:`predict_image` for overlapped video processing:
        ``infer(rgb) -> raw`` runs the model, ``finish(raw) -> Result`` post-processes in another thread."""
        return None

    # ------------------------------------------------------------ CLI hooks
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        """Add app-specific options to a standard mode's parser."""

    def run_predict(self, args: argparse.Namespace) -> int:
        """``polyhead APP predict``: load, run :meth:`predict` with the standard and the app's options
        (:meth:`predict_options`), print one summary line; the exit code says whether anything was skipped."""
        from polyhead.run_dir import next_run_dir
        from polyhead.shard import parse_shard

        if getattr(args, "batch", None) is not None and args.batch < 1:
            raise InputError(None, f"--batch must be at least 1, got {args.batch}")
        shard = parse_shard(getattr(args, "shard", None))
        self.load(args.weights, **self.load_options(args))
        # a run that continues (--resume) or is shared (--shard) writes into the folder it names
        out = next_run_dir(args.out, getattr(args, "exist_ok", False) or args.resume or shard is not None)
        files = self.run_files(
            out,
            save_txt=getattr(args, "save_txt", False),
            save_conf=getattr(args, "save_conf", False),
            save_coco=getattr(args, "save_coco", False),
            shard=shard,
        )
        report = self.predict(
            args.source,
            out,
            batch=args.batch,
            save_json=not args.no_json,
            resume=args.resume,
            shard=shard,
            run_files=files,
            **self.predict_options(args),
        )
        extra = f", {report.resumed} already done" if report.resumed else ""
        extra += f", {len(report.partial)} video(s) only partly decodable" if getattr(report, "partial", None) else ""
        extra += f", shard {shard[0]}/{shard[1]}" if shard else ""
        print(f"{report.frames} frame(s) -> {out} ({len(report.written)} files, {len(report.skipped)} skipped{extra})")
        return report.exit_code

    def predict_options(self, args: argparse.Namespace) -> dict:
        """App-specific keywords for :meth:`predict` from CLI args (e.g. medical's volume axis and mesh)."""
        return {}

    def load_options(self, args: argparse.Namespace) -> dict:
        """Options from CLI args passed to :meth:`load` (override to add thresholds etc.)."""
        return {"trust_pickle": getattr(args, "trust_pickle", False)}

    # ------------------------------------------------------------ Python API
    def __call__(self, source, *, stream: bool = False, bgr: bool = False, **options):
        """Predict on a path, folder, glob, video, RGB array (``bgr=True`` for ``cv2.imread`` arrays),
        PIL image or a list of them; a list of :class:`polyhead.api.Prediction` (a generator with
        ``stream=True``). ``options`` are :meth:`predict_image`'s (e.g. ``conf``) for this call only.

        >>> for p in polyhead.load("driving")("frames/", stream=True): p.save("runs/out")   # doctest: +SKIP
        """
        from polyhead.api import predict_call

        return predict_call(self, source, stream=stream, bgr=bgr, **options)

    def train(self, args: argparse.Namespace | None = None, /, **options) -> int:
        """Train: ``app.train(data="datasets/x.yaml", epochs=3)`` takes the CLI's options as keywords.

        >>> polyhead.load("medical").train(data="datasets/medical-ph2.yaml", epochs=2)   # doctest: +SKIP
        """
        return self.run_train(self._mode_args("train", args, options))

    def val(self, args: argparse.Namespace | None = None, /, **options) -> int:
        """Evaluate: ``app.val(data="datasets/x.yaml", json="val.json")``."""
        return self.run_val(self._mode_args("val", args, options))

    def export(self, args: argparse.Namespace | None = None, /, **options) -> int:
        """ONNX export: ``app.export(out="model.onnx", imgsz=(384, 640))``."""
        return self.run_export(self._mode_args("export", args, options))

    def _mode_args(self, mode: str, args: argparse.Namespace | None, options: dict) -> argparse.Namespace:
        if args is not None:
            if options:
                raise TypeError(f"{self.name} {mode}: pass either a Namespace or keywords, not both")
            return args
        from polyhead.api import mode_namespace

        args = mode_namespace(self, mode, options)
        if options.get("device") is not None:  # as the CLI does: checked, then the process default
            from polyhead.device import select

            select(options["device"])
        return args

    # ------------------------------------------------------------ mode implementations (CLI and Python)
    def run_train(self, args: argparse.Namespace) -> int:  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.name}: train is not implemented")

    def run_val(self, args: argparse.Namespace) -> int:  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.name}: val is not implemented")

    def run_export(self, args: argparse.Namespace) -> int:
        """ONNX export of the loaded weights; the model card is copied beside the .onnx file."""
        import shutil

        from polyhead.export import export_onnx
        from polyhead.weights import card_path, load_model

        weights = self.resolve_weights(args.weights)
        out = Path(args.out or weights.with_suffix(".onnx"))
        if out.suffix != ".onnx":
            raise InputError(out, "export target must end in .onnx")
        check_card_target(card_path(out), card_path(weights))
        model, card = load_model(weights, trust_pickle=getattr(args, "trust_pickle", False))
        size = tuple(args.imgsz) if args.imgsz else tuple(card.get("input_size", (384, 640)))
        check_export_size(size, max(getattr(model, "config", {}).get("strides", (32,))))
        export_onnx(model, out, size, tasks=args.tasks)
        if card_path(weights).resolve() != card_path(out).resolve():
            shutil.copyfile(card_path(weights), card_path(out))
        print(f"exported {weights} -> {out} (input {size[1]}x{size[0]})")
        return 0

    def extra_modes(self) -> dict[str, Command]:
        """Modes beyond predict/train/val/export (e.g. ``lidar``)."""
        return {}

    def benchmarks(self) -> dict[str, Command]:
        """Targets for ``polyhead bench NAME``."""
        return {}

    def demo_tabs(self) -> list[DemoTab]:
        """Tabs this app adds to ``polyhead demo``."""
        return []

    def demo_probes(self) -> list[DemoProbe]:
        """Endpoints ``polyhead bench demo`` may call, with a sample input and a correctness check."""
        return []


def is_model_card(path: str | Path) -> bool:
    """True when ``path`` is a polyhead model card (a JSON object naming its ``app`` or holding the
    ``model`` architecture), so an export may replace it."""
    import json

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and (isinstance(doc.get("app"), str) or isinstance(doc.get("model"), dict))


def check_card_target(target: Path, source: Path) -> None:
    """Refuse (one line) when the card an export would write, ``<out>.json``, exists and is not a
    polyhead model card: ``export --out X/results.onnx`` never replaces an unrelated ``X/results.json``."""
    if target.exists() and target.resolve() != source.resolve() and not is_model_card(target):
        raise InputError(
            target, "exists and is not a polyhead model card; the export would replace it (choose another --out)"
        )


def check_export_size(size: tuple[int, ...], stride: int) -> None:
    """``--imgsz H W``: two positive multiples of the model's stride, else a one-line error (an export
    at 31x31 would give a model that predict refuses)."""
    if len(size) != 2 or any(int(v) != v or v <= 0 or v % stride for v in size):
        fix = " ".join(str(max(stride, round(v / stride) * stride)) for v in size)
        raise InputError(
            None,
            f"--imgsz {' '.join(map(str, size))}: H and W must be positive multiples of {stride} "
            f"(the model's stride); try --imgsz {fix}",
        )


def lazy(module: str, attr: str) -> Callable:
    """A function imported only when called (keeps ``polyhead --help`` fast and optional parts optional).

    >>> run = lazy("json", "dumps"); run([1])
    '[1]'
    """

    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call
