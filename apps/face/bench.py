"""``polyhead bench face``: cascade speed on 640x480 images, 8 at once vs one at a time, per stage.

Timings interleave the modes over several rounds and report medians (the machine is shared). A batch
is split across the cores (one torch thread each), so its per-stage seconds are summed over the
workers (CPU seconds), while one-at-a-time stages are wall seconds. The one-at-a-time run is also
timed on a single thread, which shows how much one image gains from several threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="face weights (default: the shipped file)")
    p.add_argument("--images", type=int, default=8, help="images per batch")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--size", type=int, nargs=2, default=[480, 640], metavar=("H", "W"))
    p.add_argument("--json", help="write the figures to this JSON file")


def bench_images(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``n`` generated scenes with the astronaut portrait at varied positions and scales."""
    import cv2

    from apps.face.demo import render_example

    out = []
    for i in range(n):
        img = render_example(seed=i)
        if img.shape[:2] != tuple(size):
            img = cv2.resize(img, (size[1], size[0]))
        out.append(np.ascontiguousarray(np.roll(img, 23 * i, axis=1)))
    return out


def run_bench(args: argparse.Namespace) -> int:
    from apps.face.app import FaceApp

    app = FaceApp().load(args.weights)
    det = app.detector
    images = bench_images(args.images, tuple(args.size))
    det.detect(images[:1])
    det.detect(images)  # warm-up
    batched, single, single_1t, stage_b, stage_s = [], [], [], [], []
    threads = torch.get_num_threads()
    faces = 0
    for _ in range(args.rounds):
        det.times = type(det.times)()
        t = time.perf_counter()
        res = det.detect(images)
        batched.append(time.perf_counter() - t)
        stage_b.append(dict(det.times.seconds))
        faces = sum(len(r["scores"]) for r in res)
        det.times = type(det.times)()
        t = time.perf_counter()
        for im in images:
            det.detect([im])
        single.append(time.perf_counter() - t)
        stage_s.append(dict(det.times.seconds))
        torch.set_num_threads(1)
        t = time.perf_counter()
        for im in images:
            det.detect([im])
        single_1t.append(time.perf_counter() - t)
        torch.set_num_threads(threads)
    tb, ts = statistics.median(batched), statistics.median(single)
    t = time.perf_counter()
    full = app.predict_images(images)
    t_full = time.perf_counter() - t
    fig = {
        "input": f"{args.images} images {args.size[1]}x{args.size[0]}, {torch.get_num_threads()} threads, "
        f"min face {det.config.min_size:g} px, factor {det.config.factor:g}",
        "faces_found_per_batch": faces,
        "batched_s": tb,
        "one_at_a_time_s": ts,
        "batched_images_per_s": args.images / tb,
        "one_at_a_time_images_per_s": args.images / ts,
        "batching_speedup": ts / tb,
        "one_at_a_time_1_thread_s": statistics.median(single_1t),
        "one_image_speedup_from_threads": statistics.median(single_1t) / ts,
        **{f"batched_stage_{k}_cpu_s": statistics.median(s[k] for s in stage_b) for k in stage_b[0]},
        **{f"single_stage_{k}_s": statistics.median(s[k] for s in stage_s) for k in stage_s[0]},
        "with_alignment_and_attributes_s": t_full,
        "attribute_faces": sum(len(r.faces) for r in full),
    }
    for k, v in fig.items():
        print(f"{k:36s} {v:.3f}" if isinstance(v, float) else f"{k:36s} {v}")
    if args.json:
        from shared.io.writers import write_json

        write_json(args.json, fig)
    return 0
