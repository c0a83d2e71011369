"""Readers for the dataset formats users already have, into one in-memory sample description.

Each module reads one format and returns :class:`~polyhead.formats.common.Sample` objects (image path,
boxes with their source category names, ignore regions, keypoints, mask files or lane polylines); an
app maps the category names onto its classes with :class:`~polyhead.formats.common.ClassMap`.

- :mod:`~polyhead.formats.ultralytics_yaml`: ultralytics ``data.yaml`` + YOLO ``labels/*.txt``
- :mod:`~polyhead.formats.coco`: COCO detection JSON (boxes, ``iscrowd``, 5-point keypoints)
- :mod:`~polyhead.formats.bdd100k`: official BDD100K ``det_20`` JSON, drivable and lane mask PNGs
- :mod:`~polyhead.formats.tusimple`: TuSimple ``label_data_*.json`` lanes
- :mod:`~polyhead.formats.culane`: CULane list files + ``.lines.txt``
- :mod:`~polyhead.formats.kitti`: KITTI camera ``label_2`` boxes (``DontCare`` = ignore region)

Every problem with a file is an :class:`~polyhead.errors.InputError` naming it, in one line.
Format notes, YAML keys and class mapping: ``docs/formats.md``.
"""

from polyhead.formats.common import ClassMap, MaskFile, Sample, draw_lanes, read_mask_file

__all__ = ["ClassMap", "MaskFile", "Sample", "draw_lanes", "read_mask_file"]
