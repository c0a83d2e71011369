"""``polyhead bench driving``: the speed figures of the driving camera model, measured in one run.

- frames/s of the 3-task model and of three single-task models of the same encoder run one after
  another (the multi-task gain);
- torch eager vs ONNX Runtime (and OpenVINO, bfloat16 on CPUs with AMX, when installed) on the 3-task
  model;
- end-to-end video throughput (decode, letterbox, model, NMS, lane fitting, drawing, H.264 encode,
  per-frame JSON) as a share of model-only throughput.
Timings interleave the variants over several rounds and report medians (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from polyhead.apps.driving.model import INPUT_SIZE, TASKS, build_driving_model


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="weights for the end-to-end run (default: the shipped weights)")
    p.add_argument("--video", help="video for the end-to-end run (default: a generated 640x360 clip)")
    p.add_argument("--frames", type=int, default=60, help="frames in the generated clip")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--iters", type=int, default=10, help="forward passes per round")
    p.add_argument("--imgsz", type=int, nargs=2, default=list(INPUT_SIZE), metavar=("H", "W"))
    p.add_argument("--json", help="write the figures to this JSON file")


def _time(fn, iters: int) -> float:
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters


def run_bench(args: argparse.Namespace) -> int:
    from polyhead.export import OnnxModel, export_onnx

    h, w = args.imgsz
    x = torch.randn(1, 3, h, w)
    from polyhead.runtime import for_cpu_inference

    multi = for_cpu_inference(build_driving_model())
    singles = [for_cpu_inference(build_driving_model(tasks=(t,))) for t in TASKS]
    tmp = Path(tempfile.mkdtemp(prefix="polyhead_bench_"))
    onnx = OnnxModel(export_onnx(multi, tmp / "driving.onnx", (h, w)))
    variants = {
        "multi_task_torch": lambda: multi(x),
        "single_tasks_torch": lambda: [m(x) for m in singles],
        "multi_task_onnx": lambda: onnx(x),
    }
    openvino = _openvino_model(tmp / "driving.onnx")
    if openvino is not None:
        variants["multi_task_openvino"] = lambda: openvino(x)
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for fn in variants.values():
            fn(), fn()  # warm-up
        for _ in range(args.rounds):
            for k, fn in variants.items():
                times[k].append(_time(fn, args.iters))
    sec = {k: statistics.median(v) for k, v in times.items()}
    e2e = _end_to_end(args, tmp)
    fig = {
        "input": f"{w}x{h}, batch 1, {torch.get_num_threads()} threads",
        "fps_multi_task_torch": 1 / sec["multi_task_torch"],
        "fps_three_single_task_torch": 1 / sec["single_tasks_torch"],
        "multi_vs_single_ratio": sec["single_tasks_torch"] / sec["multi_task_torch"],
        "fps_multi_task_onnx": 1 / sec["multi_task_onnx"],
        "onnx_vs_eager_ratio": sec["multi_task_torch"] / sec["multi_task_onnx"],
        **(
            {
                f"fps_multi_task_openvino_{openvino.precision}": 1 / sec["multi_task_openvino"],
                "openvino_vs_onnx_ratio": sec["multi_task_onnx"] / sec["multi_task_openvino"],
            }
            if openvino is not None
            else {"openvino": "not installed (pip install 'polyhead[openvino]')"}
        ),
        **e2e,
    }
    for k, v in fig.items():
        print(f"{k:34s} {v:.3f}" if isinstance(v, float) else f"{k:34s} {v}")
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, fig)
    return 0


def _openvino_model(onnx_path: Path):
    """The OpenVINO runner of the exported model, or None when the extra is not installed."""
    from polyhead.errors import InputError

    try:
        from polyhead.openvino_runtime import OpenVinoModel

        return OpenVinoModel(onnx_path)
    except InputError:
        return None


def _end_to_end(args: argparse.Namespace, tmp: Path) -> dict:
    """Video throughput through the real predict path, for torch and ONNX backends, vs model-only."""
    from polyhead.apps.driving.app import DrivingApp
    from polyhead.apps.driving.synthetic import write_video
    from polyhead.export import export_onnx
    from polyhead.io import VideoReader
    from polyhead.predict import predict_video
    from polyhead.weights import load_model

    video = Path(args.video) if args.video else write_video(tmp / "clip.mp4", frames=args.frames, seed=1)
    n = len(VideoReader(video)) or args.frames
    out: dict = {"video": f"{video.name}, {n} frames"}
    weights = Path(args.weights) if args.weights else DrivingApp().default_weights
    model, _ = load_model(weights)
    onnx_path = export_onnx(model, tmp / "e2e.onnx", tuple(args.imgsz))
    import shutil

    shutil.copyfile(weights.with_suffix(".json"), onnx_path.with_suffix(".json"))
    for backend, path in (("torch", weights), ("onnx", onnx_path)):
        app = DrivingApp().load(path, imgsz=tuple(args.imgsz), runtime="torch" if backend == "torch" else "onnx")
        x = torch.randn(1, 3, *args.imgsz)
        with torch.inference_mode():
            app.model(x)
            model_s = statistics.median(_time(lambda a=app, t=x: a.model(t), args.iters) for _ in range(3))
        t = time.perf_counter()
        infer, finish = app.video_stages()
        frames = predict_video(
            video, tmp / f"out_{backend}.mp4", infer, json_dir=tmp / f"json_{backend}", finish=finish, progress=False
        )
        e2e_fps = frames / (time.perf_counter() - t)
        out[f"fps_model_only_{backend}"] = 1 / model_s
        out[f"fps_end_to_end_{backend}"] = e2e_fps
        out[f"end_to_end_share_{backend}"] = e2e_fps * model_s
    return out


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_bench_arguments(p)
    print(json.dumps(run_bench(p.parse_args())))
