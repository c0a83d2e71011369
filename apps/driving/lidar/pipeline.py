"""One scan through the whole pipeline, timed by stage; drawing and writing its outputs.

>>> result = process(read_scan("000000.bin"))          # doctest: +SKIP
>>> [b.label for b in result.boxes][:3]                # doctest: +SKIP
['car', 'car', 'pedestrian']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from polyhead.apps.driving.lidar.geometry import (
    Box3D,
    GroundPlane,
    LidarConfig,
    classify_size,
    cluster,
    crop,
    fit_box,
    fit_ground,
    voxel_down,
)
from polyhead.apps.driving.lidar.io import Scan
from polyhead.errors import InputError

GROUND_RGB = (40, 200, 60)
BOX_RGB = {
    "car": (255, 80, 80),
    "pedestrian": (255, 200, 0),
    "cyclist": (0, 200, 255),
    "truck": (255, 0, 255),
    "obstacle": (200, 200, 200),
}


@dataclass
class LidarResult:
    name: str
    points: np.ndarray  # down-sampled, cropped cloud (M, 3)
    intensity: np.ndarray | None
    ground: np.ndarray  # (M,) bool
    labels: np.ndarray  # (M,) cluster id or -1
    plane: GroundPlane | None
    boxes: list[Box3D]
    input_points: int
    dropped: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # e.g. camera-LiDAR fusion counts

    def to_json(self) -> dict:
        return {
            "scan": self.name,
            "points": {
                "input": self.input_points,
                "non_finite_dropped": self.dropped,
                "processed": len(self.points),
                "ground": int(self.ground.sum()),
            },
            "ground_plane": None
            if self.plane is None
            else {
                "abcd": np.round(self.plane.coeffs, 5).tolist(),
                "tilt_deg": round(self.plane.tilt_deg, 2),
                "height_below_sensor_m": round(float(-self.plane.height_at(np.zeros(1), np.zeros(1))[0]), 3),
            },
            "boxes": [b.to_json() for b in self.boxes],
            "frame": "LiDAR: x forward, y left, z up (m); yaw about z from x, counter-clockwise",
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            **self.extras,
        }

    def colors(self) -> np.ndarray:
        """(M, 3) 0..1: ground green, boxed obstacles by class, other points by height."""
        z = self.points[:, 2]
        if len(z) == 0:
            return np.zeros((0, 3))
        t = np.clip((z - np.percentile(z, 2)) / max(1e-6, np.ptp(z)), 0, 1)
        col = cv2.applyColorMap((t * 255).astype(np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0, ::-1] / 255.0
        col[self.ground] = np.array(GROUND_RGB) / 255.0
        for b in self.boxes:
            inside = _inside(self.points, b)
            col[inside] = np.array(BOX_RGB.get(b.label, (200, 200, 200))) / 255.0
        return col


def _inside(xyz: np.ndarray, b: Box3D, margin: float = 0.1) -> np.ndarray:
    c, s = np.cos(b.yaw), np.sin(b.yaw)
    d = xyz - b.center
    u = d[:, 0] * c + d[:, 1] * s
    v = -d[:, 0] * s + d[:, 1] * c
    l, w, h = b.size / 2 + margin
    return (np.abs(u) <= l) & (np.abs(v) <= w) & (np.abs(d[:, 2]) <= h)


def process(scan: Scan, cfg: LidarConfig | None = None) -> LidarResult:
    """Crop, voxel, ground, cluster, boxes; every stage timed. A scan with no point inside
    ``cfg.range`` raises :class:`InputError` (nothing to label)."""
    cfg = cfg or LidarConfig()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    keep = crop(scan.points, cfg.range)
    if not keep.any():
        lo, hi = scan.points.min(0).round(1).tolist(), scan.points.max(0).round(1).tolist()
        raise InputError(
            scan.path,
            f"no point inside the range x {cfg.range[0]:g}..{cfg.range[1]:g}, y {cfg.range[2]:g}..{cfg.range[3]:g}, "
            f"z {cfg.range[4]:g}..{cfg.range[5]:g} m (the {len(scan.points)} points span {lo} to {hi}; see --range)",
        )
    xyz = scan.points[keep]
    inten = scan.intensity[keep] if scan.intensity is not None else None
    t["crop"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if len(xyz):
        xyz, inten = voxel_down(xyz, inten, cfg.voxel)
    t["voxel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plane = fit_ground(xyz, cfg)
    height = (
        plane.distance(xyz) if plane is not None else xyz[:, 2] - np.percentile(xyz[:, 2], 5) if len(xyz) else xyz[:, 2]
    )
    ground = np.abs(height) <= cfg.ground_distance if plane is not None else np.zeros(len(xyz), bool)
    t["ground"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    candidates = ~ground & (height > cfg.ground_distance) & (height < cfg.max_height_above_ground)
    idx = np.nonzero(candidates)[0]
    labels = np.full(len(xyz), -1)
    labels[idx] = cluster(xyz[idx], cfg)
    t["cluster"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    boxes = []
    for k in range(labels.max() + 1 if len(labels) else 0):
        members = xyz[labels == k]
        if len(members) < cfg.min_box_points:
            continue
        box = fit_box(members, plane)
        label = classify_size(box)
        if label is not None:
            box.label = label
            boxes.append(box)
    t["boxes"] = time.perf_counter() - t0
    return LidarResult(
        scan.name,
        xyz,
        inten,
        ground,
        labels,
        plane,
        boxes,
        len(scan.points),
        scan.dropped,
        {k: v * 1000 for k, v in t.items()},
    )


def bev_shape(rng: tuple[float, ...], res: float = 0.1) -> tuple[int, int]:
    """(height, width) in pixels of the bird's-eye view of ``rng`` at ``res`` metres per pixel."""
    x0, x1, y0, y1 = rng[:4]
    return int(round((x1 - x0) / res)), int(round((y1 - y0) / res))


def render_bev(result: LidarResult, rng: tuple[float, ...], res: float = 0.1) -> np.ndarray:
    """Bird's-eye view RGB image: x forward is up, y left is left; height-coloured points, ground green,
    boxes as oriented rectangles with a heading tick."""
    x0, x1, y0, y1 = rng[:4]
    h, w = bev_shape(rng, res)
    img = np.zeros((h, w, 3), np.uint8)

    def px(xy: np.ndarray) -> np.ndarray:
        return np.stack([(y1 - xy[:, 1]) / res, (x1 - xy[:, 0]) / res], 1)

    if len(result.points):
        p = px(result.points).astype(int)
        ok = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
        col = (result.colors() * 255).astype(np.uint8)
        img[p[ok, 1], p[ok, 0]] = col[ok]
    for b in result.boxes:
        corners = px(b.corners()[:4]).astype(np.int32)
        colr = BOX_RGB.get(b.label, (200, 200, 200))
        cv2.polylines(img, [corners.reshape(-1, 1, 2)], True, colr, 2, cv2.LINE_AA)
        front = px(np.array([b.center[:2] + 0.5 * b.size[0] * np.array([np.cos(b.yaw), np.sin(b.yaw)])]))[0]
        cv2.line(img, tuple(px(b.center[None, :2])[0].astype(int)), tuple(front.astype(int)), colr, 1, cv2.LINE_AA)
    sensor = px(np.zeros((1, 2)))[0].astype(int)
    cv2.drawMarker(img, tuple(sensor), (255, 255, 255), cv2.MARKER_TRIANGLE_UP, 12, 2)
    return img


def render_overlay(image: np.ndarray, result: LidarResult, calib) -> np.ndarray:
    """Points projected into the camera image, coloured by depth, with the 3-D boxes drawn."""
    out = image.copy()
    uv, depth = calib.project(result.points)
    hgt, wid = out.shape[:2]
    ok = (depth > 0.5) & (uv[:, 0] >= 0) & (uv[:, 0] < wid) & (uv[:, 1] >= 0) & (uv[:, 1] < hgt)
    d = np.clip(depth[ok] / 60.0, 0, 1)
    col = cv2.applyColorMap((255 * (1 - d)).astype(np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1]
    for (u, v), c in zip(uv[ok].astype(int), col, strict=True):
        cv2.circle(out, (int(u), int(v)), 1, tuple(int(x) for x in c), -1)
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    for b in result.boxes:
        cuv, cd = calib.project(b.corners())
        if (cd <= 0.5).any():
            continue
        colr = BOX_RGB.get(b.label, (200, 200, 200))
        for i, j in edges:
            cv2.line(out, tuple(cuv[i].astype(int)), tuple(cuv[j].astype(int)), colr, 2, cv2.LINE_AA)
    return out


def colour_by_mask(uv: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Camera-LiDAR fusion: True for points whose projection falls on a positive pixel of ``mask``
    (e.g. the camera model's drivable area)."""
    h, w = mask.shape
    u, v = uv[:, 0].astype(int), uv[:, 1].astype(int)
    ok = (depth > 0.5) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    out = np.zeros(len(uv), bool)
    out[ok] = mask[v[ok], u[ok]] > 0
    return out


def output_paths(out: Path, name: str, overlay: bool = False) -> list[Path]:
    """The files :func:`write_outputs` makes for output name ``name``, the JSON (the completion mark) last."""
    return [
        out / f"{name}.ply",
        out / f"{name}_bev.png",
        *[out / f"{name}_overlay.png"] * overlay,
        out / f"{name}.json",
    ]


def write_outputs(
    result: LidarResult,
    out: Path,
    rng: tuple[float, ...],
    image: np.ndarray | None = None,
    calib=None,
    name: str | None = None,
    source: Path | None = None,
    bev: np.ndarray | None = None,
) -> list[Path]:
    """``<name>.ply`` (labelled colours), ``<name>_bev.png`` (``bev`` if already drawn), with a camera
    ``<name>_overlay.png``, then ``<name>.json`` (last, so an existing JSON means the scan is complete);
    each written atomically. ``name`` defaults to the scan's name; ``source`` goes into the JSON."""
    from polyhead.io.writers import write_image, write_json, write_point_cloud
    from polyhead.results import envelope

    name = name or result.name
    written = [
        write_point_cloud(out / f"{name}.ply", result.points, result.colors()),
        write_image(out / f"{name}_bev.png", render_bev(result, rng) if bev is None else bev),
    ]
    if image is not None and calib is not None:
        written.append(write_image(out / f"{name}_overlay.png", render_overlay(image, result, calib)))
    doc = envelope(result.to_json(), source if source is not None else name)
    written.append(write_json(out / f"{name}.json", doc))
    return written
