"""Crowd detection evaluation (WIDER-style) on Pascal VOC face boxes, and the hold-out split of facemask_cc0.

Protocol (``polyhead face val --protocol wider --data datasets/face-crowd.yaml``):

- every box in the XML is a face, whatever its class (``with_mask``, ``without_mask``,
  ``mask_weared_incorrect``); boxes are clipped to the image; a face's size is its box height;
- faces shorter than ``min_face`` (20 px) are **ignore regions**: a detection that matches one
  (IoU >= 0.5) is neither a true nor a false positive, and the face is not a miss;
- matching per image, detections by falling score: each takes the unmatched counted face of highest IoU
  if that IoU >= 0.5 (true positive); else, if it overlaps an ignore region at IoU >= 0.5, it is ignored
  (any number of detections may fall on one ignore region); else it is a false positive;
- AP at IoU 0.5: all-point interpolated precision over recall (VOC 2010+ / WIDER FACE style);
- recall at a fixed number of false positives per image (``fppi``, default 0.5): the recall at the lowest
  score threshold whose false positives over all evaluated images stay within ``fppi`` x images;
- size bins (``20-32``, ``32-64``, ``64+`` px tall): faces outside the bin are ignored as well, and so are
  unmatched detections whose height is outside the bin (the COCO area-range rule), so a bin's AP is not
  penalised by detections of other sizes.

The split (``make_split``) is by image: a seeded permutation of the sorted file names, the first share held
out. ``datasets/face-crowd-holdout.txt`` lists the held-out images; training code reads it with
:func:`read_split` and leaves them out.

>>> items = read_voc_folder("../shared/data/face/facemask_cc0")      # doctest: +SKIP
>>> m = evaluate_crowd(detections, [gt for _, gt in items])            # doctest: +SKIP
>>> m["all"]["ap50"], m["all"]["recall_at_fppi"]                       # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from polyhead.apps.face.evaluate import average_precision
from polyhead.apps.face.samples import iou_matrix
from polyhead.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_BINS = (20.0, 32.0, 64.0)


# ------------------------------------------------------------------ data
def read_voc(path: str | Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Boxes (n, 4: x1, y1, x2, y2) of every ``<object>`` of a Pascal VOC XML and the ``(h, w)`` it
    states (None when absent); boxes are clipped to that size. Bad files raise :class:`InputError`.

    Text stray between tags (one file of facemask_cc0 has a pasted path) is harmless to the parser.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputError(path, f"not a readable Pascal VOC XML ({e})") from None
    size = None
    s = root.find("size")
    if s is not None and s.findtext("width") and s.findtext("height"):
        try:
            size = (int(float(s.findtext("height"))), int(float(s.findtext("width"))))
        except ValueError:
            raise InputError(path, "<size> holds a non-numeric width or height") from None
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        if b is None:
            raise InputError(path, "an <object> has no <bndbox>")
        try:
            boxes.append([float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
        except (TypeError, ValueError):
            raise InputError(path, "a <bndbox> lacks xmin/ymin/xmax/ymax numbers") from None
    arr = np.array(boxes, np.float32).reshape(-1, 4)
    if size is not None and len(arr):
        h, w = size
        arr[:, [0, 2]] = arr[:, [0, 2]].clip(0, w)
        arr[:, [1, 3]] = arr[:, [1, 3]].clip(0, h)
    bad = (arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])
    return arr[~bad], size


def read_voc_folder(root: str | Path, names: set[str] | None = None) -> list[tuple[Path, np.ndarray]]:
    """``[(image, boxes)]`` of a folder with ``images/`` and ``annotations/`` (same stems), sorted by name;
    ``names`` (image file names) keeps only those."""
    root = Path(root)
    img_dir, ann_dir = root / "images", root / "annotations"
    if not img_dir.is_dir() or not ann_dir.is_dir():
        raise InputError(root, "expected a folder with images/ and annotations/ (Pascal VOC XML, same stems)")
    images = {p.stem: p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    out = []
    for xml in sorted(ann_dir.glob("*.xml"), key=lambda p: p.name):
        img = images.get(xml.stem)
        if img is None or (names is not None and img.name not in names):
            continue
        out.append((img, read_voc(xml)[0]))
    if names is not None:
        found = {p.name for p, _ in out}
        lost = sorted(names - found)
        if lost:
            raise InputError(root, f"{len(lost)} image(s) of the split list are not in the set (first: {lost[0]})")
    return out


def make_split(names: list[str], share: float = 0.2, seed: int = 0) -> list[str]:
    """The held-out names: a seeded permutation of the sorted names, the first ``round(share * n)``.

    >>> make_split(["a", "b", "c", "d", "e"], 0.4, seed=0)
    ['c', 'e']
    """
    ordered = sorted(names)
    k = int(round(share * len(ordered)))
    perm = np.random.default_rng(seed).permutation(len(ordered))
    return sorted(ordered[i] for i in perm[:k])


def write_split(path: str | Path, held_out: list[str], share: float, seed: int, source: str) -> Path:
    """Write the hold-out list: a comment header saying how it was made, then one image file name a line."""
    from polyhead.io.writers import atomic_path

    path = Path(path)
    header = [
        f"# hold-out (validation) images of {source}: never train on them",
        f"# made by polyhead.apps.face.crowd.make_split(sorted image names, share={share}, seed={seed}):",
        "# numpy default_rng(seed).permutation over the sorted names, the first round(share * n) held out",
        f"# {len(held_out)} images",
    ]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(header + list(held_out)) + "\n")
    return path


def read_split(path: str | Path) -> set[str]:
    """The image file names listed in a split file (``#`` comments and blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "split list not found")
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


@dataclass
class CrowdSet:
    """A crowd evaluation set from a dataset YAML (``voc``, ``split``, ``min_face``, ``size_bins``, ``fppi``)
    or a VOC folder (all its images)."""

    voc: Path
    split_file: Path | None = None
    min_face: float = 20.0
    size_bins: tuple[float, ...] = DEFAULT_BINS
    fppi: float = 0.5
    iou: float = 0.5
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str | Path) -> CrowdSet:
        path = Path(path)
        if path.is_dir():
            return cls(voc=path)
        if not path.is_file():
            raise InputError(path, "dataset YAML or VOC folder not found")
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise InputError(path, f"not valid YAML ({type(e).__name__})") from None
        if not isinstance(d, dict) or "voc" not in d:
            raise InputError(path, "a crowd val YAML needs 'voc: <folder with images/ and annotations/>'")
        known = {"voc", "split", "min_face", "size_bins", "fppi", "iou", "share", "seed"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(path, f"unknown key(s) {unknown}; known: {sorted(known)}")
        bins = tuple(float(b) for b in d.get("size_bins", DEFAULT_BINS))
        if any(b <= 0 for b in bins) or list(bins) != sorted(bins):
            raise InputError(path, f"size_bins must be increasing positive heights, got {list(bins)}")
        return cls(
            voc=(path.parent / d["voc"]).resolve(),
            split_file=(path.parent / d["split"]).resolve() if d.get("split") else None,
            min_face=float(d.get("min_face", 20.0)),
            size_bins=bins,
            fppi=float(d.get("fppi", 0.5)),
            iou=float(d.get("iou", 0.5)),
            extra={k: d[k] for k in ("share", "seed") if k in d},
        )

    def items(self, split: str = "val") -> list[tuple[Path, np.ndarray]]:
        """``val``: the hold-out list; ``train``: every other image; ``all``: every image."""
        if split not in ("val", "train", "all"):
            raise InputError(None, f"--split must be val, train or all for the wider protocol, got '{split}'")
        if self.split_file is None or split == "all":
            return read_voc_folder(self.voc)
        held = read_split(self.split_file)
        if split == "val":
            return read_voc_folder(self.voc, held)
        return [it for it in read_voc_folder(self.voc) if it[0].name not in held]


# ------------------------------------------------------------------ matching and metrics
def heights(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0, np.float32)


def match_image(
    boxes: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray,
    counted: np.ndarray,
    det_counted: np.ndarray,
    iou: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One image: per detection ``tp`` (matched a counted face) and ``ignored`` flags.

    ``counted``: which faces count (the rest are ignore regions); ``det_counted``: detections that may be
    false positives at all (False: ignored when unmatched, e.g. outside a size bin).

    >>> gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10.]])
    >>> det = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 0, 60, 10.]])
    >>> match_image(det, np.array([0.9, 0.8, 0.7]), gt, np.array([True, False]), np.ones(3, bool))
    (array([ True, False, False]), array([False,  True, False]))
    """
    n = len(boxes)
    tp, ignored = np.zeros(n, bool), np.zeros(n, bool)
    if n == 0:
        return tp, ignored
    m = iou_matrix(boxes, gt) if len(gt) else np.zeros((n, 0))
    used = np.zeros(len(gt), bool)
    for i in np.argsort(-scores, kind="stable"):
        free = counted & ~used
        if free.any():
            cand = np.where(free, m[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou:
                tp[i], used[j] = True, True
                continue
        if (~counted).any() and float(np.where(~counted, m[i], -1.0).max()) >= iou:
            ignored[i] = True
        elif not det_counted[i]:
            ignored[i] = True
    return tp, ignored


def recall_at_fppi(scores: np.ndarray, tp: np.ndarray, n_gt: int, n_images: int, fppi: float) -> tuple[float, float]:
    """``(recall, score threshold)`` at the lowest threshold whose false positives stay <= ``fppi`` x images.

    >>> recall_at_fppi(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 1]), 4, 2, 0.5)
    (0.75, 0.6)
    """
    if n_gt == 0 or len(scores) == 0:
        return 0.0, 1.0
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], tp[order].astype(bool)
    ctp, cfp = np.cumsum(t), np.cumsum(~t)
    # a threshold can only sit between distinct scores: evaluate at the last index of each score value
    last = np.r_[s[1:] != s[:-1], True]
    ok = last & (cfp <= fppi * n_images)
    if not ok.any():
        return 0.0, float(s[0])
    k = int(np.nonzero(ok)[0][-1])
    return float(ctp[k] / n_gt), float(s[k])


def evaluate_crowd(
    detections: list[dict[str, np.ndarray]],
    gts: list[np.ndarray],
    min_face: float = 20.0,
    size_bins: tuple[float, ...] = DEFAULT_BINS,
    iou: float = 0.5,
    fppi: float = 0.5,
) -> dict[str, dict]:
    """WIDER-style metrics over images: ``{"all": {...}, "20-32": {...}, ...}`` with ``faces``,
    ``ap50``, ``recall`` (every detection), ``recall_at_fppi`` and its ``score_at_fppi``, ``tp``, ``fp``,
    ``fp_per_image``. ``all`` counts faces >= ``min_face``; bins start at ``size_bins``.

    >>> det = [{"boxes": np.array([[0, 0, 30, 30.]]), "scores": np.array([0.9])}]
    >>> evaluate_crowd(det, [np.array([[0, 0, 30, 30.], [40, 0, 50, 10]])])["all"]["ap50"]
    1.0
    """
    if len(detections) != len(gts):
        raise ValueError(f"{len(detections)} detection lists for {len(gts)} images")
    edges = [*size_bins, math.inf]
    ranges = {"all": (min_face, math.inf)}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        lo = max(lo, min_face)
        if lo < hi:
            ranges[f"{lo:g}-{hi:g}" if hi < math.inf else f"{lo:g}+"] = (lo, hi)
    out = {}
    for name, (lo, hi) in ranges.items():
        all_scores, all_tp, n_gt = [], [], 0
        for det, gt in zip(detections, gts, strict=True):
            gh = heights(gt)
            counted = (gh >= lo) & (gh < hi)
            dh = heights(det["boxes"])
            det_counted = np.ones(len(dh), bool) if name == "all" else (dh >= lo) & (dh < hi)
            tp, ign = match_image(det["boxes"], det["scores"], gt, counted, det_counted, iou)
            all_scores.append(det["scores"][~ign])
            all_tp.append(tp[~ign])
            n_gt += int(counted.sum())
        s = np.concatenate(all_scores) if all_scores else np.zeros(0)
        t = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
        r, thr = recall_at_fppi(s, t, n_gt, len(gts), fppi)
        out[name] = {
            "faces": n_gt,
            "ap50": round(average_precision(s, t, n_gt), 4) if n_gt else None,
            "recall": round(float(t.sum()) / n_gt, 4) if n_gt else None,
            "recall_at_fppi": round(r, 4) if n_gt else None,
            "score_at_fppi": round(thr, 4),
            "tp": int(t.sum()),
            "fp": int((~t).sum()),
            "fp_per_image": round(float((~t).sum()) / max(len(gts), 1), 3),
        }
    return out


# ------------------------------------------------------------------ running the detector
def detect_all(detector, items, batch: int = 8) -> tuple[list[dict[str, np.ndarray]], float]:
    """Detections for every item (batched through the cascade) and the seconds per image."""
    from polyhead.io import read_image

    dets: list[dict[str, np.ndarray]] = []
    t = time.perf_counter()
    for i in range(0, len(items), batch):
        images = [read_image(p) for p, _ in items[i : i + batch]]
        dets.extend(detector.detect(images))
    return dets, (time.perf_counter() - t) / max(len(items), 1)


def cascade_recall(
    detector, items, min_face: float = 20.0, size_bins: tuple[float, ...] = DEFAULT_BINS, iou: float = 0.5
) -> dict:
    """Where the cascade loses faces: the share of faces (>= ``min_face``) that still have a candidate at
    IoU >= ``iou`` after each step, overall and by size bin, and P-Net's recall per pyramid level.

    Steps: ``pnet_levels`` (any level, after each level's NMS), ``pnet_nms`` (after the NMS across levels),
    ``pnet_cap`` (after the per-image proposal cap), ``rnet``, ``onet`` (the final detections). P-Net
    boxes are taken as R-Net sees them (regressed and squared). Per level: ``scale``, ``window_px`` (the
    face height the 12-px window spans at that scale), candidates per image, recall over all faces, and
    ``recall_home``: recall over the faces whose height is within that level's range
    ``[12/s_k, 12/s_{k+1})`` (the level meant to find them).
    """
    import torch

    from polyhead.apps.face.detect import apply_offsets, square
    from polyhead.io import read_image

    edges = [min_face, *[b for b in size_bins if b > min_face], math.inf]
    bin_names = [
        f"{lo:g}-{hi:g}" if hi < math.inf else f"{lo:g}+" for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    steps = ["pnet_levels", "pnet_nms", "pnet_cap", "rnet", "onet"]
    hits = {k: [] for k in steps}
    sizes: list[np.ndarray] = []
    per_level: dict[int, dict] = {}
    n_props = {k: 0 for k in steps}
    t = time.perf_counter()
    for path, gt in items:
        res, tr = detector.detect_traced(read_image(path))
        g = gt[heights(gt) >= min_face]
        f = float(tr.get("factor", 1.0))
        gh = heights(g)
        sizes.append(gh)

        def hit(boxes: np.ndarray, g=g) -> np.ndarray:
            if len(g) == 0:
                return np.zeros(0, bool)
            if len(boxes) == 0:
                return np.zeros(len(g), bool)
            return iou_matrix(g, boxes).max(1) >= iou

        def pnet_boxes(rows: torch.Tensor, f=f) -> np.ndarray:
            if len(rows) == 0:
                return np.zeros((0, 4), np.float32)
            return (square(apply_offsets(rows[:, 1:5], rows[:, 5:9])) / f).numpy()

        scales = tr.get("scales", [])
        any_level = np.zeros(len(g), bool)
        for k, sc in enumerate(scales):
            rows = tr["levels"].get(k, torch.zeros((0, 10)))
            h = hit(pnet_boxes(rows))
            any_level |= h
            lo = 12 / sc / f
            hi = 12 / scales[k + 1] / f if k + 1 < len(scales) else math.inf
            home = (gh >= lo) & (gh < hi)
            d = per_level.setdefault(k, {"scale": [], "window_px": [], "cands": 0, "hit": 0, "home": 0, "home_hit": 0})
            d["scale"].append(sc * f)
            d["window_px"].append(lo)
            d["cands"] += len(rows)
            d["hit"] += int(h.sum())
            d["home"] += int(home.sum())
            d["home_hit"] += int((h & home).sum())
        hits["pnet_levels"].append(any_level)
        for key in ("pnet_nms", "pnet_cap"):
            rows = tr.get(key, torch.zeros((0, 10)))
            hits[key].append(hit(pnet_boxes(rows)))
            n_props[key] += len(rows)
        rn = tr.get("rnet", torch.zeros((0, 5)))
        hits["rnet"].append(hit(rn[:, 1:].numpy() / f if len(rn) else np.zeros((0, 4))))
        n_props["rnet"] += len(rn)
        hits["onet"].append(hit(res["boxes"]))
        n_props["onet"] += len(res["boxes"])
        n_props["pnet_levels"] += sum(len(v) for v in tr.get("levels", {}).values())
    spi = (time.perf_counter() - t) / max(len(items), 1)
    gh = np.concatenate(sizes) if sizes else np.zeros(0)
    n_img = max(len(items), 1)
    out: dict = {"faces": int(len(gh)), "images": len(items), "seconds_per_image": round(spi, 4), "steps": {}}
    for k in steps:
        h = np.concatenate(hits[k]) if hits[k] else np.zeros(0, bool)
        row = {
            "candidates_per_image": round(n_props[k] / n_img, 1),
            "all": round(float(h.mean()), 4) if len(h) else None,
        }
        for name, lo, hi in zip(bin_names, edges[:-1], edges[1:], strict=True):
            m = (gh >= lo) & (gh < hi)
            row[name] = round(float(h[m].mean()), 4) if m.any() else None
        out["steps"][k] = row
    faces = max(len(gh), 1)
    out["levels"] = [
        {
            "level": k,
            "scale": round(float(np.median(d["scale"])), 4),
            "window_px": round(float(np.median(d["window_px"])), 1),
            "images": len(d["scale"]),
            "candidates_per_image": round(d["cands"] / max(len(d["scale"]), 1), 1),
            "recall_all": round(d["hit"] / faces, 4),
            "home_faces": d["home"],
            "recall_home": round(d["home_hit"] / d["home"], 4) if d["home"] else None,
        }
        for k, d in sorted(per_level.items())
    ]
    return out


def format_cascade_recall(r: dict) -> str:
    """:func:`cascade_recall` as two Markdown tables (steps, then P-Net levels)."""
    bins = [k for k in next(iter(r["steps"].values())) if k not in ("candidates_per_image", "all")]
    lines = [
        "| step | candidates / image | recall (all) | " + " | ".join(bins) + " |",
        "|---|---|---|" + "---|" * len(bins),
    ]
    for k, row in r["steps"].items():
        lines.append(
            f"| {k} | {row['candidates_per_image']} | {row['all']} | " + " | ".join(str(row[b]) for b in bins) + " |"
        )
    lines += [
        "",
        "| P-Net level | scale (median) | window = face px | candidates / image | recall (all faces) | faces at home "
        "| recall at home |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in r["levels"]:
        lines.append(
            f"| {d['level']} | {d['scale']} | {d['window_px']} | {d['candidates_per_image']} | {d['recall_all']} | "
            f"{d['home_faces']} | {d['recall_home']} |"
        )
    return "\n".join(lines)


def run_crowd_val(app, args: argparse.Namespace) -> int:
    """``polyhead face val --protocol wider --data datasets/face-crowd.yaml [--split val] [--json F]``."""
    cs = CrowdSet.from_path(args.data)
    items = cs.items(getattr(args, "split", "val") or "val")
    limit = getattr(args, "limit", None)
    items = items[:limit] if limit else items
    if not items:
        raise InputError(args.data, "no annotated images to evaluate")
    if getattr(args, "stages", False):
        if getattr(app, "detector_kind", "cascade") != "cascade":
            raise InputError(None, "--stages traces the cascade's steps; it does not apply to --detector single")
        r = cascade_recall(app.detector, items, cs.min_face, cs.size_bins, cs.iou)
        print(format_cascade_recall(r))
        if args.json:
            from polyhead.io.writers import write_json

            write_json(args.json, {"data": str(args.data), "detector": dict(app.detector.config.__dict__), **r})
        return 0
    dets, spi = detect_all(app.detector, items)
    metrics = evaluate_crowd(dets, [gt for _, gt in items], cs.min_face, cs.size_bins, cs.iou, cs.fppi)
    total = sum(len(gt) for _, gt in items)
    summary = {
        "protocol": "wider",
        "images": len(items),
        "faces_total": total,
        "faces_ignored_under_min": total - metrics["all"]["faces"],
        "min_face": cs.min_face,
        "iou": cs.iou,
        "fppi": cs.fppi,
        "seconds_per_image": round(spi, 4),
        "bins": metrics,
    }
    print(format_table(metrics, cs.fppi))
    print(json.dumps({k: v for k, v in summary.items() if k != "bins"}))
    if args.json:
        from polyhead.io.writers import write_json

        write_json(
            args.json,
            {
                "weights": str(args.weights or app.default_weights),
                "data": str(args.data),
                "split": getattr(args, "split", "val"),
                "detector": {"kind": getattr(app, "detector_kind", "cascade"), **app.detector.config.__dict__},
                "metrics": summary,
            },
        )
    return 0


def format_table(metrics: dict[str, dict], fppi: float) -> str:
    """The metrics as a Markdown table (one row per size bin)."""
    rows = [f"| faces | n | AP50 | recall | recall @ {fppi:g} FP/image | FP/image |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        rows.append(
            f"| {name} | {m['faces']} | {m['ap50']} | {m['recall']} | {m['recall_at_fppi']} | {m['fp_per_image']} |"
        )
    return "\n".join(rows)
