"""TuSimple lane labels: ``label_data_*.json`` files of one JSON object a line,
``{"lanes": [[x, ...], ...], "h_samples": [y, ...], "raw_file": "clips/.../20.jpg"}``.

Each lane gives an x for every row of ``h_samples``; ``-2`` (any negative x) means "no point on this
row". A lane becomes one polyline per run of consecutive points. ``raw_file`` is relative to the folder
that holds the ``clips/`` folder (``images_root``, by default the JSON's folder).

>>> samples = read_label_data(["train_set/label_data_0313.json"])   # doctest: +SKIP
>>> samples[0].lanes[0][:2]                                       # doctest: +SKIP
array([[632., 280.], [625., 290.]], dtype=float32)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.formats.common import Sample, read_text_lines


def lane_polylines(lanes: Sequence[Sequence[float]], h_samples: Sequence[float]) -> list[np.ndarray]:
    """TuSimple ``lanes`` + ``h_samples`` -> polylines (k, 2) of ``x, y``; negative x splits a lane.

    >>> [p.tolist() for p in lane_polylines([[-2, 10, 12, -2, 20, 22]], [0, 10, 20, 30, 40, 50])]
    [[[10.0, 10.0], [12.0, 20.0]], [[20.0, 40.0], [22.0, 50.0]]]
    """
    out = []
    ys = np.asarray(h_samples, np.float32)
    for xs in lanes:
        xs = np.asarray(xs, np.float32)
        if xs.shape != ys.shape:
            raise ValueError(f"a lane has {xs.size} x values but there are {ys.size} h_samples")
        valid = xs >= 0
        start = None
        for i, ok in enumerate([*valid, False]):
            if ok and start is None:
                start = i
            elif not ok and start is not None:
                if i - start >= 2:
                    out.append(np.stack([xs[start:i], ys[start:i]], 1))
                start = None
    return out


def read_label_data(paths: Iterable[str | Path], images_root: str | Path | None = None) -> list[Sample]:
    """Samples with ``lanes`` from one or more ``label_data_*.json`` files (in order).

    A line that is not a JSON object with ``lanes``, ``h_samples`` and ``raw_file`` of matching lengths
    is an InputError naming the file and line.
    """
    samples = []
    for path in map(Path, paths):
        root = Path(images_root) if images_root is not None else path.parent
        for n, line in enumerate(read_text_lines(path, "TuSimple label file"), 1):
            try:
                d = json.loads(line)
                polylines = lane_polylines(d["lanes"], d["h_samples"])
                raw_file = str(d["raw_file"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                msg = e.msg if isinstance(e, json.JSONDecodeError) else f"{type(e).__name__}: {e}"
                raise InputError(path, f"line {n} is not a TuSimple label ({msg})") from None
            samples.append(Sample(root / raw_file, lanes=polylines, source=path))
    return samples
