"""Driving metrics, accumulated over a set and then aggregated (the MONAI shape).

Definitions (as in YOLOP's evaluation):
- detection: mAP@0.5 and mAP@0.5:0.95, overall and per class (ultralytics' ``ap_per_class``; COCO's
  greedy matching per IoU threshold), precision and recall at the max-F1 confidence (and that
  confidence, ``det_best_f1_conf``); PR curves and a confusion matrix
  drawn by ultralytics when a plot folder is given;
- drivable area: mIoU = mean of the background and drivable IoUs;
- lane lines: accuracy = recall of lane pixels (YOLOP's ``lineAccuracy``) and IoU of the lane class;
  on frames with only a drivable label, where predicted lane pixels land (:class:`LanePlacement`).
Pixels are counted inside the letterboxed image, never in the padding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ultralytics.utils.metrics import ap_per_class, box_iou, smooth

from polyhead.metrics import ConfusionMatrix, Metric


class SegConfusion(ConfusionMatrix):
    """A 2-class confusion matrix accumulated over images (unlabelled pixels, 255, left out)."""

    def __init__(self, n: int = 2):
        super().__init__(n)

    @property
    def m(self) -> np.ndarray:
        return self.matrix


IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def match_detections(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """``(n_pred, n_thresholds)`` bool: whether each detection is a true positive at each IoU threshold
    (same class, greedy by confidence, each ground-truth box matched once per threshold; COCO's rule).

    >>> match_detections(np.array([[0, 0, 10, 10, 0.9, 0]]), np.array([[0, 0, 0, 10, 8]]))[0].tolist()[:4]
    [True, True, True, True]
    """
    tp = np.zeros((len(pred), len(thresholds)), bool)
    if not (len(pred) and len(gt)):
        return tp
    iou = box_iou(torch.as_tensor(gt[:, 1:], dtype=torch.float32), torch.as_tensor(pred[:, :4], dtype=torch.float32))
    iou = iou.numpy()
    iou[gt[:, :1] != pred[None, :, 5]] = 0
    order = np.argsort(-pred[:, 4], kind="stable")
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt), bool)
        for j in order:
            cand = np.where(~taken & (iou[:, j] >= thr))[0]
            if len(cand):
                k = cand[np.argmax(iou[cand, j])]
                taken[k] = True
                tp[j, t] = True
    return tp


class DetectionAP(Metric):
    """Collects (tp at IoU 0.50:0.95, conf, class) over images; aggregates mAP50, mAP50-95 (also per class)
    and recall, and with ``plot_dir`` draws ultralytics' PR / F1 curves and confusion matrix there."""

    def __init__(self, num_classes: int, names: list[str] | None = None, plot_dir: str | None = None):
        self.nc = num_classes
        self.names = list(names) if names else [str(i) for i in range(num_classes)]
        self.plot_dir = plot_dir
        self.stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.confusion = None
        if plot_dir:
            from ultralytics.utils.metrics import ConfusionMatrix as UltralyticsConfusion

            Path(plot_dir).mkdir(parents=True, exist_ok=True)  # ultralytics' plotters expect the folder

            self.confusion = UltralyticsConfusion(names=dict(enumerate(self.names)))

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """``pred`` (n, 6) x1 y1 x2 y2 conf cls; ``gt`` (m, 5) cls x1 y1 x2 y2 (same pixels)."""
        self.stats.append(
            (
                match_detections(pred, gt),
                pred[:, 4] if len(pred) else np.zeros(0),
                pred[:, 5] if len(pred) else np.zeros(0),
                gt[:, 0] if len(gt) else np.zeros(0),
            )
        )
        if self.confusion is not None:
            p = torch.as_tensor(pred, dtype=torch.float32).reshape(-1, 6)
            g = torch.as_tensor(gt, dtype=torch.float32).reshape(-1, 5)
            self.confusion.process_batch(
                {"bboxes": p[:, :4], "conf": p[:, 4], "cls": p[:, 5]}, {"bboxes": g[:, 1:], "cls": g[:, 0]}
            )

    def aggregate(self) -> dict[str, float]:
        if not self.stats:
            return {}
        tp, conf, pcls, tcls = (np.concatenate(x, 0) for x in zip(*self.stats, strict=True))
        if len(tcls) == 0:
            return {"det_images": len(self.stats), "det_targets": 0}
        if len(tp) == 0:
            return {"det_recall": 0.0, "det_map50": 0.0, "det_images": len(self.stats), "det_targets": int(len(tcls))}
        plot = self.plot_dir is not None
        names = dict(enumerate(self.names))
        out = ap_per_class(tp, conf, pcls, tcls, plot=plot, save_dir=Path(self.plot_dir or "."), names=names)
        p, r, ap, classes, f1_curve, x = out[2], out[3], out[5], out[6], out[9], out[10]
        if self.confusion is not None:
            self.confusion.plot(save_dir=self.plot_dir, normalize=True)
        result = {
            "det_recall": float(np.mean(r)),
            "det_precision": float(np.mean(p)),
            # the confidence where the class-mean F1 peaks (ultralytics' rule): a default --conf to ship
            "det_best_f1_conf": float(x[int(smooth(f1_curve.mean(0), 0.1).argmax())]),
            "det_map50": float(np.mean(ap[:, 0])),
            "det_map50_95": float(np.mean(ap)),
            "det_images": len(self.stats),
            "det_targets": int(len(tcls)),
        }
        for k, c in enumerate(classes):
            name = self.names[int(c)] if int(c) < len(self.names) else str(int(c))
            result[f"det_ap50_{name}"] = float(ap[k, 0])
            result[f"det_ap50_95_{name}"] = float(ap[k].mean())
        return result


class LanePlacement(Metric):
    """Where lane pixels land on frames that have a drivable-area label and no lane label (CamVid): the
    share of the frame predicted as lane and the share of those pixels on (within ``margin`` px of) the
    labelled drivable area. A lane head that fires on buildings shows here."""

    def __init__(self, margin: int = 7):
        self.margin = margin
        self.lane_pixels = 0
        self.frame_pixels = 0
        self.on_drivable = 0
        self.images = 0

    def update(self, lane_pred: np.ndarray, drivable_gt: np.ndarray) -> None:
        """``lane_pred`` bool/0-1 mask; ``drivable_gt`` 0/1 (255 unlabelled) of the same size."""
        import cv2

        road = (drivable_gt == 1).astype(np.uint8)
        if self.margin:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.margin + 1,) * 2)
            road = cv2.dilate(road, k)
        lane = np.asarray(lane_pred) > 0
        self.lane_pixels += int(lane.sum())
        self.frame_pixels += lane.size
        self.on_drivable += int((lane & (road > 0)).sum())
        self.images += 1

    def aggregate(self) -> dict[str, float]:
        if not self.images:
            return {}
        return {
            "lane_px_share_unlabelled": self.lane_pixels / max(self.frame_pixels, 1),
            "lane_on_drivable_share": self.on_drivable / self.lane_pixels if self.lane_pixels else 1.0,
            "lane_placement_images": self.images,
        }


class DrivingMetrics(Metric):
    """All three tasks; call :meth:`update` per image with whichever labels it has."""

    def __init__(self, num_classes: int, names: list[str] | None = None, plot_dir: str | None = None):
        self.det = DetectionAP(num_classes, names, plot_dir)
        self.drivable = SegConfusion()
        self.lane = SegConfusion()
        self.lane_placement = LanePlacement()

    def update(self, det=None, drivable=None, lane=None) -> None:
        """``det = (pred, gt)`` boxes, ``drivable`` / ``lane`` = ``(pred mask, gt mask)``; each optional."""
        for metric, pair in ((self.det, det), (self.drivable, drivable), (self.lane, lane)):
            if pair is not None:
                metric.update(*pair)

    def aggregate(self) -> dict[str, float]:
        out = dict(self.det.aggregate())
        out.update(self.lane_placement.aggregate())
        if self.drivable.images:
            out["da_miou"] = float(self.drivable.iou().mean())
            out["da_iou_drivable"] = float(self.drivable.iou()[1])  # the road class alone
            out["da_images"] = self.drivable.images
        if self.lane.images:
            out["lane_acc"] = float(self.lane.recall()[1])
            out["lane_iou"] = float(self.lane.iou()[1])
            out["lane_images"] = self.lane.images
        parts = [(0.4, out.get("det_map50")), (0.3, out.get("da_miou")), (0.3, out.get("lane_iou"))]
        have = [(w, v) for w, v in parts if v is not None]
        out["score"] = sum(w * v for w, v in have) / sum(w for w, _ in have) if have else 0.0
        return out
