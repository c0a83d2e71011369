"""YOLO txt labels (``--save-txt``): one ``cls cx cy w h [conf]`` line per box, normalised to 0..1,
the format ultralytics trains from and writes with ``save_txt``.

>>> from polyhead.io.boxes import Detections
>>> yolo_lines(Detections([[0, 0, 50, 20]], [0.9], [0], ["car"]), width=100, height=40, conf=True)
['0 0.250000 0.250000 0.500000 0.500000 0.9000']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.io.boxes import Detections
from polyhead.io.writers import write_bytes


def yolo_lines(dets: Detections, width: int, height: int, conf: bool = False) -> list[str]:
    """The label lines of ``dets`` on a ``width`` x ``height`` image; boxes are clipped to the image
    and boxes with no area left are dropped."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    b = dets.boxes_xyxy.copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    lines = []
    for k in np.flatnonzero((w > 0) & (h > 0)):
        line = f"{int(dets.classes[k])} {cx[k] / width:.6f} {cy[k] / height:.6f} {w[k] / width:.6f} {h[k] / height:.6f}"
        lines.append(f"{line} {dets.scores[k]:.4f}" if conf else line)
    return lines


def write_yolo_txt(path: str | Path, dets: Detections, width: int, height: int, conf: bool = False) -> Path:
    """Write ``path`` atomically (an image without boxes gets an empty file: "nothing found")."""
    lines = yolo_lines(dets, width, height, conf)
    return write_bytes(path, "".join(f"{line}\n" for line in lines).encode())
