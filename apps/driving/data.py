"""Driving datasets: the YOLOP/BDD100K layout and YOLO text boxes + mask folders, with partial labels.

>>> spec = load_spec("datasets/driving.yaml")                 # doctest: +SKIP
>>> ds = DrivingDataset(spec, "train", augment=True)          # doctest: +SKIP
>>> sample = ds[0]; sorted(sample["targets"])                 # doctest: +SKIP
['det', 'drivable', 'lane']
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from polyhead.apps.driving.augment import (
    IGNORE,
    build_augment,
    lane_negatives,
    mosaic,
    repeat_factors,
    repeated_indices,
)
from polyhead.apps.driving.model import CLASSES, INPUT_SIZE
from polyhead.dataset_yaml import get_mapping, get_names, get_str, read_dataset_yaml
from polyhead.errors import InputError
from polyhead.formats.common import check_boxes
from polyhead.io.readers import IMAGE_SUFFIXES, read_image
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, Letterbox, Norm, to_tensor

#: the keys a driving dataset YAML may hold (any other is a typo: a warning names the nearest)
YAML_KEYS = ("train", "val", "test", "names", "category_map")

LAYOUTS = ("bdd100k", "yolo", "ultralytics", "coco", "tusimple", "culane", "kitti")  # the last five: formats.py


@dataclass
class DatasetSpec:
    """A parsed dataset YAML."""

    root: Path
    layout: str = "bdd100k"
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "val": "val"})
    names: list[str] = field(default_factory=lambda: list(CLASSES))
    category_map: dict[str, str] = field(default_factory=dict)

    def class_id(self, category: str) -> int | None:
        name = self.category_map.get(category, category)
        return self.names.index(name) if name in self.names else None


def load_spec(path: str | Path) -> DatasetSpec:
    """Parse a dataset YAML: ``format``, ``path`` (relative to the YAML), ``train``/``val``, ``names``,
    ``category_map``. Standard formats (ultralytics, COCO, official BDD100K, ...) go to ``formats.py``."""
    from polyhead.apps.driving import formats

    if (fmt := formats.detect_format(path)) is not None:
        return formats.load_format_spec(path, fmt)
    raw, root, layout = read_dataset_yaml(path, LAYOUTS, "bdd100k", root_must_exist=False, keys=YAML_KEYS)
    if not root.is_dir():
        raise InputError(root, f"dataset root from {Path(path).name} does not exist (run the converter first?)")
    names = get_names(raw, "names", path, CLASSES)
    splits = {k: get_str(raw, k, path) for k in ("train", "val", "test") if k in raw}
    category_map = get_mapping(raw, "category_map", path) if raw.get("category_map") is not None else {}
    bad = [k for k, v in category_map.items() if not isinstance(v, str)]
    if bad:
        raise InputError(
            path, f"'category_map' maps categories to class names; '{bad[0]}' maps to {category_map[bad[0]]!r}"
        )
    return DatasetSpec(root, layout, splits, names, {str(k): v for k, v in category_map.items()})


@dataclass
class Item:
    image: Path
    det: Path | None
    drivable: Path | None
    lane: Path | None


def list_items(spec: DatasetSpec, split: str) -> list[Item]:
    """Images of a split with whichever label files exist (a missing file = an unlabelled task)."""
    if hasattr(spec, "items"):  # a standard format: formats.FormatSpec lists its own samples
        return spec.items(split)
    sub = spec.splits.get(split, split)
    images_dir = spec.root / "images" / sub
    if not images_dir.is_dir():
        raise InputError(images_dir, f"no images folder for split '{split}'")
    if spec.layout == "bdd100k":
        folders = {
            "det": ("det_annotations", ".json"),
            "drivable": ("da_seg_annotations", ".png"),
            "lane": ("ll_seg_annotations", ".png"),
        }
    else:
        folders = {"det": ("labels", ".txt"), "drivable": ("da_seg", ".png"), "lane": ("ll_seg", ".png")}

    def find(kind: str, stem: str) -> Path | None:
        folder, suffix = folders[kind]
        for p in (spec.root / folder / sub / f"{stem}{suffix}", spec.root / folder / f"{stem}{suffix}"):
            if p.is_file():
                return p
        return None

    items = [
        Item(p, find("det", p.stem), find("drivable", p.stem), find("lane", p.stem))
        for p in sorted(images_dir.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise InputError(images_dir, "split holds no images")
    return items


def read_boxes(path: Path, spec: DatasetSpec, image_size: tuple[int, int], tolerance: float = 2.0) -> np.ndarray:
    """(n, 5) rows ``cls, x1, y1, x2, y2`` in pixels from a BDD JSON or a YOLO text file.

    Unknown categories are ignored; boxes slightly outside the image are clipped; a file that does not
    parse, or a box outside the image, raises :class:`InputError` naming the file.
    """
    h, w = image_size
    rows = []
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
            frames = data["frames"] if isinstance(data, dict) else data
            objects = frames[0].get("objects", []) if frames else []
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise InputError(path, f"label JSON does not parse as BDD ({type(e).__name__}: {e})") from None
        for obj in objects:
            box = obj.get("box2d") if isinstance(obj, dict) else None
            cid = spec.class_id(str(obj.get("category", ""))) if box else None
            if cid is None:
                continue
            try:
                rows.append([cid, float(box["x1"]), float(box["y1"]), float(box["x2"]), float(box["y2"])])
            except (KeyError, TypeError, ValueError):
                raise InputError(path, "box2d needs numeric x1, y1, x2, y2") from None
    else:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                c, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
            except ValueError:
                raise InputError(path, f"line {n}: expected 'class cx cy w h'") from None
            rows.append([int(c), (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
    boxes = np.array(rows, np.float32).reshape(-1, 5)
    if len(boxes):
        boxes[:, 1:] = check_boxes(boxes[:, 1:], (h, w), path, tolerance)
        if (boxes[:, 0] >= len(spec.names)).any() or (boxes[:, 0] < 0).any():
            raise InputError(path, f"class id outside 0..{len(spec.names) - 1}")
    return boxes


def read_mask(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """A binary mask (pixel > 0 is positive) of the image's size, as uint8 0/1."""
    m = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(path, "mask is not a readable image")
    if m.shape != tuple(image_size):
        raise InputError(path, f"mask is {m.shape[1]}x{m.shape[0]} but its image is {image_size[1]}x{image_size[0]}")
    return (m > 0).astype(np.uint8)


class DrivingDataset(Dataset):
    """Samples ``{"image": (3, H, W), "targets": {"det": (n, 5) cls cx cy w h | None, "drivable": (H, W) | None,
    "lane": (H, W) | None}, "name"}`` letterboxed to ``imgsz``. A sample whose files are bad is ``None``
    (the collate drops it and the Trainer counts it); the reason is printed once."""

    def __init__(
        self,
        spec: DatasetSpec,
        split: str,
        imgsz: tuple[int, int] = INPUT_SIZE,
        augment: bool = False,
        norm: Norm = (IMAGENET_MEAN, IMAGENET_STD),
        mosaic: float = 0.5,
        balance: bool = True,
        derive_lane_negatives: bool = True,
        seed: int = 0,
    ):
        """With ``augment`` (training): the photometric + geometric pipeline, a 2x2 mosaic with probability
        ``mosaic`` (among frames with the same labelled tasks), repeat-factor sampling of frames with rare
        classes when ``balance``, and lane negatives off the drivable area on frames without lane labels
        when ``derive_lane_negatives``. Without ``augment`` (validation) the samples are as labelled."""
        self.spec, self.split, self.imgsz, self.norm = spec, split, tuple(imgsz), norm
        self.items = list_items(spec, split)
        self.augment = build_augment() if augment else None
        self.mosaic_p = float(mosaic) if augment else 0.0
        self.derive_lane_negatives = bool(derive_lane_negatives and augment)
        self.rng = np.random.default_rng(seed)
        self.bad: dict[str, str] = {}
        self.groups: dict[tuple[bool, ...], list[int]] = {}
        for k, it in enumerate(self.items):
            self.groups.setdefault(_labelled_tasks(it), []).append(k)
        factors = repeat_factors([_box_classes(it, spec) for it in self.items]) if augment and balance else None
        self.index = (
            repeated_indices(factors, np.random.default_rng(seed))
            if factors is not None
            else np.arange(len(self.items))
        )

    def __len__(self) -> int:
        return len(self.index)

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Image and labels in original pixels (raises InputError on bad files)."""
        it = self.items[i]
        img = read_image(it.image)
        if hasattr(it, "load_labels"):  # a standard format's sample (formats.FormatItem)
            return it.load_labels(img)
        size = img.shape[:2]
        boxes = read_boxes(it.det, self.spec, size) if it.det else None
        da = read_mask(it.drivable, size) if it.drivable else None
        ll = read_mask(it.lane, size) if it.lane else None
        return img, boxes, da, ll

    def _raw_or_none(self, i: int):
        try:
            return self.load_raw(i)
        except InputError as e:
            if str(self.items[i].image) not in self.bad:
                self.bad[str(self.items[i].image)] = e.problem
                print(f"skipping sample {e}", file=sys.stderr)
            return None

    def _augmented(self, raw) -> dict:
        """One frame with its labels after the albumentations pipeline (and derived lane negatives)."""
        img, boxes, da, ll = raw
        if ll is None and da is not None and self.derive_lane_negatives:
            ll = lane_negatives(da, img)
        h, w = img.shape[:2]
        if self.augment is not None:
            zeros = np.zeros((h, w), np.uint8)
            b = boxes if boxes is not None else np.zeros((0, 5), np.float32)
            r = self.augment(
                image=img,
                masks=[da if da is not None else zeros, ll if ll is not None else zeros],
                bboxes=b[:, 1:],
                cls=b[:, 0],
            )
            img, (da2, ll2) = r["image"], r["masks"]
            da, ll = (da2 if da is not None else None), (ll2 if ll is not None else None)
            if boxes is not None:
                boxes = np.concatenate(
                    [np.array(r["cls"], np.float32).reshape(-1, 1), np.array(r["bboxes"], np.float32).reshape(-1, 4)], 1
                )
        return {"image": img, "boxes": boxes, "drivable": da, "lane": ll}

    def __getitem__(self, i: int) -> dict | None:
        k = int(self.index[i])
        raw = self._raw_or_none(k)
        if raw is None:
            return None
        frame = self._augmented(raw)
        group = self.groups[_labelled_tasks(self.items[k])]
        if self.mosaic_p and len(group) >= 4 and self.rng.random() < self.mosaic_p:
            others = [self._raw_or_none(int(j)) for j in self.rng.choice(group, 3)]
            if all(o is not None for o in others):
                frame = mosaic([frame] + [self._augmented(o) for o in others], self.imgsz, self.rng)
        return self._to_sample(frame, self.items[k].image.stem)

    def _to_sample(self, frame: dict, name: str) -> dict:
        img, boxes, da, ll = frame["image"], frame["boxes"], frame["drivable"], frame["lane"]
        h, w = img.shape[:2]
        lb = Letterbox.fit((h, w), self.imgsz)
        targets: dict = {"det": None, "drivable": None, "lane": None}
        if boxes is not None:
            xyxy = boxes[:, 1:] * lb.scale + np.array(lb.pad * 2)
            H, W = self.imgsz
            cxcywh = np.stack(
                [
                    (xyxy[:, 0] + xyxy[:, 2]) / 2 / W,
                    (xyxy[:, 1] + xyxy[:, 3]) / 2 / H,
                    (xyxy[:, 2] - xyxy[:, 0]) / W,
                    (xyxy[:, 3] - xyxy[:, 1]) / H,
                ],
                1,
            )
            targets["det"] = torch.from_numpy(np.concatenate([boxes[:, :1], cxcywh], 1).astype(np.float32))
        if da is not None:
            targets["drivable"] = torch.from_numpy(lb.apply(da, cv2.INTER_NEAREST, IGNORE)).long()
        if ll is not None:
            targets["lane"] = torch.from_numpy(lb.apply(ll, cv2.INTER_NEAREST, IGNORE)).long()
        return {
            "image": to_tensor(lb.apply(img), *self.norm),
            "targets": targets,
            "name": name,
            "inner": lb.inner,
        }


def _labelled_tasks(item) -> tuple[bool, bool, bool]:
    """Which of det / drivable / lane a sample has labels for (mosaic tiles share this)."""
    tasks = getattr(item, "tasks", None)
    if tasks is not None:
        return tuple(t in tasks for t in ("det", "drivable", "lane"))
    return tuple(getattr(item, t, None) is not None for t in ("det", "drivable", "lane"))


def _box_classes(item, spec: DatasetSpec) -> set[int]:
    """The class ids in a sample's box file, read cheaply for repeat-factor sampling (unreadable: none)."""
    classes = getattr(item, "classes", None)
    if classes is not None:
        return {int(c) for c in classes if c >= 0}
    path = getattr(item, "det", None)
    if path is None:
        return set()
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            frames = data["frames"] if isinstance(data, dict) else data
            ids = (spec.class_id(str(o.get("category", ""))) for o in (frames[0].get("objects", []) if frames else []))
            return {c for c in ids if c is not None}
        return {int(float(line.split()[0])) for line in path.read_text().splitlines() if line.strip()}
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError):
        return set()
