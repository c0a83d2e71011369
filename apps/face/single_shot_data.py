"""Training samples for the single-shot face detector: square crops of real photos and of composites.

Two kinds of scene, mixed every epoch:

- **photos with boxes** (the VOC crowd photos, dlib's training photos; no points): every box is a face;
- **composites**: face-free backgrounds (the other apps' scenes) with 1-6 landmark crops pasted at random
  sizes (:func:`polyhead.apps.face.samples.composite`), so the 5 points are labelled.

Each sample is scaled the way inference scales it (the long side to ``long_side`` x U(0.5, 1.3)), cut to a
random ``size`` x ``size`` window (padded grey when smaller), flipped half the time (the points' left and
right swap), and jittered in brightness, contrast, colour, blur and noise. Boxes keep at least 60% of their
area inside the window or are dropped; the rows are ``(0, cx, cy, w, h, x1, y1, v1, ..., x5, y5, v5)``
normalised to the window (v = 0 where a face has no points), as :class:`polyhead.heads.PoseHead` reads them.

>>> ds = SingleShotScenes(photos=[], landmarks=[], backgrounds=[], size=64, composites=0)
>>> len(ds)
0
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from polyhead.apps.face.samples import Scene, box_from_points, composite
from polyhead.apps.face.single_shot import FLIP_ORDER, NUM_POINTS
from polyhead.preprocess import PAD_VALUE, to_tensor

MIN_KEPT_AREA = 0.6  # share of a face box that must stay inside the window
MIN_SIDE = 3.0  # boxes smaller than this (window pixels) are dropped


def _read(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness / contrast / gamma / saturation jitter, sometimes blur or sensor noise (uint8 in, out)."""
    x = img.astype(np.float32)
    x = (x - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-30, 30)
    grey = x.mean(2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.5, 1.4)
    x = 255 * (np.clip(x, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.2:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.random() < 0.2:
        x = x + rng.normal(0, rng.uniform(2, 10), x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def window_sample(
    scene: Scene, rng: np.random.Generator, size: int, long_side: int, augment: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One ``size`` x ``size`` training window of a scene -> (uint8 image, rows (n, 5 + 3 * 5))."""
    h, w = scene.image.shape[:2]
    k = long_side / max(h, w) * (rng.uniform(0.5, 1.3) if augment else 1.0)
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    img = cv2.resize(scene.image, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    boxes = scene.boxes.astype(np.float32) * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    points = scene.points.astype(np.float32) * np.array([nw / w, nh / h], np.float32)
    # a random window (centred when not augmenting); padding where the image is smaller
    x0 = int(rng.integers(min(0, nw - size), max(0, nw - size) + 1)) if augment else (nw - size) // 2
    y0 = int(rng.integers(min(0, nh - size), max(0, nh - size) + 1)) if augment else (nh - size) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(nw, x0 + size), min(nh, y0 + size)
    canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    boxes = boxes - np.array([x0, y0, x0, y0], np.float32)
    points = points - np.array([x0, y0], np.float32)
    if augment and rng.random() < 0.5:
        canvas = np.ascontiguousarray(canvas[:, ::-1])
        boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1)
        points = points[:, list(FLIP_ORDER)] * np.array([-1, 1], np.float32) + np.array([size, 0], np.float32)
    if augment:
        canvas = photometric(canvas, rng)
    clipped = boxes.clip(0, size)
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6), 1)
    kept_area = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), 1)
    side = np.minimum(clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1])
    keep = (kept_area >= MIN_KEPT_AREA * area) & (side >= MIN_SIDE)
    clipped, points = clipped[keep], points[keep]
    labelled = np.isfinite(points).all(2) & (points >= 0).all(2) & (points < size).all(2)
    rows = np.zeros((len(clipped), 5 + 3 * NUM_POINTS), np.float32)
    rows[:, 1] = (clipped[:, 0] + clipped[:, 2]) / 2 / size
    rows[:, 2] = (clipped[:, 1] + clipped[:, 3]) / 2 / size
    rows[:, 3] = (clipped[:, 2] - clipped[:, 0]) / size
    rows[:, 4] = (clipped[:, 3] - clipped[:, 1]) / size
    pts = np.where(labelled[..., None], np.nan_to_num(points) / size, 0.0)
    rows[:, 5:] = np.concatenate([pts, labelled[..., None].astype(np.float32)], 2).reshape(len(rows), 3 * NUM_POINTS)
    return canvas, rows


class SingleShotScenes(Dataset):
    """Photos (read per sample) plus ``composites`` generated scenes per epoch; see the module docstring.

    ``photos``: ``[(image path, boxes (n, 4) xyxy)]``; ``landmarks``: ``[(crop path, points (5, 2))]``;
    ``backgrounds``: face-free image paths. Sample ``i`` of epoch ``e`` draws from a generator seeded by
    ``(seed, e, i)``, so runs repeat and resumed runs continue the same sequence.
    """

    def __init__(
        self,
        photos: list[tuple[Path, np.ndarray]],
        landmarks: list[tuple[Path, np.ndarray]],
        backgrounds: list[Path],
        size: int = 416,
        long_side: int = 640,
        composites: int = 600,
        augment: bool = True,
        norm=((0.5,) * 3, (0.5,) * 3),
        seed: int = 0,
    ):
        self.photos, self.landmarks, self.backgrounds = list(photos), list(landmarks), list(backgrounds)
        self.size, self.long_side, self.augment, self.norm, self.seed = size, long_side, augment, norm, seed
        self.composites = composites if (self.landmarks and self.backgrounds) else 0
        self.epoch = 0
        self.bad: set[str] = set()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.photos) + self.composites

    def scene(self, i: int, rng: np.random.Generator) -> tuple[Scene | None, str]:
        if i < len(self.photos):
            path, boxes = self.photos[i]
            img = _read(path)
            nan = np.full((len(boxes), NUM_POINTS, 2), np.nan, np.float32)
            return (None if img is None else Scene(img, np.asarray(boxes, np.float32), nan)), path.name
        bg_path = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        bg = _read(bg_path)
        if bg is None:
            return None, bg_path.name
        faces = []
        for j in rng.choice(len(self.landmarks), size=int(rng.integers(1, 7)), replace=True):
            path, pts = self.landmarks[int(j)]
            img = _read(path)
            if img is not None:
                faces.append(Scene(img, box_from_points(pts)[None], np.asarray(pts, np.float32)[None]))
        side = max(self.size, 320)
        return composite(bg, faces, rng, (side, round(side * rng.uniform(1.0, 1.5))), min_side=10), f"composite{i}"

    def __getitem__(self, i: int) -> dict | None:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        scene, name = self.scene(i, rng)
        if scene is None:
            self.bad.add(name)
            return None
        img, rows = window_sample(scene, rng, self.size, self.long_side, self.augment)
        return {"image": to_tensor(img, *self.norm), "targets": {"faces": torch.from_numpy(rows)}, "name": name}
