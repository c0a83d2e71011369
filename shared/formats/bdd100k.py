"""Official BDD100K labels: the ``det_20`` detection JSON and the drivable / lane mask PNG folders.

Layout of the official download (``bdd100k_images_100k.zip``, ``bdd100k_det_20_labels_trainval.zip``,
``bdd100k_drivable_labels_trainval.zip``, ``bdd100k_lane_labels_trainval.zip``)::

    ROOT/images/100k/{train,val}/<name>.jpg
    ROOT/labels/det_20/det_{train,val}.json          [{"name": "<name>.jpg", "labels": [{"category": "car",
                                                      "box2d": {"x1", "y1", "x2", "y2"}, "attributes": {...}}]}]
    ROOT/labels/drivable/masks/{train,val}/<name>.png  0 direct, 1 alternative (both drivable), 2 background
    ROOT/labels/lane/masks/{train,val}/<name>.png      255 background, else category + (direction << 5)
                                                       + (style << 4); crosswalks (category 0) are not lanes

Ids follow doc.bdd100k.com ("Label Format": drivable 0 direct / 1 alternative / 2 background; lane
categories 0 crosswalk ... 7 single yellow, 8 background) and the BDD100K toolkit's mask writer
(lane masks start from 255). Labels without ``box2d`` (the 2018 file's drivable / lane polygons) are
skipped; ``attributes.crowd`` or ``attributes.ignore`` boxes become ignore regions. An image absent from
the JSON has unlabelled boxes; one without a mask PNG has that mask unlabelled.

>>> samples = read_layout("/data/bdd100k", "val")              # doctest: +SKIP
>>> samples[0].drivable.encoding, samples[0].categories[:2]    # doctest: +SKIP
('bdd_drivable', ['car', 'traffic sign'])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.formats.common import MaskFile, Sample, image_files, load_json, number

#: where each part lives under the root by default (``{split}`` is the split name)
DEFAULTS = {
    "images": "images/100k/{split}",
    "det": "labels/det_20/det_{split}.json",
    "drivable": "labels/drivable/masks/{split}",
    "lane": "labels/lane/masks/{split}",
}


def read_det_json(path: str | Path) -> dict[str, tuple[np.ndarray, list[str], np.ndarray]]:
    """``det_20`` JSON -> ``{image name: (boxes (n, 4) xyxy pixels, categories, ignore (m, 4))}``.

    >>> import json, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "d.json")
    >>> _ = open(f, "w").write(json.dumps([{"name": "a.jpg", "labels": [
    ...     {"category": "car", "box2d": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}}]}]))
    >>> boxes, cats, ignore = read_det_json(f)["a.jpg"]; boxes.tolist(), cats
    ([[1.0, 2.0, 30.0, 40.0]], ['car'])
    """
    path = Path(path)
    data = load_json(path, "BDD100K label JSON")
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list):
        raise InputError(path, "not a BDD100K detection JSON (expected a list of frames with 'name' and 'labels')")
    out = {}
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            raise InputError(path, f"frame {i} has no 'name'")
        boxes, cats, ignore = [], [], []
        for lab in fr.get("labels") or []:
            box = lab.get("box2d") if isinstance(lab, dict) else None
            if not box:
                continue
            if not isinstance(box, dict):
                raise InputError(path, f"frame {fr['name']}: box2d must be {{x1, y1, x2, y2}}")
            xyxy = [number(box.get(k), path, f"frame {fr['name']} box2d {k}") for k in ("x1", "y1", "x2", "y2")]
            attrs = lab.get("attributes") or {}
            if isinstance(attrs, dict) and (attrs.get("crowd") or attrs.get("ignore") or attrs.get("ignored")):
                ignore.append(xyxy)
                continue
            boxes.append(xyxy)
            cats.append(str(lab.get("category", "")))
        out[Path(fr["name"]).name] = (
            np.array(boxes, np.float32).reshape(-1, 4),
            cats,
            np.array(ignore, np.float32).reshape(-1, 4),
        )
    return out


def read_layout(root: str | Path, split: str, parts: dict[str, str] | None = None) -> list[Sample]:
    """Every image of ``split`` with its boxes (when the JSON lists it) and mask files (when present).

    ``parts`` overrides :data:`DEFAULTS` (paths relative to ``root``; ``{split}`` is replaced). A
    detection JSON that is named but missing is an InputError; a missing mask folder means that task is
    unlabelled for the split.
    """
    root = Path(root)
    where = {k: (root / v.format(split=split)) for k, v in {**DEFAULTS, **(parts or {})}.items()}
    if not where["images"].is_dir():
        raise InputError(where["images"], f"no BDD100K images folder for split '{split}'")
    det = read_det_json(where["det"]) if (parts and "det" in parts) or where["det"].is_file() else {}
    samples = []
    for image in image_files(where["images"]):
        s = Sample(image)
        if image.name in det:
            s.boxes, s.categories, s.ignore = det[image.name]
            s.source = where["det"]
        for kind, encoding in (("drivable", "bdd_drivable"), ("lane", "bdd_lane")):
            mask = where[kind] / f"{image.stem}.png"
            if mask.is_file():
                setattr(s, kind, MaskFile(mask, encoding))
        samples.append(s)
    if not samples:
        raise InputError(where["images"], "split holds no images")
    return samples
