"""``polyhead bench medical``: images/s at 512x512 (PH2 model, whole pipeline and model only) and
sliding-window time on a 2048x2048 image (DRIVE patch model) with and without 4-flip TTA, with tiles of the
training patch and with the larger inference window (the default of predict), in one run. The issue #18
target: 2048x2048 with 4-flip TTA in under 30 s on 2 cores.

>>> polyhead bench medical --threads 2 --json runs/bench_medical.json     # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np
import torch


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="ph2", help="whole-image model (default: the shipped PH2 weights)")
    p.add_argument("--patch-weights", default="drive", help="patch model for the sliding window (default: DRIVE)")
    p.add_argument("--images", type=int, default=8, help="512x512 images per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--large", type=int, default=2048, help="side of the sliding-window test image")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--window", type=int, nargs=2, metavar=("H", "W"), help="inference tile (default: predict's)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the target is for 2 cores)")
    p.add_argument("--skip-patch-tiles", action="store_true", help="time only the large window (faster)")
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch", help="for the sliding-window model")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(args: argparse.Namespace) -> int:
    from polyhead.apps.medical.app import MedicalApp
    from polyhead.apps.medical.synthetic import fundus_image
    from polyhead.preprocess import to_tensor

    torch.set_num_threads(max(1, args.threads))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (512, 512, 3), dtype=np.uint8) for _ in range(args.images)]
    app = MedicalApp().load(args.weights)
    h, w = app.predictor.size
    x = to_tensor(np.zeros((h, w, 3), np.uint8))[None]
    e2e, model_only = [], []
    with torch.inference_mode():
        app.predict_image(images[0])  # warm-up
        for _ in range(args.rounds):
            t = time.perf_counter()
            for im in images:
                app.predict_image(im)
            e2e.append(len(images) / (time.perf_counter() - t))
            t = time.perf_counter()
            for _ in images:
                app.model(x)
            model_only.append(len(images) / (time.perf_counter() - t))
    figures: dict = {
        "whole_image_model": str(app.weights_path),
        "model_input": [h, w],
        "images_per_s_512_end_to_end": round(statistics.median(e2e), 3),
        "images_per_s_model_only": round(statistics.median(model_only), 3),
    }
    from polyhead.sliding import window_starts

    big, _, _ = fundus_image(rng, args.large)
    rss0 = _peak_rss_mb()
    window = tuple(args.window) if args.window else None
    patch_app = MedicalApp().load(args.patch_weights, window=window, runtime=args.runtime)
    ph, pw = patch_app.predictor.size
    wh, ww = patch_app.predictor.window
    tiles = (
        {"window": (wh, ww)}
        if args.skip_patch_tiles or args.runtime == "onnx"
        else {"patch": (ph, pw), "window": (wh, ww)}
    )
    for name, tile in tiles.items():
        patch_app.predictor.window = tile
        for tta in (False, True):
            patch_app.predictor.tta = tta
            t = time.perf_counter()
            result = patch_app.predict_image(big)
            figures[f"sliding_{args.large}_{name}_s{'_tta' if tta else ''}"] = round(time.perf_counter() - t, 3)
            assert result.mask.shape == big.shape[:2]
        ov = patch_app.predictor.window_overlap
        n = len(window_starts(args.large, tile[0], ov)) * len(window_starts(args.large, tile[1], ov))
        figures[f"{name}_tiles"] = n
    key = f"sliding_{args.large}_window_s_tta"
    figures.update(
        {
            "patch_model": str(patch_app.weights_path),
            "patch": [ph, pw],
            "window": [wh, ww],
            "overlap_of_patch": patch_app.predictor.overlap,
            "overlap_of_window": round(patch_app.predictor.window_overlap, 4),
            "tta_slowdown": round(figures[key] / figures[f"sliding_{args.large}_window_s"], 3),
            "target_s_tta": 30.0,
            "target_met": figures[key] < 30.0,
            "peak_rss_mb": round(max(rss0, _peak_rss_mb()), 1),
            "threads": torch.get_num_threads(),
            "runtime": args.runtime,
        }
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, figures)
    return 0
