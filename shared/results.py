"""What every app's per-frame result can do, and the one JSON envelope every written result shares.

Every JSON polyhead writes for an image, a video frame, a volume or a scan starts with the same
fields (documented in ``docs/json.md``, checked against :data:`RESULT_SCHEMA` in the tests):
``source`` (first, so a run can tell its own files), ``schema_version``, ``image_size`` as
``{"width", "height"}`` in original pixels and, for video frames, ``frame``. Boxes anywhere inside are
``box_xyxy`` in original pixels.

>>> doc = envelope({"objects": []}, "a.jpg", (480, 640))
>>> list(doc)[:3], doc["image_size"]
(['source', 'schema_version', 'image_size'], {'width': 640, 'height': 480})
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

SCHEMA_VERSION = 1


class Result(Protocol):
    """A per-frame result: plain data that serialises and draws itself."""

    def to_json(self) -> dict: ...

    def plot(self, image: np.ndarray) -> np.ndarray: ...

    # optional: ``artifacts() -> dict[str, np.ndarray | bytes]`` extra files per image, keyed by name suffix


def envelope(doc: dict, source, size: tuple[int, int] | None = None, frame: int | None = None) -> dict:
    """``doc`` (a result's ``to_json()``) inside the common envelope; ``size`` is the input's ``(h, w)``."""
    out: dict = {"source": str(source), "schema_version": SCHEMA_VERSION}
    if size is not None:
        out["image_size"] = {"width": int(size[1]), "height": int(size[0])}
    if frame is not None:
        out["frame"] = int(frame)
    for key, value in doc.items():
        if key not in out:
            out[key] = value
    return out


_BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}

#: JSON Schema (draft 2020-12) of the envelope; the app-specific fields beside it are free-form, but a
#: box is always ``box_xyxy`` and never ``box``
RESULT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "polyhead result",
    "type": "object",
    "required": ["source", "schema_version"],
    "properties": {
        "source": {"type": "string"},
        "schema_version": {"const": SCHEMA_VERSION},
        "image_size": {
            "type": "object",
            "required": ["width", "height"],
            "properties": {"width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}},
            "additionalProperties": False,
        },
        "frame": {"type": "integer", "minimum": 0},
        "box_xyxy": _BOX,
    },
    "$defs": {"box": _BOX},
}


def check_boxes(doc) -> list[str]:
    """Paths inside ``doc`` that hold a ``box`` key or a malformed ``box_xyxy`` (for the contract test)."""
    bad: list[str] = []

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "box" or (k == "box_xyxy" and not (isinstance(v, list) and len(v) == 4)):
                    bad.append(f"{path}/{k}")
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(doc, "")
    return bad
