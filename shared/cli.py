"""``polyhead APP MODE [options]``, ``polyhead demo`` and ``polyhead bench NAME``.

>>> main(["driving", "predict", "street.jpg", "--out", "runs/predict"])   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import traceback

from polyhead import offline
from polyhead.errors import InputError

MODES = {
    "predict": "run the model on an image, folder, glob, video or camera index",
    "train": "train on a dataset YAML",
    "val": "evaluate weights on a dataset YAML",
    "export": "export weights to ONNX",
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``polyhead driving train: error: argument --batch: ... (see --help)``."""

    def error(self, message: str):  # type: ignore[override]
        m = re.match(r"argument ([^:]+): (.*)", message, re.DOTALL)
        if m:  # "argument --batch/-b: must be ..." -> "--batch must be ..."
            option, problem = m.group(1).split("/")[0], m.group(2)
            message = f"{option} {problem}" if problem.startswith("must") else f"{option}: {problem}"
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``nan``, ``inf``, 0 and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def image_side(text: str) -> int:
    """argparse type: an input side in pixels, a positive multiple of 32 (the network's total stride)."""
    value = _int(text)
    if value < 32 or value % 32:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 32 (32, 64, ... 640), got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda|cuda:N|mps`` (default cpu), checked in :func:`main` (see polyhead.device)."""
    p.add_argument(
        "--device",
        default=None,
        help="where the networks run: cpu (default), cuda, cuda:N or mps; CUDA trains in mixed precision",
    )


def _standard_arguments(mode: str, p: argparse.ArgumentParser) -> None:
    weights_help = "weights file (.safetensors, or .onnx for ONNX Runtime); default: the shipped weights"
    if mode == "predict":
        p.add_argument("source", help="image, folder, glob ('frames/*.jpg'), video file or camera index")
        p.add_argument("--weights", help=weights_help)
        p.add_argument("--out", default="runs/predict", help="output folder (default: runs/predict)")
        p.add_argument("--no-json", action="store_true", help="write overlays only")
        p.add_argument("--resume", action="store_true", help="skip inputs whose outputs already exist")
        p.add_argument("--batch", type=positive_int, help="images per model call (default: the app's; 1 for most)")
        p.add_argument(
            "--exist-ok",
            action="store_true",
            help="write into --out even if it holds an earlier run (default: count up, runs/predict2, ...)",
        )
        p.add_argument("--save-txt", action="store_true", help="YOLO labels per image in <out>/labels (box apps)")
        p.add_argument("--save-conf", action="store_true", help="with --save-txt: the score as a 6th column")
        p.add_argument("--save-coco", action="store_true", help="COCO results + image table in <out>/coco (box apps)")
        p.add_argument(
            "--shard",
            metavar="I/N",
            help="process shard I of N (0 <= I < N) of the sorted inputs, e.g. $SLURM_ARRAY_TASK_ID/4",
        )
        add_device_argument(p)
    elif mode == "train":
        p.add_argument("--data", required=True, help="dataset YAML (see datasets/)")
        p.add_argument("--out", default=None, help="run folder (default: runs/train/<app>)")
        p.add_argument("--epochs", type=positive_int, default=30)
        p.add_argument("--batch", type=positive_int, default=8)
        p.add_argument("--lr", type=positive_float, default=2e-3)
        p.add_argument(
            "--imgsz", type=image_side, nargs=2, metavar=("H", "W"), help="training input size (multiples of 32)"
        )
        p.add_argument(
            "--balancing",
            choices=["fixed", "uncertainty", "pcgrad"],
            default="fixed",
            help="how task losses are balanced",
        )
        p.add_argument(
            "--task-weights",
            nargs="+",
            default=[],
            metavar="TASK=W",
            help="loss weight per task for fixed/pcgrad balancing, e.g. det=0.3",
        )
        p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
        p.add_argument("--weights", help="initialise from these weights (fine-tuning)")
        p.add_argument("--workers", type=non_negative_int, default=0, help="data-loader processes")
        p.add_argument("--seed", type=non_negative_int, default=0)
        p.add_argument("--no-ema", action="store_true", help="disable the weight EMA")
        p.add_argument("--max-batches", type=positive_int, help="cap batches per epoch (smoke runs)")
        from polyhead.train.finetune import add_init_arguments

        add_init_arguments(p)
        add_device_argument(p)
    elif mode == "val":
        p.add_argument("--data", required=True, help="dataset YAML")
        p.add_argument("--weights", help=weights_help)
        p.add_argument("--split", default="val")
        p.add_argument("--json", help="also write the metrics to this JSON file")
        add_device_argument(p)
    elif mode == "export":
        p.add_argument("--weights", help="weights to export (default: the shipped weights)")
        p.add_argument("--out", help="target .onnx (default: beside the weights)")
        p.add_argument("--imgsz", type=image_side, nargs=2, metavar=("H", "W"), help="input size (default: the card's)")
        p.add_argument("--tasks", nargs="+", help="export only these heads")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help=argparse.SUPPRESS
        if mode != "predict"
        else "allow loading a pickle (.pt) checkpoint: only for files you trust",
    )


def mode_parser(app, mode: str) -> argparse.ArgumentParser:
    """The parser of ``polyhead APP MODE`` alone (the Python API builds its keyword defaults from it)."""
    p = argparse.ArgumentParser(prog=f"polyhead {app.name} {mode}")
    _standard_arguments(mode, p)
    app.add_arguments(mode, p)
    return p


def build_parser() -> argparse.ArgumentParser:
    from polyhead.registry import discover_apps

    apps = discover_apps()
    parser = Parser(
        prog="polyhead",
        description="Perception apps on one shared multi-task backbone.",
        epilog="examples:\n  polyhead demo\n  polyhead driving predict street.jpg --out runs/predict\n"
        "  polyhead bench driving",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join([*apps, "demo", "bench"]) + "}")
    for name, app in apps.items():
        ap = sub.add_parser(name, help=app.description or app.title)
        modes = ap.add_subparsers(dest="mode", required=True)
        for mode, help_text in MODES.items():
            mp = modes.add_parser(
                mode,
                help=help_text,
                epilog=app.examples.get(mode, ""),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            _standard_arguments(mode, mp)
            app.add_arguments(mode, mp)
            mp.set_defaults(handler=_mode_handler(app, mode))
        for mode, cmd in app.extra_modes().items():
            _add_command(modes, mode, cmd)
    demo = sub.add_parser(
        "demo",
        help="serve the Gradio demo (a tab per app)",
        epilog="example:\n  polyhead demo --port 7861",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs internet)")
    add_device_argument(demo)
    demo.set_defaults(handler=_run_demo)
    bench = sub.add_parser("bench", help="speed benchmarks")
    targets = bench.add_subparsers(dest="target", required=True)
    from polyhead import bench_demo
    from polyhead.app import Command

    _add_command(
        targets,
        "demo",
        Command(
            "concurrent clients against the demo: requests/s, p50/p95 latency", bench_demo.add_arguments, bench_demo.run
        ),
    )
    for app in apps.values():
        for name, cmd in app.benchmarks().items():
            _add_command(targets, name, cmd, device=True)
    return parser


def _add_command(subparsers, name: str, cmd, device: bool = False) -> None:
    """Register an app's extra mode or benchmark; one whose module fails to import is left out.
    ``device`` adds ``--device`` when the command has none of its own."""
    p = argparse.ArgumentParser(prog=name, add_help=False)
    try:
        cmd.add_arguments(p)
    except ImportError as e:  # an optional part that is not installed: leave the mode out
        if os.environ.get("POLYHEAD_DEBUG"):
            print(f"'{name}' unavailable ({e})", file=sys.stderr)
        return
    sp = subparsers.add_parser(
        name, help=cmd.help, epilog=cmd.epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cmd.add_arguments(sp)
    if device and "--device" not in sp._option_string_actions:
        add_device_argument(sp)
    sp.set_defaults(handler=cmd.run)


def parse_task_weights(items: list[str]) -> dict[str, float]:
    """``["det=0.3", "lane=2"]`` -> ``{"det": 0.3, "lane": 2.0}``."""
    out = {}
    for item in items:
        task, sep, value = item.partition("=")
        try:
            out[task] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task:
            raise InputError(None, f"--task-weights expects TASK=NUMBER, got '{item}'")
        if not math.isfinite(out[task]) or out[task] < 0:
            raise InputError(None, f"--task-weights: the weight of '{task}' must be a finite number >= 0, got {value}")
    return out


def _mode_handler(app, mode: str):
    return {"predict": app.run_predict, "train": app.run_train, "val": app.run_val, "export": app.run_export}[mode]


def _run_demo(args: argparse.Namespace) -> int:
    from polyhead.demo import launch

    launch(host=args.host, port=args.port, share=args.share)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``polyhead`` command; returns the exit code."""
    import warnings

    offline.apply()  # before any library that could reach the network loads
    warnings.formatwarning = lambda message, category, *_, **__: f"warning: {message}\n"  # one line each
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a usage error (already printed, one line): the code, as for any other error
        if e.code in (0, None):
            raise
        return int(e.code) if isinstance(e.code, int) else 2
    if isinstance(getattr(args, "seed", None), int):  # before the app builds its model: seeded initial weights
        from polyhead.train.trainer import seed_everything

        seed_everything(args.seed)
    try:
        if getattr(args, "device", None) is not None:  # one line for a device this machine lacks
            from polyhead.device import select

            select(args.device)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        line = expected_error(e)
        if line is None:  # a bug in polyhead: the traceback is what a report needs
            raise
        if os.environ.get("POLYHEAD_DEBUG"):
            traceback.print_exc()
        print("error: " + line.replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)  # one line, always
        return 2 if isinstance(e, InputError) else 1


def expected_error(e: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug (shown as a traceback).

    Expected: :class:`InputError` (bad input), ``OSError`` (a full disk, ``--out`` that is a file, no
    permission: printed with the path), ``MemoryError``, ``FloatingPointError`` (a diverging loss) and
    YAML / safetensors parse errors that escaped the readers.
    """
    if isinstance(e, InputError):
        return str(e)
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
        return f"{where}: {what}" if where else what
    if isinstance(e, MemoryError):
        return "out of memory (try a smaller --batch, --imgsz or input)"
    if isinstance(e, FloatingPointError):
        return str(e)
    kind = f"{type(e).__module__}.{type(e).__name__}"
    if kind.startswith(("yaml.", "safetensors")):
        return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


if __name__ == "__main__":
    sys.exit(main())
