"""The DeepFloorplan paper's metrics: overall pixel accuracy, per-class accuracy and class-average IoU,
for the boundary classes and the room-type classes, accumulated over a whole set then aggregated; and the
paper's headline figures on one 9-class map (boundary classes painted over the room types, see
:func:`nine_class_map`): ``paper_overall_acc`` and ``paper_mean_class_acc`` over the 8 non-background
classes.

>>> m = SegMetrics(["bg", "wall"])
>>> m.update(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
>>> r = m.aggregate(); r["overall_acc"], r["class_acc"]["wall"], r["miou"]
(0.75, 1.0, 0.5833)
"""

from __future__ import annotations

import numpy as np

from polyhead.apps.floorplan.model import BOUNDARY_CLASSES, ROOM_CLASSES
from polyhead.metrics import ConfusionMatrix, Metric

IGNORE = 255
#: the paper's 9 classes: the room types, then wall and door/window painted over them
NINE_CLASSES = [*ROOM_CLASSES, "wall", "door_window"]


def nine_class_map(boundary: np.ndarray, room: np.ndarray) -> np.ndarray:
    """One map of :data:`NINE_CLASSES`: the room type, with walls and doors/windows painted over it;
    an unlabelled (255) boundary pixel stays unlabelled.

    >>> nine_class_map(np.array([[0, 1, 2, 255]]), np.array([[3, 3, 0, 4]])).tolist()
    [[3, 7, 8, 255]]
    """
    out = np.asarray(room).astype(np.uint8, copy=True)
    b = np.asarray(boundary)
    out[b == 1] = NINE_CLASSES.index("wall")
    out[b == 2] = NINE_CLASSES.index("door_window")
    out[b == IGNORE] = IGNORE
    return out


class SegMetrics(ConfusionMatrix):
    """A confusion matrix summed over every pixel of every image (not an average of per-image scores)."""

    def __init__(self, names: list[str]):
        super().__init__(len(names), IGNORE)
        self.names = list(names)

    @property
    def cm(self) -> np.ndarray:
        return self.matrix

    def aggregate(self, skip_background: bool = False) -> dict:
        """``overall_acc``, ``class_acc`` (recall per class), ``mean_class_acc``, ``iou`` per class, ``miou``.

        Classes without any ground-truth pixel are left out of the means (and reported as ``None``).
        ``skip_background`` leaves class 0 out of the means (the paper's room metrics are over room classes).
        """
        cm = self.cm.astype(np.float64)
        tp = np.diag(cm)
        gt, pr = cm.sum(1), cm.sum(0)
        acc = np.where(gt > 0, tp / np.maximum(gt, 1), np.nan)
        iou = np.where(gt > 0, tp / np.maximum(gt + pr - tp, 1), np.nan)
        first = 1 if skip_background else 0

        def mean(v: np.ndarray) -> float:
            v = v[first:]
            v = v[~np.isnan(v)]
            return round(float(v.mean()), 4) if len(v) else 0.0

        def per(v: np.ndarray) -> dict:
            return {n: (None if np.isnan(x) else round(float(x), 4)) for n, x in zip(self.names, v, strict=True)}

        return {
            "overall_acc": round(float(tp.sum() / max(cm.sum(), 1)), 4),
            "class_acc": per(acc),
            "mean_class_acc": mean(acc),
            "iou": per(iou),
            "miou": mean(iou),
            "pixels": int(cm.sum()),
        }


class FloorplanMetrics(Metric):
    """Boundary (3 classes) and room-type (7 classes) metrics side by side, and the paper's 9-class map."""

    def __init__(self):
        self.boundary = SegMetrics(BOUNDARY_CLASSES)
        self.room = SegMetrics(ROOM_CLASSES)
        self.nine = SegMetrics(NINE_CLASSES)

    def update(self, boundary_pred, room_pred, boundary_gt, room_gt) -> None:
        self.boundary.update(boundary_pred, boundary_gt)
        self.room.update(room_pred, room_gt)
        self.nine.update(nine_class_map(boundary_pred, room_pred), nine_class_map(boundary_gt, room_gt))

    def aggregate(self) -> dict:
        """Flat numbers for the trainer (``score`` = mean of the two class-average IoUs) plus the details."""
        b, r = self.boundary.aggregate(), self.room.aggregate()
        out = {
            "boundary_acc": b["overall_acc"],
            "boundary_class_acc": b["mean_class_acc"],
            "boundary_miou": b["miou"],
            "room_acc": r["overall_acc"],
            "room_class_acc": r["mean_class_acc"],
            "room_miou": r["miou"],
        }
        out["score"] = round((b["miou"] + r["miou"]) / 2, 4)
        nine = self.nine.aggregate(skip_background=True)
        out["paper_overall_acc"] = nine["overall_acc"]
        out["paper_mean_class_acc"] = nine["mean_class_acc"]  # over the 8 non-background classes
        for name, v in nine["class_acc"].items():
            if v is not None and name != "background":
                out[f"paper_acc/{name}"] = v
        for name, v in b["class_acc"].items():
            if v is not None and name != "background":
                out[f"acc/{name}"] = v
        for name, v in r["class_acc"].items():
            if v is not None and name != "background":
                out[f"acc/{name}"] = v
        for name, v in r["iou"].items():
            if v is not None and name != "background":
                out[f"iou/{name}"] = v
        for name, v in b["iou"].items():
            if v is not None and name != "background":
                out[f"iou/{name}"] = v
        return out
