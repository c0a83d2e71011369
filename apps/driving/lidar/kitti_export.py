"""LiDAR boxes as KITTI ``label_2`` objects (``polyhead driving lidar --save-kitti``).

KITTI labels live in the rectified camera frame: with a calibration file (``--calib``) the boxes go
through ``Tr_velo_to_cam`` and ``R0_rect`` and get their 2-D box in image_2 by projecting the eight
corners through ``P2`` (clipped to the image when it is known, ``truncated`` = the share cut off);
without one the nominal KITTI axes are used (camera x = -LiDAR y, y = -z, z = x) and the 2-D box is
``0 0 0 0``. Clusters have no confidence, so the score column is 1.

>>> from polyhead.apps.driving.lidar.geometry import Box3D
>>> obj = kitti_objects([Box3D(np.array([10.0, 2.0, -0.9]), np.array([4.0, 1.8, 1.5]), 0.0, 50, "car")])[0]
>>> obj.type, [round(v, 2) for v in obj.location], round(obj.rotation_y, 4)
('Car', [-2.0, 1.65, 10.0], -1.5708)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from polyhead.io.kitti_label import KittiObject, wrap_angle

#: polyhead's LiDAR labels -> KITTI object types
KITTI_TYPES = {"car": "Car", "pedestrian": "Pedestrian", "cyclist": "Cyclist", "truck": "Truck"}
#: nominal LiDAR -> camera rotation of KITTI's rig (no calibration file)
_NOMINAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def kitti_objects(boxes: Sequence, calib=None, image_shape: tuple[int, int] | None = None) -> list[KittiObject]:
    """``label_2`` objects of LiDAR :class:`Box3D` boxes; ``calib`` a :class:`KittiCalib` or None,
    ``image_shape`` the camera image's ``(h, w)`` for clipping the 2-D boxes."""
    if calib is not None:
        rot = calib.R0 @ calib.Tr[:, :3]

        def to_cam(xyz: np.ndarray) -> np.ndarray:
            return calib.velo_to_rect(np.atleast_2d(xyz))
    else:
        rot = _NOMINAL

        def to_cam(xyz: np.ndarray) -> np.ndarray:
            return np.atleast_2d(xyz) @ _NOMINAL.T

    out = []
    for b in boxes:
        length, width, height = (float(v) for v in b.size)
        bottom = np.asarray(b.center, float) - [0.0, 0.0, height / 2]
        loc = to_cam(bottom)[0]
        heading = rot @ np.array([math.cos(b.yaw), math.sin(b.yaw), 0.0])
        ry = wrap_angle(math.atan2(-heading[2], heading[0]))
        bbox, truncated = _image_box(b, calib, image_shape)
        out.append(
            KittiObject(
                KITTI_TYPES.get(b.label, "Misc"),
                truncated=truncated,
                bbox=bbox,
                dimensions=(height, width, length),
                location=tuple(float(v) for v in loc),
                rotation_y=ry,
                score=1.0,
            )
        )
    return out


def _image_box(box, calib, image_shape) -> tuple[tuple[float, float, float, float], float]:
    """The projected corners' 2-D box (and the share clipped away), or zeros when it is not in view."""
    if calib is None:
        return (0.0, 0.0, 0.0, 0.0), 0.0
    uv, depth = calib.project(box.corners())
    uv = uv[depth > 0.1]
    if len(uv) == 0:
        return (0.0, 0.0, 0.0, 0.0), 0.0
    x1, y1 = uv.min(0)
    x2, y2 = uv.max(0)
    full = max((x2 - x1) * (y2 - y1), 1e-9)
    if image_shape is not None:
        h, w = image_shape
        x1, x2 = float(np.clip(x1, 0, w - 1)), float(np.clip(x2, 0, w - 1))
        y1, y2 = float(np.clip(y1, 0, h - 1)), float(np.clip(y2, 0, h - 1))
    truncated = float(np.clip(1 - (x2 - x1) * (y2 - y1) / full, 0, 1))
    return (float(x1), float(y1), float(x2), float(y2)), truncated


LABEL_DIR = "label_2"
_MARK = ".polyhead-labels"


def check_outputs(out, save_kitti: bool) -> None:
    """Refuse (one line, before anything is written) a ``summary.csv`` or a ``label_2/`` of ``.txt``
    files in ``out`` that polyhead did not write (e.g. a KITTI folder's ground truth)."""
    import os
    from pathlib import Path

    from polyhead.errors import InputError
    from polyhead.io.summary_csv import is_summary

    out = Path(out)
    if (out / "summary.csv").exists() and not is_summary(out / "summary.csv"):
        raise InputError(out / "summary.csv", "exists and is not a polyhead summary; choose another --out")
    labels = out / LABEL_DIR
    if save_kitti and labels.is_dir() and not (labels / _MARK).exists():
        if any(e.name.endswith(".txt") for e in os.scandir(labels)):
            raise InputError(labels, "holds .txt labels polyhead did not write; choose another --out")


def write_scan_label(out, name: str, result, calib=None, image: np.ndarray | None = None):
    """``<out>/label_2/<name>.txt`` of one scan's boxes, atomically; returns the path."""
    from pathlib import Path

    from polyhead.io.kitti_label import write_kitti_label
    from polyhead.io.writers import write_bytes

    labels = Path(out) / LABEL_DIR
    if not (labels / _MARK).exists():
        write_bytes(labels / _MARK, b"label_2 files written by polyhead driving lidar --save-kitti\n")
    shape = image.shape[:2] if image is not None else None
    return write_kitti_label(labels / f"{name}.txt", kitti_objects(result.boxes, calib, shape))


def summary_figures(doc: dict) -> dict:
    """A scan's ``summary.csv`` figures from its JSON (so a resumed scan gives the same row): boxes per
    label and the point counts."""
    labels = ("car", "pedestrian", "cyclist", "truck", "obstacle")
    boxes = doc.get("boxes") or []
    row: dict = {label: sum(b.get("label") == label for b in boxes) for label in labels}
    points = doc.get("points") or {}
    row["points"] = points.get("processed")
    row["ground_points"] = points.get("ground")
    return row
