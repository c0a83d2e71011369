"""KITTI object ``label_2`` files: one line per object, 15 fields (+ the score for results):
``type truncated occluded alpha left top right bottom height width length x y z rotation_y [score]``;
the box's bottom centre ``x y z`` and its heading ``rotation_y`` are in the rectified camera frame
(x right, y down, z forward, metres), the 2-D box in image_2 pixels.

>>> KittiObject("Car", dimensions=(1.5, 1.6, 3.9), location=(1.0, 1.7, 10.0), rotation_y=-1.57, score=0.9).to_line()
'Car 0.00 0 -1.67 0.00 0.00 0.00 0.00 1.50 1.60 3.90 1.00 1.70 10.00 -1.57 0.9000'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from polyhead.io.writers import write_bytes

#: the object types of the KITTI benchmark
TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc", "DontCare")


@dataclass
class KittiObject:
    """One ``label_2`` line. ``alpha`` (the observation angle) is derived from the location and
    ``rotation_y`` when not given; an unknown 2-D box is ``(0, 0, 0, 0)``."""

    type: str
    truncated: float = 0.0
    occluded: int = 0
    alpha: float | None = None
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    dimensions: tuple[float, float, float] = (0.0, 0.0, 0.0)  # height, width, length (m)
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)  # bottom centre, camera frame (m)
    rotation_y: float = 0.0
    score: float | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"KITTI type must be one of {', '.join(TYPES)}, got {self.type!r}")
        if self.alpha is None:
            x, _, z = self.location
            self.alpha = wrap_angle(self.rotation_y - math.atan2(x, z))

    def to_line(self) -> str:
        nums = [*self.bbox, *self.dimensions, *self.location]
        for v in (*nums, self.alpha, self.rotation_y, self.truncated):
            if not math.isfinite(float(v)):
                raise ValueError(f"KITTI fields must be finite numbers, got {v}")
        fields = [self.type, f"{self.truncated:.2f}", str(int(self.occluded)), f"{self.alpha:.2f}"]
        fields += [f"{float(v):.2f}" for v in nums] + [f"{self.rotation_y:.2f}"]
        if self.score is not None:
            fields.append(f"{self.score:.4f}")
        return " ".join(fields)


def wrap_angle(a: float) -> float:
    """``a`` in [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def write_kitti_label(path: str | Path, objects: Iterable[KittiObject]) -> Path:
    """Write one ``label_2`` file atomically (a scan without objects gets an empty file)."""
    return write_bytes(path, "".join(f"{o.to_line()}\n" for o in objects).encode())
