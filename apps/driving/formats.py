"""Standard dataset formats as driving datasets: ultralytics, COCO, official BDD100K, TuSimple, CULane, KITTI.

A dataset YAML with ``format: ultralytics | coco | bdd100k | tusimple | culane | kitti`` (or an
ultralytics ``data.yaml`` as it is) becomes a :class:`FormatSpec`; :class:`~polyhead.apps.driving.data.
DrivingDataset` reads its samples through :meth:`FormatSpec.items` and :meth:`FormatItem.load_labels`.
``format: bdd100k`` keeps meaning the YOLOP layout when the root holds ``det_annotations/`` (or
``da_seg_annotations/``, ``ll_seg_annotations/``); otherwise it is the official BDD100K download.

Source categories reach the classes ``names`` (default ``car, pedestrian, cyclist``) through the YAML's
``category_map`` first, then :data:`ALIASES`; the rest are dropped and counted (one line per split).
Formats and keys: ``docs/formats.md``.

>>> spec = load_format_spec("coco8/data.yaml")              # doctest: +SKIP
>>> items = spec.items("train"); items[0].image.name        # doctest: +SKIP
'000000000009.jpg'
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from polyhead.apps.driving.data import DatasetSpec
from polyhead.apps.driving.lane_labels import LINE_WIDTH_AT_1280
from polyhead.apps.driving.model import CLASSES
from polyhead.dataset_yaml import check_keys, get_mapping, get_names, get_number, read_dataset_yaml
from polyhead.errors import InputError
from polyhead.formats import bdd100k, coco, culane, kitti, tusimple, ultralytics_yaml
from polyhead.formats.common import (
    ClassMap,
    Sample,
    as_list,
    check_boxes,
    draw_lanes,
    read_mask_file,
    read_text_lines,
)

FORMATS = ("ultralytics", "coco", "bdd100k", "tusimple", "culane", "kitti")
#: folders of polyhead's own BDD100K/YOLOP layout; a ``format: bdd100k`` root with one of them is that layout
YOLOP_FOLDERS = ("det_annotations", "da_seg_annotations", "ll_seg_annotations")

#: source category (compared lower case, ``_``/``-`` as spaces) -> driving class; documented in docs/formats.md
ALIASES: dict[str, str] = {
    **{k: "car" for k in ("car", "cars", "van", "truck", "bus", "vehicle", "suv", "pickup", "caravan", "trailer")},
    **{k: "pedestrian" for k in ("pedestrian", "person", "people", "person sitting", "other person", "walker")},
    **{k: "cyclist" for k in ("cyclist", "rider", "bicyclist", "bicycle", "bike", "motorcycle", "motor")},
    **{k: "cyclist" for k in ("motorbike", "motorcyclist", "biker")},
}

COMMON_KEYS = ("format", "path", "train", "val", "test", "names", "category_map", "lane_width")
KEYS = {
    "ultralytics": (*ultralytics_yaml.KEYS, "format", "category_map", "lane_width"),
    "coco": (*COMMON_KEYS, "images"),
    "bdd100k": (*COMMON_KEYS, *bdd100k.DEFAULTS),
    "tusimple": (*COMMON_KEYS, "images"),
    "culane": COMMON_KEYS,
    "kitti": (*COMMON_KEYS, "images", "labels"),
}
Array = np.ndarray
GREY = 114  # ignore regions are painted this grey: no object, no background to learn there


def detect_format(path: str | Path) -> str | None:
    """The standard format a dataset YAML selects, or None for polyhead's own layouts (YOLOP ``bdd100k``,
    ``yolo``). Without a ``format`` key, a file that looks like an ultralytics data.yaml (``names`` as a
    mapping, ``nc``, no ``path``, or ``train``/``val`` as lists, ``.txt`` lists or ``images/...``) is one."""
    try:
        raw = ultralytics_yaml.read_yaml(path)
    except InputError:
        return None  # the usual reader reports it
    fmt = raw.get("format")
    if fmt == "bdd100k":
        return "bdd100k" if _official_bdd(Path(path), raw) else None
    if fmt in FORMATS:
        return str(fmt)
    if fmt is None and _looks_like_ultralytics(raw):
        return "ultralytics"
    return None


def _official_bdd(path: Path, raw: dict) -> bool:
    if any(k in raw for k in bdd100k.DEFAULTS):
        return True
    root = Path(str(raw.get("path", ".")))
    root = root if root.is_absolute() else path.parent / root
    if any((root / f).is_dir() for f in YOLOP_FOLDERS):
        return False
    return (root / "labels").is_dir() or (root / "images" / "100k").is_dir()


def _looks_like_ultralytics(raw: dict) -> bool:
    if isinstance(raw.get("names"), dict) or "nc" in raw or "download" in raw or "path" not in raw:
        return True
    for k in ("train", "val", "test"):
        v = raw.get(k)
        if isinstance(v, list) or (isinstance(v, str) and (v.endswith(".txt") or "images" in Path(v).parts)):
            return True
    return False


@dataclass
class FormatItem:
    """One image of a standard format: the reader's :class:`~polyhead.formats.Sample` plus the target
    class id of each box (-1 = dropped)."""

    image: Path
    sample: Sample
    classes: np.ndarray
    lane_width: float = float(LINE_WIDTH_AT_1280)

    @property
    def tasks(self) -> frozenset[str]:
        """The tasks this image has labels for (``det``, ``drivable``, ``lane``), e.g. to group mosaic tiles."""
        s = self.sample
        labelled = {"det": s.boxes is not None, "drivable": s.drivable is not None}
        labelled["lane"] = s.lane is not None or s.lanes is not None
        return frozenset(t for t, on in labelled.items() if on)

    def load_labels(self, img: np.ndarray) -> tuple[np.ndarray, Array | None, Array | None, Array | None]:
        """``(image, boxes (n, 5) cls x1 y1 x2 y2 | None, drivable | None, lane | None)`` for the loaded
        image; ignore regions are painted grey. Raises the sample's InputError when its labels are bad."""
        s = self.sample
        if s.problem is not None:
            raise s.problem
        size = img.shape[:2]
        boxes, ignore = s.pixel_boxes(size)
        det = None
        if boxes is not None:
            keep = self.classes >= 0
            b = check_boxes(boxes[keep], size, s.source or s.image)
            det = np.concatenate([self.classes[keep, None].astype(np.float32), b], 1).reshape(-1, 5)
        if len(ignore):
            img = img.copy()
            for x1, y1, x2, y2 in np.round(ignore).astype(int):
                img[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = GREY
        da = read_mask_file(s.drivable, size) if s.drivable else None
        if s.lane is not None:
            ll = read_mask_file(s.lane, size)
        elif s.lanes is not None:
            ll = draw_lanes(s.lanes, size, self.lane_width * size[1] / 1280)
        else:
            ll = None
        return img, det, da, ll


@dataclass
class FormatSpec(DatasetSpec):
    """A dataset YAML of a standard format (the YAML's ``path`` is ``root``)."""

    yaml: Path = field(default_factory=Path)
    raw: dict = field(default_factory=dict)
    lane_width: float = float(LINE_WIDTH_AT_1280)
    ultralytics: ultralytics_yaml.UltralyticsData | None = None

    def items(self, split: str) -> list[FormatItem]:
        """The split's images with their labels; prints one line on the boxes of unmapped classes."""
        samples = self._samples(split)
        cmap = ClassMap(self.names, ALIASES, self.category_map, self.yaml)
        items = [FormatItem(s.image, s, cmap.ids(s.categories), self.lane_width) for s in samples]
        if cmap.report():
            print(f"{self.yaml.name} [{split}]: {cmap.report()}", file=sys.stderr)
        return items

    def _value(self, split: str) -> list[str]:
        if split not in self.raw:
            raise InputError(self.yaml, f"no '{split}' in the dataset YAML (format: {self.layout})")
        return as_list(self.raw[split], split, self.yaml)

    def _samples(self, split: str) -> list[Sample]:
        fmt, root, raw = self.layout, self.root, self.raw
        if fmt == "ultralytics":
            assert self.ultralytics is not None
            return ultralytics_yaml.split_samples(self.ultralytics, split)
        if fmt == "bdd100k":
            parts = {k: str(raw[k]) for k in bdd100k.DEFAULTS if k in raw}
            return bdd100k.read_layout(root, str(raw.get(split, split)), parts)
        values = self._value(split)
        if fmt == "coco":
            images = raw.get("images")
            dirs = [root / str(images).format(split=split)] if images else [root / "images" / split, root / split]
            out: list[Sample] = []
            for v in values:
                json_path = root / v
                out += coco.read_coco(json_path, [*dirs, root / "images", json_path.parent, root])[0]
            return out
        if fmt == "tusimple":
            return tusimple.read_label_data([root / v for v in values], root / str(raw.get("images", "")))
        if fmt == "culane":
            return [s for v in values for s in culane.read_list(root, v)]
        if fmt == "kitti":
            images, labels = str(raw.get("images", "image_2")), str(raw.get("labels", "label_2"))
            out = []
            for v in values:
                if v.endswith(".txt"):
                    folder = root / "training" if (root / "training").is_dir() else root
                    out += kitti.read_folder(folder, read_text_lines(root / v, "KITTI id list"), images, labels)
                else:
                    out += kitti.read_folder(root / v, None, images, labels)
            return out
        raise AssertionError(fmt)


def load_format_spec(path: str | Path, fmt: str | None = None) -> FormatSpec:
    """A :class:`FormatSpec` from a dataset YAML of a standard format (see :func:`detect_format`).

    Unknown keys are warnings naming the nearest known key; wrong values are InputErrors naming the file.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(path, f"not a standard dataset format; expected format: one of {', '.join(FORMATS)}")
    if fmt == "ultralytics":
        data = ultralytics_yaml.read_data_yaml(path)
        raw, root, names = data.raw, data.root, list(CLASSES)
        check_keys(raw, KEYS[fmt], path)
    else:
        data = None
        raw, root, _ = read_dataset_yaml(path, FORMATS, fmt, keys=KEYS[fmt])
        names = get_names(raw, "names", path, list(CLASSES))
    user = get_mapping(raw, "category_map", path)
    if data is not None:  # ultralytics class ids may be used as keys
        user = {data.names[k] if isinstance(k, int) and 0 <= k < len(data.names) else k: v for k, v in user.items()}
    bad = [k for k, v in user.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise InputError(path, f"'category_map' maps categories to class names; '{bad[0]}' maps to {user[bad[0]]!r}")
    ClassMap(names, ALIASES, user, path)  # a mapping onto an unknown class fails here, before any reading
    return FormatSpec(
        root=root,
        layout=fmt,
        splits={k: str(raw[k]) for k in ("train", "val", "test") if isinstance(raw.get(k), str)},
        names=names,
        category_map={str(k): v for k, v in user.items()},
        yaml=path,
        raw=raw,
        lane_width=get_number(raw, "lane_width", path, float(LINE_WIDTH_AT_1280), float, lo=1.0, hi=200.0),
        ultralytics=data,
    )
