"""KITTI object detection, camera labels: ``label_2/<id>.txt`` beside ``image_2/<id>.png``.

One object a line: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]`` (the 2D box in
pixels of the left colour image). ``DontCare`` boxes are regions where objects were not labelled: they
become ignore regions, not background. The other types (Car, Van, Truck, Pedestrian, Person_sitting,
Cyclist, Tram, Misc) are returned by name for the app's class map.

>>> samples = read_folder("/data/kitti/training")            # doctest: +SKIP
>>> samples[0].categories, samples[0].ignore.shape           # doctest: +SKIP
(['Pedestrian'], (0, 4))
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.formats.common import IMAGE_SUFFIXES, Sample, image_files, number, read_text_lines

IGNORE_TYPE = "dontcare"


def read_label(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A ``label_2`` file -> ``(boxes (n, 4) xyxy pixels, types, ignore (m, 4) from DontCare)``.

    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "000000.txt")
    >>> _ = open(f, "w").write("Car 0.00 0 -1.6 10 20 110 80 1.5 1.6 3.9 1 1 20 -1.5\\n"
    ...                        "DontCare -1 -1 -10 300 40 340 60 -1 -1 -1 -1000 -1000 -1000 -10\\n")
    >>> boxes, types, ignore = read_label(f); boxes.tolist(), types, ignore.tolist()
    ([[10.0, 20.0, 110.0, 80.0]], ['Car'], [[300.0, 40.0, 340.0, 60.0]])
    """
    path = Path(path)
    boxes, types, ignore = [], [], []
    for n, line in enumerate(read_text_lines(path, "KITTI label file"), 1):
        parts = line.split()
        if len(parts) not in (15, 16):
            raise InputError(path, f"line {n}: expected 15 fields 'type truncated occluded alpha x1 y1 x2 y2 ...'")
        xyxy = [number(v, path, f"line {n} box") for v in parts[4:8]]
        if parts[0].lower() == IGNORE_TYPE:
            ignore.append(xyxy)
        else:
            boxes.append(xyxy)
            types.append(parts[0])
    as_array = lambda rows: np.array(rows, np.float32).reshape(-1, 4)  # noqa: E731
    return as_array(boxes), types, as_array(ignore)


def read_folder(
    folder: str | Path, ids: Iterable[str] | None = None, images: str = "image_2", labels: str = "label_2"
) -> list[Sample]:
    """Samples of ``folder/image_2`` (all, or the given ``ids``) with ``folder/label_2`` boxes; an
    image without a label file has unlabelled boxes, a bad label file is that sample's ``problem``."""
    folder = Path(folder)
    image_dir, label_dir = folder / images, folder / labels
    if not image_dir.is_dir():
        raise InputError(image_dir, "no KITTI image folder")
    if ids is None:
        files = image_files(image_dir)
    else:
        by_stem = {p.stem: p for p in image_files(image_dir)}
        missing = [i for i in ids if i not in by_stem]
        if missing:
            raise InputError(image_dir, f"{len(missing)} listed ids have no image, e.g. {missing[0]}")
        files = [by_stem[i] for i in ids]
    samples = []
    for image in files:
        lp = label_dir / f"{image.stem}.txt"
        s = Sample(image, source=lp)
        if lp.is_file():
            try:
                s.boxes, s.categories, s.ignore = read_label(lp)
            except InputError as e:
                s.problem = e
        samples.append(s)
    if not samples:
        raise InputError(image_dir, f"no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...)")
    return samples
