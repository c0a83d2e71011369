"""ultralytics ``data.yaml`` (detection) and its YOLO ``labels/*.txt`` files.

Resolution follows ultralytics: the root is ``path`` (relative to the YAML's folder, else to the working
directory), or the YAML's folder when ``path`` is absent; ``train`` / ``val`` / ``test`` are each a
folder of images (searched recursively), a ``.txt`` list of image paths (relative lines are relative to
the list's folder, then to the root) or a list of those, relative to the root. The label of
``.../images/.../a.jpg`` is ``.../labels/.../a.txt`` (the last ``images`` folder becomes ``labels``).
``names`` is a list or an ``{id: name}`` mapping. As in ultralytics, an image without a label file is a
background image (no objects).

>>> data = read_data_yaml("coco8.yaml")                       # doctest: +SKIP
>>> samples = split_samples(data, "train"); samples[0].categories   # doctest: +SKIP
['person', 'dog']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from polyhead.errors import InputError
from polyhead.formats.common import IMAGE_SUFFIXES, Sample, as_list, image_files, read_text_lines

#: the keys an ultralytics detection data.yaml may hold
KEYS = ("path", "train", "val", "test", "minival", "names", "nc", "download", "kpt_shape", "flip_idx", "channels")


@dataclass
class UltralyticsData:
    """A parsed data.yaml: ``root``, ``splits`` (split -> sources as written), ``names`` (class id -> name)."""

    yaml: Path
    root: Path
    splits: dict[str, list[str]]
    names: list[str]
    raw: dict = field(default_factory=dict)
    kpt_values: int = 0  # numbers per label line after the box (pose files): kpt_shape[0] * kpt_shape[1]


def read_yaml(path: str | Path) -> dict:
    """A YAML file as a mapping; missing, unparsable or non-mapping files are an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "dataset YAML not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise InputError(path, "dataset YAML must be a mapping of keys")
    return raw


def resolve_root(path: Path, raw: dict) -> Path:
    """The dataset root of a data.yaml (see the module docstring)."""
    value = raw.get("path")
    if value is None or value == "":
        return path.parent.resolve()
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InputError(path, f"'path' must be a folder name, got {value!r:.60}")
    root = Path(str(value)).expanduser()
    if root.is_absolute():
        return root
    beside = (path.parent / root).resolve()
    return beside if beside.exists() or not root.resolve().exists() else root.resolve()


def parse_names(raw: dict, path: Path) -> list[str]:
    """``names`` as a list indexed by class id; a dict must have the ids 0..n-1; ``nc`` must agree."""
    names = raw.get("names")
    nc = raw.get("nc")
    if names is None:
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
            return [f"class{i}" for i in range(nc)]
        raise InputError(path, "data.yaml needs 'names' (a list, or a mapping {0: name, ...})")
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise InputError(path, f"'names' keys must be class ids 0, 1, ..., got {list(names)[:5]}") from None
        if ids != list(range(len(ids))):
            raise InputError(path, f"'names' ids must be 0..{len(ids) - 1} without gaps, got {ids[:10]}")
        by_id = {int(k): v for k, v in names.items()}
        names = [by_id[i] for i in ids]
    if not isinstance(names, list) or not all(isinstance(n, str | int) and not isinstance(n, bool) for n in names):
        raise InputError(path, f"'names' must be a list or a mapping of class names, got {names!r:.60}")
    if isinstance(nc, int) and not isinstance(nc, bool) and nc != len(names):
        raise InputError(path, f"'nc' is {nc} but 'names' has {len(names)} classes")
    return [str(n) for n in names]


def read_data_yaml(path: str | Path) -> UltralyticsData:
    """Parse an ultralytics detection data.yaml (nothing is downloaded: ``download`` is ignored).

    >>> data = read_data_yaml("datasets/coco8.yaml")   # doctest: +SKIP
    >>> data.names[:2], sorted(data.splits)            # doctest: +SKIP
    (['person', 'bicycle'], ['train', 'val'])
    """
    path = Path(path)
    raw = read_yaml(path)
    root = resolve_root(path, raw)
    splits = {k: as_list(raw[k], k, path) for k in ("train", "val", "test", "minival") if raw.get(k) is not None}
    if not splits:
        raise InputError(path, "data.yaml names no 'train' or 'val' images")
    kpt = raw.get("kpt_shape")
    kpt_values = int(np.prod(kpt)) if isinstance(kpt, list) and all(isinstance(v, int) for v in kpt) else 0
    return UltralyticsData(path, root, splits, parse_names(raw, path), raw, kpt_values)


def label_path(image: Path) -> Path:
    """``.../images/x/a.jpg`` -> ``.../labels/x/a.txt`` (the last ``images`` folder; else beside the image).

    >>> label_path(Path("/d/images/train/a.b.jpg")).as_posix()
    '/d/labels/train/a.b.txt'
    """
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _resolve(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    q = (root / p).resolve()
    if not q.exists() and value.startswith("../"):  # as ultralytics: '../x' written for a root one level up
        q = (root / value[3:]).resolve()
    return q


def split_images(data: UltralyticsData, split: str) -> list[Path]:
    """Image files of a split, in order, without duplicates."""
    if split not in data.splits:
        raise InputError(data.yaml, f"no '{split}' in data.yaml (it has {', '.join(data.splits)})")
    if not data.root.is_dir():
        raise InputError(data.root, f"dataset root of {data.yaml.name} does not exist (nothing is downloaded)")
    out: list[Path] = []
    for value in data.splits[split]:
        src = _resolve(data.root, value)
        if src.is_dir():
            out += image_files(src, recursive=True)
        elif src.suffix.lower() == ".txt" and src.is_file():
            for line in read_text_lines(src, "image list"):
                p = Path(line)
                if not p.is_absolute():
                    p = next((c for c in (src.parent / p, data.root / p) if c.exists()), (src.parent / p))
                out.append(p.resolve())
        elif src.suffix.lower() in IMAGE_SUFFIXES and src.is_file():
            out.append(src)
        else:
            raise InputError(src, f"'{split}' of {data.yaml.name} is not a folder, image list or image")
    seen: set[Path] = set()
    out = [p for p in out if not (p in seen or seen.add(p))]
    if not out:
        raise InputError(data.yaml, f"'{split}' holds no images")
    return out


def read_labels(path: Path, names: list[str], kpt_values: int = 0) -> tuple[np.ndarray, list[str]]:
    """A YOLO label file -> (boxes (n, 4) normalised ``x1 y1 x2 y2``, category names).

    Lines are ``cls cx cy w h`` (normalised), polygons ``cls x1 y1 x2 y2 ...`` (their bounding box) or
    pose rows (``cls cx cy w h`` + keypoints, when ``kpt_values`` > 0). Bad lines are an InputError.
    """
    rows, cats = [], []
    for n, line in enumerate(read_text_lines(path, "label file"), 1):
        parts = line.split()
        try:
            v = [float(x) for x in parts]
        except ValueError:
            raise InputError(path, f"line {n}: expected numbers 'class cx cy w h'") from None
        if len(v) < 5 or not np.isfinite(v).all() or not float(v[0]).is_integer():
            raise InputError(path, f"line {n}: expected 'class cx cy w h' (integer class, 4 numbers)")
        c = int(v[0])
        if not 0 <= c < len(names):
            raise InputError(path, f"line {n}: class {c} outside 0..{len(names) - 1} (names has {len(names)})")
        if len(v) == 5 or kpt_values:
            cx, cy, w, h = v[1:5]
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        elif len(v) % 2 == 1 and len(v) >= 7:  # a polygon: its bounding box, as ultralytics does
            xy = np.array(v[1:], np.float64).reshape(-1, 2)
            box = [*xy.min(0), *xy.max(0)]
        else:
            raise InputError(path, f"line {n}: {len(v)} numbers is neither a box (5) nor a polygon (odd, >= 7)")
        rows.append(box)
        cats.append(names[c])
    return np.array(rows, np.float32).reshape(-1, 4), cats


def split_samples(data: UltralyticsData, split: str) -> list[Sample]:
    """The samples of a split: normalised boxes and category names; a bad label file becomes the
    sample's ``problem`` (the sample is skipped when loaded, the rest train)."""
    samples = []
    for image in split_images(data, split):
        lp = label_path(image)
        s = Sample(image, boxes=np.zeros((0, 4), np.float32), normalised=True, source=lp)
        if lp.is_file():
            try:
                s.boxes, s.categories = read_labels(lp, data.names, data.kpt_values)
            except InputError as e:
                s.problem = e
        samples.append(s)
    return samples
