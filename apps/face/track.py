"""Face tracking on video: IoU association (Hungarian) between frames, stable ids, smoothed attributes.

>>> tr = Tracker()
>>> [tr.update([np.array([0, 0, 10, 10.])])[0] for _ in range(3)]
[1, 1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from polyhead.apps.face.samples import iou_matrix


@dataclass
class Track:
    id: int
    box: np.ndarray
    missed: int = 0
    hits: int = 1
    age: float | None = None
    p_female: float | None = None


class Tracker:
    """Greedy-optimal IoU matching of each frame's boxes to live tracks; a track survives ``max_missed``
    frames without a match. Age and gender probability are smoothed per track (exponential, ``alpha``)."""

    def __init__(self, iou: float = 0.3, max_missed: int = 10, alpha: float = 0.3):
        self.iou, self.max_missed, self.alpha = iou, max_missed, alpha
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(self, boxes: list[np.ndarray] | np.ndarray) -> list[int]:
        """Assign ids to this frame's boxes (in order); unmatched boxes start new tracks."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids = [0] * len(boxes)
        matched_t, matched_b = set(), set()
        if self.tracks and len(boxes):
            iou = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.iou:
                    t = self.tracks[c]
                    t.box, t.missed, t.hits = boxes[r], 0, t.hits + 1
                    ids[r] = t.id
                    matched_t.add(c)
                    matched_b.add(r)
        for c, t in enumerate(self.tracks):
            if c not in matched_t:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for r in range(len(boxes)):
            if r not in matched_b:
                self.tracks.append(Track(self.next_id, boxes[r]))
                ids[r] = self.next_id
                self.next_id += 1
        return ids

    def smooth(self, track_id: int, age: float | None, p_female: float | None) -> tuple[float | None, float | None]:
        """Fold this frame's attributes into the track's running estimate and return the estimate."""
        t = next((t for t in self.tracks if t.id == track_id), None)
        if t is None:
            return age, p_female
        a = self.alpha
        if age is not None:
            t.age = age if t.age is None else (1 - a) * t.age + a * age
        if p_female is not None:
            t.p_female = p_female if t.p_female is None else (1 - a) * t.p_female + a * p_female
        return t.age, t.p_female
