"""Generated road scenes with exact labels: drivable road, lane markings, boxed vehicles.

For tests, smoke training and the demo's examples (made by the project, not third-party data).

>>> scene = road_scene(np.random.default_rng(0))
>>> scene.image.shape, scene.drivable.dtype, scene.boxes.shape[1]
((360, 640, 3), dtype('uint8'), 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from polyhead.io.writers import write_image, write_json


@dataclass
class Scene:
    image: np.ndarray  # RGB uint8
    drivable: np.ndarray  # uint8 0/1
    lane: np.ndarray  # uint8 0/1
    boxes: np.ndarray  # (n, 5): cls, x1, y1, x2, y2 in pixels


def road_scene(rng: np.random.Generator, size: tuple[int, int] = (360, 640), n_cars: int | None = None) -> Scene:
    """A perspective road with 2-4 lanes, dashed/solid markings, sky, verges and 0-3 vehicles."""
    h, w = size
    horizon = int(h * rng.uniform(0.38, 0.5))
    vp = (w * rng.uniform(0.4, 0.6), horizon)
    sky = np.array(rng.integers(120, 220, 3))
    ground = np.array([rng.integers(60, 110), rng.integers(90, 150), rng.integers(40, 90)])
    img = np.zeros((h, w, 3), np.uint8)
    img[:horizon] = sky
    img[horizon:] = ground
    half = w * rng.uniform(0.55, 0.9)
    centre = w * rng.uniform(0.4, 0.6)
    road = np.array([[vp[0] - 4, vp[1]], [vp[0] + 4, vp[1]], [centre + half, h], [centre - half, h]], np.int32)
    drivable = np.zeros((h, w), np.uint8)
    cv2.fillPoly(drivable, [road], 1)
    grey = int(rng.integers(70, 130))
    img[drivable > 0] = grey
    lane = np.zeros((h, w), np.uint8)
    n_lanes = int(rng.integers(2, 5))
    for j in range(n_lanes + 1):
        t = j / n_lanes
        bottom = (centre - half + 2 * half * t, h)
        top = (vp[0] - 4 + 8 * t, vp[1])
        dashed = 0 < j < n_lanes and rng.random() < 0.7
        col = (230, 200, 40) if j == 0 and rng.random() < 0.3 else (235, 235, 235)
        for s in np.linspace(0, 1, 40 if dashed else 2)[:-1] if dashed else [0.0]:
            a, b = (s, s + 0.5 / 40 * 2) if dashed else (0.0, 0.97)
            if dashed and int(s * 40) % 2:
                continue
            p0 = _lerp(bottom, top, a**0.6)
            p1 = _lerp(bottom, top, min(b, 0.97) ** 0.6)
            thick = max(1, int(8 * (1 - a**0.6)))
            cv2.line(img, p0, p1, col, thick, cv2.LINE_AA)
            cv2.line(lane, p0, p1, 1, max(2, thick))
    lane &= drivable | cv2.dilate(drivable, np.ones((5, 5), np.uint8))
    boxes = []
    for _ in range(int(rng.integers(0, 4)) if n_cars is None else n_cars):
        depth = rng.uniform(0.15, 0.9)
        y2 = int(horizon + (h - horizon) * depth)
        cw = int(w * 0.28 * depth) + 8
        ch = int(cw * rng.uniform(0.6, 0.85))
        x_mid = _lerp((centre - half * 0.6, h), (vp[0], horizon), 1 - depth)[0] + rng.uniform(-0.5, 0.5) * half * depth
        x1 = int(np.clip(x_mid - cw / 2, 0, w - cw - 1))
        y1 = max(horizon - ch // 3, y2 - ch)
        body = tuple(int(v) for v in rng.integers(20, 240, 3))
        cv2.rectangle(img, (x1, y1), (x1 + cw, y2), body, -1)
        cv2.rectangle(img, (x1 + cw // 8, y1 + ch // 8), (x1 + cw * 7 // 8, y1 + ch * 2 // 5), (30, 40, 50), -1)
        cv2.rectangle(img, (x1, y2 - ch // 6), (x1 + cw // 5, y2), (15, 15, 15), -1)
        cv2.rectangle(img, (x1 + cw * 4 // 5, y2 - ch // 6), (x1 + cw, y2), (15, 15, 15), -1)
        drivable[y1 : y2 + 1, x1 : x1 + cw + 1] = 0
        lane[y1 : y2 + 1, x1 : x1 + cw + 1] = 0
        boxes.append([0, x1, y1, x1 + cw, y2])
    noise = rng.normal(0, 6, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return Scene(img, drivable, lane, np.array(boxes, np.float32).reshape(-1, 5))


def _lerp(p, q, t):
    return int(round(p[0] + (q[0] - p[0]) * t)), int(round(p[1] + (q[1] - p[1]) * t))


def write_bdd_dataset(
    root: str | Path,
    n_train: int = 16,
    n_val: int = 4,
    seed: int = 0,
    size: tuple[int, int] = (360, 640),
    names: tuple[str, ...] = ("car", "pedestrian", "cyclist"),
    partial: bool = True,
) -> Path:
    """Write generated scenes in the YOLOP/BDD100K layout plus ``driving.yaml``; returns the YAML path.

    With ``partial``, every third training image lacks its lane label and every fifth its boxes
    (missing files), exercising partial-label training.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            s = road_scene(rng, size)
            stem = f"{split}{i:04d}"
            write_image(root / "images" / split / f"{stem}.jpg", s.image)
            write_image(root / "da_seg_annotations" / split / f"{stem}.png", s.drivable * 255)
            if not (partial and split == "train" and i % 3 == 1):
                write_image(root / "ll_seg_annotations" / split / f"{stem}.png", s.lane * 255)
            if not (partial and split == "train" and i % 5 == 2):
                objects = [
                    {
                        "category": names[int(c)],
                        "box2d": {"x1": float(a), "y1": float(b), "x2": float(c2), "y2": float(d)},
                    }
                    for c, a, b, c2, d in s.boxes
                ]
                write_json(
                    root / "det_annotations" / split / f"{stem}.json", {"name": stem, "frames": [{"objects": objects}]}
                )
    yaml_path = root / "driving.yaml"
    yaml_path.write_text(f"format: bdd100k\npath: .\ntrain: train\nval: val\nnames: {list(names)}\n")
    return yaml_path


def write_video(
    path: str | Path, frames: int = 12, seed: int = 0, size: tuple[int, int] = (360, 640), fps: float = 10.0
) -> Path:
    """A short generated dash-cam clip (H.264)."""
    from polyhead.io.writers import VideoWriter

    rng = np.random.default_rng(seed)
    with VideoWriter(path, fps=fps) as w:
        for _ in range(frames):
            w.write(road_scene(rng, size).image)
    return Path(path)
