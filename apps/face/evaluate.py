"""``polyhead face val``: landmarks, attributes and detection on held-out real data.

- landmark error: mean point-to-point distance / inter-ocular distance (eye centres) on the held-out
  landmark crops, through the full cascade (the detection that best overlaps the reference box), plus
  the share of crops where the cascade finds that face; crops are 2x upscaled first (80 px crops hold
  ~30 px faces);
- age MAE (years) and gender accuracy on the held-out UTKFace chips, aligned by the cascade;
- detection recall and AP@0.5 (all-point interpolated) on the dlib example photos' box lists.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from polyhead.apps.face.samples import FaceSources, box_from_points, iou_matrix, read_dlib_xml

UPSCALE = 2.0


def average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP from detection scores and true-positive flags.

    >>> round(average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2), 3)
    0.833
    """
    if n_gt == 0:
        return 0.0
    order = np.argsort(-scores)
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-9)
    r = np.concatenate([[0], recall, [1]])
    p = np.concatenate([[1], precision, [0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(((r[idx + 1] - r[idx]) * p[idx + 1]).sum())


def match_detections(boxes: np.ndarray, scores: np.ndarray, gt: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Greedy (by score) matching: a detection is a true positive if it takes an unmatched GT at IoU >= iou."""
    tp = np.zeros(len(boxes), bool)
    if len(boxes) == 0 or len(gt) == 0:
        return tp
    m = iou_matrix(boxes, gt)
    used = np.zeros(len(gt), bool)
    for i in np.argsort(-scores):
        j = int(np.argmax(np.where(used, -1, m[i])))
        if m[i, j] >= iou and not used[j]:
            tp[i], used[j] = True, True
    return tp


def eval_detection(app, xml_files, limit: int | None = None) -> dict:
    scores, tps, n_gt, hits = [], [], 0, 0
    images = [it for x in xml_files for it in read_dlib_xml(x)][:limit]
    for path, gt in images:
        from polyhead.io import read_image

        r = app.detector.detect([read_image(path)])[0]
        tp = match_detections(r["boxes"], r["scores"], gt)
        scores.append(r["scores"])
        tps.append(tp)
        n_gt += len(gt)
        hits += int(tp.sum())
    s = np.concatenate(scores) if scores else np.zeros(0)
    t = np.concatenate(tps) if tps else np.zeros(0, bool)
    return {
        "det_images": len(images),
        "det_faces": n_gt,
        "det_recall": hits / max(n_gt, 1),
        "det_ap50": average_precision(s, t, n_gt),
        "det_false_positives": int((~t).sum()),
    }


def eval_landmarks(app, items, limit: int | None = None) -> dict:
    errs, found = [], 0
    items = items[:limit]
    for path, pts in items:
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        ref = pts * UPSCALE
        r = app.detector.detect([img])[0]
        if len(r["boxes"]) == 0:
            continue
        iou = iou_matrix(box_from_points(ref)[None], r["boxes"])[0]
        k = int(np.argmax(iou))
        if iou[k] < 0.3:
            continue
        found += 1
        iod = np.linalg.norm(ref[0] - ref[1])
        errs.append(np.linalg.norm(r["points"][k] - ref, axis=1).mean() / iod)
    e = np.array(errs)
    return {
        "lmk_crops": len(items),
        "lmk_face_found": found / max(len(items), 1),
        "lmk_nme_iod": float(e.mean()) if len(e) else None,
        "lmk_failure_rate_0.1": float((e > 0.1).mean()) if len(e) else None,
    }


def eval_attributes(app, items, limit: int | None = None) -> dict:
    from polyhead.apps.face.attributes import align_detector, aligned_utk, evaluate_attributes
    from polyhead.apps.face.model import attr_crop

    if app.attr is None:
        return {}
    crop = attr_crop(app.attr)
    crops, age, gender, n_found = aligned_utk(items[:limit], align_detector(app.parts), crop, progress=False)
    m = evaluate_attributes(app.attr, crops, age, gender)
    m.pop("score", None)
    return {"utk_val_chips": len(crops), "utk_aligned_by_cascade": n_found, **m}


def run_val(app, args: argparse.Namespace) -> int:
    src = FaceSources.from_yaml(args.data)
    limit = getattr(args, "limit", None)
    t = time.time()
    metrics: dict = {}
    if getattr(args, "split", "val") == "train":  # for choosing thresholds without touching val
        metrics.update(eval_detection(app, src.box_xml, limit))
        print(json.dumps(metrics, indent=2))
        return 0
    metrics.update(eval_detection(app, src.val_boxes, limit))
    metrics.update(eval_landmarks(app, src.landmark_items("val"), limit))
    metrics.update(eval_attributes(app, src.utk_items("val"), limit))
    metrics["val_wall_time_s"] = round(time.time() - t, 1)
    print(json.dumps(metrics, indent=2))
    if args.json:
        from polyhead.io.writers import write_json

        write_json(
            args.json,
            {
                "weights": str(args.weights or app.default_weights),
                "data": str(args.data),
                "detector": app.detector.config.__dict__,
                "metrics": metrics,
            },
        )
    return 0
