"""CULane: list files (``list/train_gt.txt``, ``list/val.txt``, ...) and one ``.lines.txt`` per image.

A list line starts with the image path relative to the dataset root (``/driver_23_30frame/.../00000.jpg``,
a leading ``/`` included); anything after it (segmentation label path, lane-exists flags) is ignored.
The lanes of ``.../00000.jpg`` are in ``.../00000.lines.txt``: one lane a line, ``x1 y1 x2 y2 ...`` in
pixels. An image without a ``.lines.txt`` has unlabelled lanes; an empty one has no lanes.

>>> samples = read_list("/data/culane", "list/val.txt")    # doctest: +SKIP
>>> len(samples[0].lanes)                                 # doctest: +SKIP
4
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.formats.common import Sample, read_text_lines


def lines_path(image: Path) -> Path:
    """``a/00000.jpg`` -> ``a/00000.lines.txt``.

    >>> lines_path(Path("d/00000.jpg")).name
    '00000.lines.txt'
    """
    return image.with_suffix(".lines.txt")


def read_lines(path: str | Path) -> list[np.ndarray]:
    """A ``.lines.txt`` file -> lane polylines (k, 2); odd counts or non-numbers are an InputError."""
    path = Path(path)
    lanes = []
    for n, line in enumerate(read_text_lines(path, "CULane lines file"), 1):
        try:
            v = np.array([float(x) for x in line.split()], np.float32)
        except ValueError:
            raise InputError(path, f"line {n}: expected numbers 'x1 y1 x2 y2 ...'") from None
        if v.size % 2 or not np.isfinite(v).all():
            raise InputError(path, f"line {n}: expected x y pairs, got {v.size} numbers")
        if v.size >= 4:
            lanes.append(v.reshape(-1, 2))
    return lanes


def read_list(root: str | Path, list_file: str | Path) -> list[Sample]:
    """Samples of one CULane list file (relative to ``root`` unless absolute), with their lanes; a bad
    ``.lines.txt`` becomes that sample's ``problem``."""
    root = Path(root)
    lst = Path(list_file) if Path(list_file).is_absolute() else root / list_file
    samples = []
    for line in read_text_lines(lst, "CULane list file"):
        image = root / line.split()[0].lstrip("/")
        lp = lines_path(image)
        s = Sample(image, source=lp)
        if lp.is_file():
            try:
                s.lanes = read_lines(lp)
            except InputError as e:
                s.problem = e
        samples.append(s)
    if not samples:
        raise InputError(lst, "list file names no images")
    return samples
