"""``lidar-val``: clusters against KITTI ``label_2`` boxes (Car / Pedestrian / Cyclist) in LiDAR
coordinates: recall at a 2 m centre distance (bird's-eye), and the ground plane's height error at the
labelled objects' footprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.apps.driving.lidar.calib import KittiCalib, read_kitti_calib
from polyhead.apps.driving.lidar.geometry import LidarConfig, crop
from polyhead.apps.driving.lidar.io import read_scan
from polyhead.apps.driving.lidar.pipeline import process
from polyhead.errors import InputError

CLASSES = ("Car", "Pedestrian", "Cyclist")


def read_labels(path: Path, calib: KittiCalib) -> list[tuple[str, np.ndarray, float]]:
    """(class, centre in LiDAR frame, bottom z in LiDAR frame) of the Car / Pedestrian / Cyclist lines."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f or f[0] not in CLASSES:
            continue
        if len(f) < 15:
            raise InputError(path, f"line {n}: expected 15 fields, got {len(f)}")
        h, x, y, z = float(f[8]), float(f[11]), float(f[12]), float(f[13])
        bottom, centre = calib.rect_to_velo(np.array([[x, y, z], [x, y - h / 2, z]]))
        out.append((f[0], centre, float(bottom[2])))
    return out


def evaluate(root: str | Path, cfg: LidarConfig | None = None, radius: float = 2.0) -> dict:
    """Recall per class and overall, and ground height error, over every frame of a KITTI folder."""
    cfg = cfg or LidarConfig()
    root = Path(root)
    scans = sorted((root / "velodyne").glob("*.bin"))
    if not scans:
        raise InputError(root / "velodyne", "no KITTI .bin scans")
    hits = {c: [0, 0] for c in CLASSES}
    height_err = []
    for scan_path in scans:
        calib = read_kitti_calib(root / "calib" / f"{scan_path.stem}.txt")
        labels = read_labels(root / "label_2" / f"{scan_path.stem}.txt", calib)
        result = process(read_scan(scan_path), cfg)
        centres = np.array([b.center[:2] for b in result.boxes]).reshape(-1, 2)
        for cls, centre, bottom in labels:
            if not crop(centre[None], cfg.range)[0]:
                continue
            hits[cls][1] += 1
            if len(centres) and np.linalg.norm(centres - centre[:2], axis=1).min() <= radius:
                hits[cls][0] += 1
            if result.plane is not None:
                height_err.append(abs(float(result.plane.height_at(centre[:1], centre[1:2])[0]) - bottom))
    total = [sum(v[0] for v in hits.values()), sum(v[1] for v in hits.values())]
    return {
        "frames": len(scans),
        "recall_at_2m": total[0] / total[1] if total[1] else None,
        "objects": total[1],
        "per_class": {c: {"recall_at_2m": (h / n if n else None), "objects": n} for c, (h, n) in hits.items()},
        "ground_height_error_m": {
            "mean": float(np.mean(height_err)) if height_err else None,
            "median": float(np.median(height_err)) if height_err else None,
            "objects": len(height_err),
        },
    }
