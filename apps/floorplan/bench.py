"""``polyhead bench floorplan``: plans/s of the network at 512x512; end-to-end plans/s with and without
reading the printed text (OCR, when the extra is installed) and with the 4-flip average (``--tta``); the
times of OCR, vectorisation and 3D extrusion (mesh build + .glb write). Medians over interleaved rounds,
on a generated plan that prints room names and dimensions.

>>> main(["bench", "floorplan", "--rounds", "3"])   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="weights (default: the shipped weights; random init if absent)")
    p.add_argument("--imgsz", type=int, default=512, help="square network input size (default 512)")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (medians are reported)")
    p.add_argument("--json", help="write the figures to this JSON file")


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run_bench(args: argparse.Namespace) -> int:
    from polyhead.apps.floorplan.app import FloorplanApp
    from polyhead.apps.floorplan.model import build_floorplan_model
    from polyhead.apps.floorplan.postprocess import vectorise, write_glb
    from polyhead.apps.floorplan.synthetic import labelled_plan
    from polyhead.ocr import available, read_text

    torch.set_num_threads(max(1, torch.get_num_threads()))
    app = FloorplanApp()
    weights = Path(args.weights) if args.weights else app.default_weights
    if weights.is_file():
        app.load(weights, imgsz=(args.imgsz, args.imgsz))
        source = str(weights)
    else:
        app.model, app.imgsz, source = build_floorplan_model().eval(), (args.imgsz, args.imgsz), "random init"
    plan = labelled_plan(np.random.default_rng(0), (args.imgsz, args.imgsz)).plan
    ocr = available()
    x = torch.randn(1, 3, args.imgsz, args.imgsz)
    tmp = Path(tempfile.mkdtemp(prefix="polyhead_bench_"))
    times: dict[str, list[float]] = {
        "model": [],
        "end_to_end": [],
        "end_to_end_no_ocr": [],
        "end_to_end_tta_no_ocr": [],
        "vectorise": [],
        "mesh_3d": [],
    }
    if ocr:
        times["ocr"] = []
    with torch.inference_mode():
        app.model(x), app.predict_image(plan.image)  # warm-up (loads the OCR models too)
        for _ in range(args.rounds):
            times["model"].append(_timed(lambda: app.model(x))[0])
            times["end_to_end"].append(_timed(lambda: app.predict_image(plan.image, ocr=ocr))[0])
            times["end_to_end_no_ocr"].append(_timed(lambda: app.predict_image(plan.image, ocr=False))[0])
            tta_run = _timed(lambda: app.predict_image(plan.image, ocr=False, tta=True))[0]
            times["end_to_end_tta_no_ocr"].append(tta_run)
            if ocr:
                times["ocr"].append(_timed(lambda: read_text(plan.image))[0])
            dt, result = _timed(lambda: vectorise(plan.boundary, plan.room, scale=50.0))
            times["vectorise"].append(dt)
            times["mesh_3d"].append(_timed(lambda r=result: write_glb(tmp / "plan.glb", r.to_mesh()))[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    doc = {
        "weights": source,
        "input": f"{args.imgsz}x{args.imgsz}",
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "model_plans_per_s": round(1 / med["model"], 2),
        "ocr": "rapidocr" if ocr else "off (pip install 'polyhead[ocr]')",
        "end_to_end_plans_per_s": round(1 / med["end_to_end"], 2),
        "end_to_end_no_ocr_plans_per_s": round(1 / med["end_to_end_no_ocr"], 2),
        "end_to_end_tta_no_ocr_plans_per_s": round(1 / med["end_to_end_tta_no_ocr"], 2),
        "ocr_ms": round(1000 * med["ocr"], 1) if ocr else None,
        "vectorise_ms": round(1000 * med["vectorise"], 1),
        "mesh_3d_ms": round(1000 * med["mesh_3d"], 1),
        "plan": {"rooms": len(result.rooms), "walls": len(result.walls), "openings": len(result.openings)},
    }
    print(json.dumps(doc, indent=2))
    if args.json:
        from polyhead.io import write_json

        write_json(args.json, doc)
    return 0
