"""``polyhead bench face``: speed on 640x480 images, 8 at once vs one at a time, per stage.

Two levels are timed: the full app with the shipped weights (cascade, alignment, age and gender:
what ``polyhead face predict`` runs per batch) and the cascade alone. Timings interleave the modes
over several rounds and report medians (the machine is shared). A batch is split across the cores
(one torch thread each), so its per-stage seconds are summed over the workers (CPU seconds), while
one-at-a-time stages are wall seconds. The cascade is also timed one image at a time on a single
thread: how much one image gains from several threads bounds what batching can add on a small CPU.

The crowd case (#19's "crowded photos of about 1024 px"): 1024x768 mosaics of the demo's three real CC0
photos (2x2 tiles of 512x384, in rotating order: 14-18 masked and unmasked faces of 15-45 px each),
one image at a time, full app and cascade alone, against the 0.3 s per image target. The photos come from
the team data folder; without it the tiles are the generated scenes (and ``crowd_input`` says so).

>>> main(["bench", "face", "--rounds", "5", "--json", "runs/face_bench.json"])   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="face weights (default: the shipped file)")
    p.add_argument("--detector", choices=["cascade", "single"], help="which detector (default: the card's)")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto", help="multi-task parts' runtime")
    p.add_argument("--images", type=int, default=8, help="images per batch")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--size", type=int, nargs=2, default=[480, 640], metavar=("H", "W"))
    p.add_argument("--crowd", type=int, default=4, help="crowd mosaics of 1024x768 to time (0: skip)")
    p.add_argument("--json", help="write the figures to this JSON file")


def bench_images(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``n`` generated scenes with the astronaut portrait at varied positions and scales."""
    import cv2

    from polyhead.apps.face.demo import render_example

    out = []
    for i in range(n):
        img = render_example(seed=i)
        if img.shape[:2] != tuple(size):
            img = cv2.resize(img, (size[1], size[0]))
        out.append(np.ascontiguousarray(np.roll(img, 23 * i, axis=1)))
    return out


def crowd_images(n: int, tile: tuple[int, int] = (384, 512)) -> list[np.ndarray]:
    """``n`` 2x2 mosaics (2 tiles wide and high) of the demo's CC0 photos, each photo scaled to the tile's
    width and centre-cropped to its height; the photos rotate through the tiles from one mosaic to the next."""
    import cv2

    from polyhead.apps.face.demo import PHOTOS, render_example
    from polyhead.io import read_image

    th, tw = tile
    tiles = []
    photos = [p for p in PHOTOS if p.is_file()]
    for rgb in [read_image(p) for p in photos] or [render_example(seed=k) for k in range(3)]:
        h = round(rgb.shape[0] * tw / rgb.shape[1])
        rgb = cv2.resize(rgb, (tw, h), interpolation=cv2.INTER_AREA if rgb.shape[1] > tw else cv2.INTER_LINEAR)
        if h < th:
            rgb = cv2.copyMakeBorder(rgb, 0, th - h, 0, 0, cv2.BORDER_REFLECT)
        top = max(0, (rgb.shape[0] - th) // 2)
        tiles.append(rgb[top : top + th])
    out = []
    for i in range(n):
        order = [tiles[(i + k) % len(tiles)] for k in range(4)]
        out.append(np.ascontiguousarray(np.vstack([np.hstack(order[:2]), np.hstack(order[2:])])))
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_bench(args: argparse.Namespace) -> int:
    """Interleaved rounds of: the full app (cascade + alignment + age/gender) on the batch and on one
    image at a time, the cascade alone both ways (with per-stage times), and the cascade one image at
    a time on a single thread."""
    from polyhead.apps.face.app import FaceApp

    app = FaceApp().load(args.weights, detector=getattr(args, "detector", None), runtime=args.runtime)
    det = app.detector
    images = bench_images(args.images, tuple(args.size))
    app.predict_images(images)  # warm-up
    app.predict_images(images[:1])
    threads = torch.get_num_threads()
    runs: dict[str, list[float]] = {k: [] for k in ("app_b", "app_s", "det_b", "det_s", "det_s1")}
    stage_b, stage_s = [], []
    for _ in range(args.rounds):
        runs["app_b"].append(_timed(lambda: app.predict_images(images)))
        runs["app_s"].append(_timed(lambda: [app.predict_images([im]) for im in images]))
        det.times = type(det.times)()
        runs["det_b"].append(_timed(lambda: det.detect(images)))
        stage_b.append(dict(det.times.seconds))
        det.times = type(det.times)()
        runs["det_s"].append(_timed(lambda: [det.detect([im]) for im in images]))
        stage_s.append(dict(det.times.seconds))
        torch.set_num_threads(1)
        runs["det_s1"].append(_timed(lambda: [det.detect([im]) for im in images]))
        torch.set_num_threads(threads)
    from polyhead.apps.face.demo import PHOTOS

    crowd = crowd_images(args.crowd)
    if crowd:
        runs["crowd_app"], runs["crowd_det"] = [], []
        app.predict_images(crowd[:1])
        for _ in range(args.rounds):
            runs["crowd_app"].append(statistics.median(_timed(lambda im=im: app.predict_images([im])) for im in crowd))
            runs["crowd_det"].append(statistics.median(_timed(lambda im=im: det.detect([im])) for im in crowd))
    m = {k: statistics.median(v) for k, v in runs.items()}
    n = args.images
    cfg = det.config
    search = f"factor {cfg.factor:g}" if hasattr(cfg, "factor") else f"long side {cfg.long_side}"
    faces = sum(len(r.faces) for r in app.predict_images(images))
    fig = {
        "detector": app.detector_kind,
        "input": f"{n} images {args.size[1]}x{args.size[0]}, {threads} threads, "
        f"min face {det.config.min_size:g} px, {search}, {args.rounds} rounds (medians)",
        "faces_found_per_batch": faces,
        "app_batched_s": m["app_b"],
        "app_one_at_a_time_s": m["app_s"],
        "app_batched_images_per_s": n / m["app_b"],
        "app_one_at_a_time_images_per_s": n / m["app_s"],
        "app_batching_speedup": m["app_s"] / m["app_b"],
        "cascade_batched_s": m["det_b"],
        "cascade_one_at_a_time_s": m["det_s"],
        "cascade_batching_speedup": m["det_s"] / m["det_b"],
        "cascade_one_at_a_time_1_thread_s": m["det_s1"],
        "one_image_speedup_from_threads": m["det_s1"] / m["det_s"],
        **{f"cascade_batched_stage_{k}_cpu_s": statistics.median(s[k] for s in stage_b) for k in stage_b[0]},
        **{f"cascade_single_stage_{k}_s": statistics.median(s[k] for s in stage_s) for k in stage_s[0]},
    }
    if crowd:
        fig.update(
            {
                "crowd_input": f"{len(crowd)} mosaics {crowd[0].shape[1]}x{crowd[0].shape[0]} of the demo's "
                + ("CC0 photos" if all(p.is_file() for p in PHOTOS) else "generated scenes (no data folder)"),
                "crowd_faces_found_per_image": sum(len(r.faces) for r in app.predict_images(crowd)) / len(crowd),
                "crowd_app_s_per_image": m["crowd_app"],
                "crowd_cascade_s_per_image": m["crowd_det"],
                "crowd_target_s_per_image": 0.3,
            }
        )
    for k, v in fig.items():
        print(f"{k:42s} {v:.3f}" if isinstance(v, float) else f"{k:42s} {v}")
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, fig)
    return 0
