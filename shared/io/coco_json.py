"""COCO detection results: ``results.json`` is the list ``[{image_id, category_id, bbox, score}]``
(``bbox`` = x, y, width, height in original pixels) that ``pycocotools.COCO.loadRes`` and
``COCOeval`` take; ``images.json`` holds the image and category tables it refers to, so
``COCO("images.json").loadRes("results.json")`` works on its own. Category ids are the class index + 1.

>>> from polyhead.io.boxes import Detections
>>> c = CocoResults(["car"]); c.add(7, "a.jpg", 640, 480, Detections([[10, 20, 30, 60]], [0.5], [0], ["car"]))
>>> c.results[0]["bbox"], c.results[0]["category_id"]
([10.0, 20.0, 20.0, 40.0], 1)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from polyhead.io.boxes import Detections
from polyhead.io.writers import write_json

#: ``info.description`` of every ``images.json`` polyhead writes (how a run tells its own file)
DESCRIPTION = "polyhead predictions"


class CocoResults:
    """Collects images and their detections; :meth:`write` writes both files atomically."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.images: list[dict] = []
        self.results: list[dict] = []

    def add(self, image_id: int, file_name: str, width: int, height: int, dets: Detections | None) -> None:
        """One image (listed even without detections, so COCOeval counts its misses)."""
        self.images.append({"id": int(image_id), "file_name": file_name, "width": int(width), "height": int(height)})
        if dets is None:
            return
        if dets.names and dets.names != self.names:
            raise ValueError(f"detections name classes {dets.names}, this run has {self.names}")
        for box, score, cls in zip(dets.boxes_xyxy, dets.scores, dets.classes, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            self.results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(cls) + 1,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(score), 5),
                }
            )

    def tables(self) -> dict:
        return {
            "info": {"description": DESCRIPTION},
            "images": sorted(self.images, key=lambda im: im["id"]),
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(self.names)],
            "annotations": [],
        }

    def write(self, results_path: str | Path, images_path: str | Path) -> list[Path]:
        """``images.json`` first, then ``results.json``."""
        results = sorted(self.results, key=lambda r: (r["image_id"], -r["score"]))
        return [write_json(images_path, self.tables()), write_json(results_path, results)]


def is_own_tables(path: str | Path) -> bool:
    """True when ``path`` is an ``images.json`` that polyhead wrote (so a new run may replace it)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("info"), dict) and doc["info"].get("description") == DESCRIPTION
