"""CLI and demo entry points of the LiDAR pipeline (wired in by ``apps/driving/app.py``).

>>> from polyhead.cli import main
>>> main(["driving", "lidar", "velodyne/", "--calib", "calib/", "--out", "runs/lidar"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from polyhead.apps.driving.lidar.geometry import LidarConfig
from polyhead.apps.driving.lidar.io import list_scans, read_scan, scan_name
from polyhead.errors import DependencyError, InputError
from polyhead.io import SourceItem

DEFAULT_KITTI = Path(__file__).resolve().parents[4] / "shared" / "data" / "driving" / "kitti_sample"


def _config(args: argparse.Namespace) -> LidarConfig:
    cfg = LidarConfig()
    if getattr(args, "range", None):
        cfg.range = tuple(args.range)
    if getattr(args, "voxel", None):
        cfg.voxel = args.voxel
    return cfg


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--range",
        type=float,
        nargs=6,
        metavar=("XMIN", "XMAX", "YMIN", "YMAX", "ZMIN", "ZMAX"),
        help="region of interest in metres (default -40 70 -40 40 -3 3)",
    )
    p.add_argument("--voxel", type=float, help="voxel size in metres (default 0.12)")


def add_lidar_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="scan file, folder or glob (.bin, .pcd.bin, .pcd, .ply, .npy)")
    p.add_argument("--out", default="runs/lidar", help="output folder")
    p.add_argument("--calib", help="KITTI calibration file, or folder of <scan>.txt")
    p.add_argument("--image", help="camera image, or folder of <scan>.png, for the overlay")
    p.add_argument("--fuse", action="store_true", help="colour points on the camera model's drivable area")
    p.add_argument("--resume", action="store_true", help="skip scans whose outputs already exist")
    p.add_argument(
        "--save-kitti", action="store_true", help="KITTI label_2 files of the boxes in <out>/label_2 (camera frame)"
    )
    _add_common(p)


def _match(spec: str | None, name: str, suffixes: tuple[str, ...]) -> Path | None:
    if not spec:
        return None
    p = Path(spec)
    if p.is_dir():
        return next((p / f"{name}{s}" for s in suffixes if (p / f"{name}{s}").is_file()), None)
    return p


#: the files a scan writes, as suffixes of its output name (for ``polyhead.predict.unique_names``)
SCAN_OUTPUTS = {"scan": (".ply", "_bev.png", "_overlay.png", ".json")}


class ScanItem(SourceItem):
    """One input scan, named without its point-cloud suffix (``a.pcd.bin`` -> ``a``)."""

    def __init__(self, path: Path):
        super().__init__(path, "scan")

    @property
    def name(self) -> str:
        return scan_name(self.path)


def scan_items(source: str | Path, out: Path) -> list[ScanItem]:
    """The scans of ``source`` that are not inside ``out`` (a folder or glob never reads our outputs
    back); a ``source`` that is one existing file is kept wherever it lies (its outputs get another
    name than the input, see ``polyhead.predict.unique_names``)."""
    from polyhead.predict import inputs_outside

    scans = list_scans(source)
    items = inputs_outside([ScanItem(p) for p in scans], out, source)
    if not items:
        raise InputError(source, f"every scan lies inside the output folder {out} (choose another --out)")
    if len(items) < len(scans):
        print(f"note: {len(scans) - len(items)} file(s) inside the output folder {out} are not taken as scans")
    return items


def _done_bev(out: Path, name: str, item: ScanItem, shape: tuple[int, int]) -> np.ndarray | None:
    """The bird's-eye view of a scan finished by an earlier run (``--resume``: its outputs exist and
    its JSON names this input), or None."""
    from polyhead.apps.driving.lidar.pipeline import output_paths
    from polyhead.io import read_image
    from polyhead.predict import json_claims

    if not all(p.is_file() for p in output_paths(out, name)) or not json_claims(out / f"{name}.json", item):
        return None
    try:
        bev = read_image(out / f"{name}_bev.png")
    except InputError:
        return None
    return bev if bev.shape[:2] == shape else None  # another --range: redo


def _resumed_figures(path: Path) -> dict:
    """The summary figures of a scan an earlier run finished, from its JSON (none when unreadable)."""
    from polyhead.apps.driving.lidar.kitti_export import summary_figures

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return summary_figures(doc) if isinstance(doc, dict) else {}


def run_lidar(args: argparse.Namespace) -> int:
    """Process every scan: per scan ``.ply``, ``_bev.png`` (+ ``_overlay.png`` with a camera) and
    ``.json`` (last); ``bev.mp4`` for a sequence. Inputs are never outputs: scans inside ``--out``
    are not read, output names are unique per input (``a.bin`` / ``a.ply`` -> ``a`` / ``a_ply``),
    every file is atomic, and ``--resume`` skips scans whose outputs exist. A bad scan is skipped with
    one line (whatever failed); the rest finish."""
    from polyhead.apps.driving.lidar.calib import read_kitti_calib
    from polyhead.apps.driving.lidar.pipeline import bev_shape, colour_by_mask, render_bev, write_outputs
    from polyhead.io import VideoWriter, read_image
    from polyhead.io.writers import sweep_temp_files
    from polyhead.predict import item_key, unique_names

    cfg = _config(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file, not a folder")
    items = scan_items(args.source, out)
    from polyhead.apps.driving.lidar.kitti_export import check_outputs, summary_figures, write_scan_label

    check_outputs(out, getattr(args, "save_kitti", False))  # never replace files polyhead did not write
    from polyhead.io.summary_csv import SummaryTable

    table = SummaryTable()
    sweep_temp_files(out)  # this program's temp files of writes cut short by a kill, nothing else
    by_key = unique_names(items, out, SCAN_OUTPUTS)
    names = {id(i): by_key[item_key(i)] for i in items}
    ok, skipped, resumed = 0, 0, 0
    video = VideoWriter(out / "bev.mp4", fps=10) if len(items) > 1 else None
    fusion = None
    if args.fuse:
        try:
            from polyhead.apps.driving.app import DrivingApp

            fusion = DrivingApp().load()
        except (ImportError, InputError) as e:
            print(f"error: --fuse needs the camera model ({e})", file=sys.stderr)
            return 2
    done = {}
    if getattr(args, "resume", False):
        shape = bev_shape(cfg.range)
        done = {id(i): bev for i in items if (bev := _done_bev(out, names[id(i)], i, shape)) is not None}
        if len(done) == len(items) and (video is None or video.path.is_file()):
            video = None  # nothing left to do, the sequence video included
    claimed: dict[str, Path] = {}
    try:
        for item in tqdm(items, desc="scans", disable=len(items) < 2):
            path, name = item.path, names[id(item)]
            if name in claimed:  # never overwrite another input's outputs
                skipped += 1
                tqdm.write(f"skipped {path}: output name '{name}' is already used by {claimed[name]}", file=sys.stderr)
                table.add(str(path), name, "skipped", f"output name '{name}' is already used by {claimed[name]}")
                continue
            claimed[name] = path
            if id(item) in done:
                table.add(str(path), name, "ok", "", _resumed_figures(out / f"{name}.json"))
                resumed += 1
                if video is not None:
                    video.write(done[id(item)])
                continue
            try:
                result = process_scan(path, cfg)
                calib_path = _match(args.calib, result.name, (".txt",))
                image_path = _match(args.image, result.name, (".png", ".jpg"))
                calib = read_kitti_calib(calib_path) if calib_path else None
                image = read_image(image_path) if image_path else None
                if fusion is not None and calib is not None and image is not None:
                    uv, depth = calib.project(result.points)
                    drivable = fusion.predict_image(image).drivable
                    on_road = colour_by_mask(uv, depth, drivable)
                    result.extras["camera_drivable_points"] = int(on_road.sum())
                    result.extras["camera_drivable_non_ground_points"] = int((on_road & ~result.ground).sum())
                bev = render_bev(result, cfg.range)
                if getattr(args, "save_kitti", False):  # before the JSON, the scan's completion mark
                    write_scan_label(out, name, result, calib, image)
                write_outputs(result, out, cfg.range, image, calib, name=name, source=path, bev=bev)
                table.add(str(path), name, "ok", "", summary_figures(result.to_json()))
                if video is not None:
                    video.write(bev)
                ok += 1
            except DependencyError:
                raise
            except InputError as e:
                skipped += 1
                tqdm.write(f"skipped {path}: {e.problem}", file=sys.stderr)
                table.add(str(path), name, "skipped", e.problem)
            except Exception as e:  # noqa: BLE001 - one bad scan (e.g. open3d's bad_alloc) never costs the rest
                skipped += 1
                detail = (str(e).splitlines() or [""])[0][:160]
                tqdm.write(f"skipped {path}: {type(e).__name__}: {detail}".rstrip(": "), file=sys.stderr)
                table.add(str(path), name, "skipped", f"{type(e).__name__}: {detail}".rstrip(": "))
    except BaseException:
        if video is not None:
            video.abort()
        raise
    if video is not None:
        if ok or resumed:
            video.close()
        else:
            video.abort()
    table.write(out / "summary.csv")
    extra = f", {resumed} already done" if resumed else ""
    print(f"{ok} scan(s) -> {out} ({skipped} skipped{extra})")
    return 0 if not skipped else (2 if not ok and not resumed else 1)


def process_scan(path: Path, cfg: LidarConfig):
    from polyhead.apps.driving.lidar.pipeline import process

    return process(read_scan(path), cfg)


def add_lidar_val_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", default=str(DEFAULT_KITTI), help="KITTI folder with velodyne/ label_2/ calib/")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    _add_common(p)


def run_lidar_val(args: argparse.Namespace) -> int:
    from polyhead.apps.driving.lidar.evaluate import evaluate

    metrics = evaluate(args.data, _config(args))
    print(json.dumps(metrics, indent=2))
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, metrics)
    return 0


def add_bench_lidar_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scan", nargs="?", default=str(DEFAULT_KITTI / "velodyne" / "000000.bin"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="write the figures to this JSON file")


def run_bench_lidar(args: argparse.Namespace) -> int:
    """Scans/s and milliseconds per stage (read, crop, voxel, ground, cluster, boxes, bev), medians."""
    from polyhead.apps.driving.lidar.pipeline import process, render_bev

    cfg = LidarConfig()
    stages: dict[str, list[float]] = {}
    totals = []
    for i in range(args.repeat + 1):
        t0 = time.perf_counter()
        scan = read_scan(args.scan)
        t_read = time.perf_counter() - t0
        result = process(scan, cfg)
        t1 = time.perf_counter()
        render_bev(result, cfg.range)
        t_bev = time.perf_counter() - t1
        if i == 0:
            continue  # warm-up
        timings = {"read": t_read * 1000, **result.timings_ms, "bev": t_bev * 1000}
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
        totals.append(time.perf_counter() - t0)
    fig = {
        "scan": str(args.scan),
        "points": int(len(scan.points)),
        "scans_per_s": 1 / float(np.median(totals)),
        "ms_per_stage": {k: float(np.median(v)) for k, v in stages.items()},
    }
    print(json.dumps(fig, indent=2))
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, fig)
    return 0


def build_lidar_tab() -> None:
    """Point-cloud file in -> labelled cloud in ``gr.Model3D``, bird's-eye view and boxes JSON."""
    import tempfile

    import gradio as gr

    from polyhead.apps.driving.lidar.pipeline import render_bev, write_outputs

    gr.Markdown(
        "Ground points are **green** (the point-cloud drivable area); clustered obstacles get oriented "
        "boxes (car red, pedestrian yellow, cyclist blue). Coordinates: x forward, y left, z up, metres."
    )
    with gr.Row():
        with gr.Column():
            cloud_in = gr.File(label="Point cloud (.bin, .pcd.bin, .pcd, .ply, .npy)", elem_id="lidar-in")
            run = gr.Button("Run", variant="primary", elem_id="lidar-run")
            examples = sorted(str(p) for p in EXAMPLES.glob("*.npy"))
            if examples:
                gr.Examples(examples, inputs=cloud_in)
        with gr.Column():
            bev = gr.Image(label="Bird's-eye view", elem_id="lidar-bev")
    with gr.Row():
        view = gr.Model3D(label="Labelled cloud", elem_id="lidar-3d", clear_color=(0, 0, 0, 1))
        doc = gr.JSON(label="Boxes", elem_id="lidar-json")

    def on_run(path):
        if not path:
            raise gr.Error("Upload a point cloud or pick an example first.")
        cfg = LidarConfig()
        try:
            result = process_scan(Path(path), cfg)
        except InputError as e:
            raise gr.Error(str(e)) from None
        out = Path(tempfile.mkdtemp(prefix="polyhead_lidar_"))
        write_outputs(result, out, cfg.range)
        return render_bev(result, cfg.range), str(out / f"{result.name}.ply"), result.to_json()

    run.click(on_run, cloud_in, [bev, view, doc], api_name="lidar_scan", concurrency_limit=1)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
