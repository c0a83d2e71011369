"""COCO detection JSON: ``images``, ``annotations`` (``bbox`` as ``x y w h`` pixels, ``iscrowd``,
``keypoints``) and ``categories``.

An image listed without annotations is labelled "no objects". ``iscrowd: 1`` boxes become ignore
regions. When an annotation's category has 5 keypoints (face landmarks: eyes, nose, mouth corners),
they are returned per box, NaN where the visibility flag is 0. ``file_name`` is looked up under
``images_dir`` (or, without one, under the JSON's folder and its ``images/`` and ``../images/``).

>>> samples, cats = read_coco("annotations/instances_val.json", "images/val")   # doctest: +SKIP
>>> samples[0].boxes.shape, samples[0].categories                               # doctest: +SKIP
((2, 4), ['car', 'person'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.formats.common import Sample, load_json, number

FACE_KEYPOINTS = 5


def _list(data: dict, key: str, path: Path) -> list:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(path, f"COCO '{key}' must be a list of objects")
    return value


def read_coco(
    path: str | Path, images_dir: str | Path | Sequence[str | Path] | None = None
) -> tuple[list[Sample], dict[int, str]]:
    """Samples (one per image, in the JSON's order) and the category table ``{id: name}``.

    Every structural problem (not a COCO object, an annotation of an unknown image or category, a bbox
    that is not 4 numbers) is an InputError naming the JSON and the annotation id.
    """
    path = Path(path)
    data = load_json(path, "COCO JSON")
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError(path, "not a COCO detection JSON (needs 'images' and 'annotations')")
    cats: dict[int, str] = {}
    n_kpts: dict[int, int] = {}
    for c in _list(data, "categories", path):
        try:
            cid = int(c["id"])
        except (KeyError, TypeError, ValueError):
            raise InputError(path, f"category without an integer 'id': {c!r:.60}") from None
        cats[cid] = str(c.get("name", cid))
        n_kpts[cid] = len(c.get("keypoints") or [])
    dirs = _image_dirs(path, images_dir)
    by_id: dict[int, Sample] = {}
    raw_kpts: dict[int, list] = {}
    for im in _list(data, "images", path):
        if "id" not in im or "file_name" not in im:
            raise InputError(path, f"image entry needs 'id' and 'file_name': {im!r:.60}")
        name = Path(str(im["file_name"]))
        image = next((d / name for d in dirs if (d / name).is_file()), dirs[0] / name)
        by_id[im["id"]] = Sample(image, boxes=np.zeros((0, 4), np.float32), source=path)
        raw_kpts[im["id"]] = []
    boxes: dict[int, list] = {k: [] for k in by_id}
    ignore: dict[int, list] = {k: [] for k in by_id}
    for a in _list(data, "annotations", path):
        aid = a.get("id", "?")
        if a.get("image_id") not in by_id:
            raise InputError(path, f"annotation {aid} refers to image_id {a.get('image_id')!r}, not in 'images'")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InputError(path, f"annotation {aid}: 'bbox' must be [x, y, w, h]")
        x, y, w, h = (number(v, path, f"annotation {aid} bbox") for v in bbox)
        xyxy = [x, y, x + w, y + h]
        if a.get("iscrowd"):
            ignore[a["image_id"]].append(xyxy)
            continue
        cid = a.get("category_id")
        if cid not in cats:
            raise InputError(path, f"annotation {aid}: category_id {cid!r} is not in 'categories'")
        boxes[a["image_id"]].append(xyxy)
        by_id[a["image_id"]].categories.append(cats[cid])
        raw_kpts[a["image_id"]].append(_keypoints(a, n_kpts[cid], path))
    any_points = any(k is not None for ks in raw_kpts.values() for k in ks)
    for iid, s in by_id.items():
        s.boxes = np.array(boxes[iid], np.float32).reshape(-1, 4)
        s.ignore = np.array(ignore[iid], np.float32).reshape(-1, 4)
        if any_points:
            nan = np.full((FACE_KEYPOINTS, 2), np.nan, np.float32)
            s.keypoints = np.array([nan if k is None else k for k in raw_kpts[iid]], np.float32).reshape(
                -1, FACE_KEYPOINTS, 2
            )
    return list(by_id.values()), cats


def _keypoints(a: dict, n: int, path: Path) -> np.ndarray | None:
    """(5, 2) points of a 5-keypoint annotation (NaN where not labelled), else None."""
    kp = a.get("keypoints")
    if n != FACE_KEYPOINTS or not kp:
        return None
    if not isinstance(kp, list) or len(kp) != 3 * FACE_KEYPOINTS:
        raise InputError(path, f"annotation {a.get('id', '?')}: 'keypoints' must be 15 numbers (x, y, v) x 5")
    v = np.array([number(x, path, f"annotation {a.get('id', '?')} keypoints") for x in kp], np.float32).reshape(5, 3)
    pts = v[:, :2].copy()
    pts[v[:, 2] <= 0] = np.nan
    return pts


def _image_dirs(path: Path, images_dir: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if images_dir is None:
        return [path.parent, path.parent / "images", path.parent.parent / "images", path.parent.parent]
    dirs = [images_dir] if isinstance(images_dir, str | Path) else list(images_dir)
    return [Path(d) for d in dirs]
