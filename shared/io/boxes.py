"""Detections: the 2-D boxes of one image in a form every box writer takes (YOLO txt, COCO results).

>>> d = Detections.from_json([{"class_id": 1, "score": 0.9, "box_xyxy": [10, 20, 30, 60]}], ["car", "person"])
>>> d.counts(), d.boxes_xyxy.tolist()
({'car': 0, 'person': 1}, [[10.0, 20.0, 30.0, 60.0]])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """``boxes_xyxy`` (N, 4) in original pixels, ``scores`` (N,), ``classes`` (N,) indices into ``names``."""

    boxes_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes_xyxy = np.asarray(self.boxes_xyxy, np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        self.classes = np.asarray(self.classes, np.int64).reshape(-1)
        if not len(self.boxes_xyxy) == len(self.scores) == len(self.classes):
            raise ValueError("boxes, scores and classes must have one entry per detection")
        if len(self.classes) and (self.classes.min() < 0 or self.classes.max() >= len(self.names)):
            raise ValueError(f"class ids must lie in 0..{len(self.names) - 1}")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_json(
        cls,
        entries: Iterable[Mapping],
        names: Sequence[str],
        box_key: str = "box_xyxy",
        default_class: int = 0,
    ) -> Detections:
        """From a result JSON's list of objects (``box_xyxy``, ``score``, optional ``class_id``)."""
        rows = list(entries)
        return cls(
            np.array([r[box_key] for r in rows], np.float64).reshape(-1, 4),
            np.array([r.get("score", 1.0) for r in rows], np.float64),
            np.array([r.get("class_id", default_class) for r in rows], np.int64),
            list(names),
        )

    def counts(self) -> dict[str, int]:
        """Detections per class name, every class listed (so a summary has the same columns on each row)."""
        return {name: int((self.classes == i).sum()) for i, name in enumerate(self.names)}
