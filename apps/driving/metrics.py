"""Driving metrics, accumulated over a set and then aggregated (the MONAI shape).

Definitions (as in YOLOP's evaluation):
- detection: mAP@0.5 (ultralytics' ``ap_per_class``) and recall at the max-F1 confidence;
- drivable area: mIoU = mean of the background and drivable IoUs;
- lane lines: accuracy = recall of lane pixels (YOLOP's ``lineAccuracy``) and IoU of the lane class.
Pixels are counted inside the letterboxed image, never in the padding.
"""

from __future__ import annotations

import numpy as np
import torch
from ultralytics.utils.metrics import ap_per_class, box_iou

from polyhead.metrics import ConfusionMatrix, Metric


class SegConfusion(ConfusionMatrix):
    """A 2-class confusion matrix accumulated over images (unlabelled pixels, 255, left out)."""

    def __init__(self, n: int = 2):
        super().__init__(n)

    @property
    def m(self) -> np.ndarray:
        return self.matrix


class DetectionAP(Metric):
    """Collects (tp at IoU 0.5, conf, class) over images; aggregates mAP@0.5 and recall."""

    def __init__(self, num_classes: int):
        self.nc = num_classes
        self.stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """``pred`` (n, 6) x1 y1 x2 y2 conf cls; ``gt`` (m, 5) cls x1 y1 x2 y2 (same pixels)."""
        tp = np.zeros((len(pred), 1), bool)
        if len(pred) and len(gt):
            iou = box_iou(
                torch.as_tensor(gt[:, 1:], dtype=torch.float32), torch.as_tensor(pred[:, :4], dtype=torch.float32)
            ).numpy()
            iou[gt[:, :1] != pred[None, :, 5]] = 0
            taken = set()
            for j in np.argsort(-pred[:, 4]):
                cand = [k for k in np.argsort(-iou[:, j]) if iou[k, j] >= 0.5 and k not in taken]
                if cand:
                    taken.add(cand[0])
                    tp[j, 0] = True
        self.stats.append(
            (
                tp,
                pred[:, 4] if len(pred) else np.zeros(0),
                pred[:, 5] if len(pred) else np.zeros(0),
                gt[:, 0] if len(gt) else np.zeros(0),
            )
        )

    def aggregate(self) -> dict[str, float]:
        if not self.stats:
            return {}
        tp, conf, pcls, tcls = (np.concatenate(x, 0) for x in zip(*self.stats, strict=True))
        if len(tcls) == 0:
            return {"det_images": len(self.stats), "det_targets": 0}
        if len(tp) == 0:
            return {"det_recall": 0.0, "det_map50": 0.0, "det_images": len(self.stats), "det_targets": int(len(tcls))}
        out = ap_per_class(tp, conf, pcls, tcls)
        r, ap = out[3], out[5]
        return {
            "det_recall": float(np.mean(r)),
            "det_map50": float(np.mean(ap[:, 0])),
            "det_images": len(self.stats),
            "det_targets": int(len(tcls)),
        }


class DrivingMetrics(Metric):
    """All three tasks; call :meth:`update` per image with whichever labels it has."""

    def __init__(self, num_classes: int):
        self.det = DetectionAP(num_classes)
        self.drivable = SegConfusion()
        self.lane = SegConfusion()

    def update(self, det=None, drivable=None, lane=None) -> None:
        """``det = (pred, gt)`` boxes, ``drivable`` / ``lane`` = ``(pred mask, gt mask)``; each optional."""
        for metric, pair in ((self.det, det), (self.drivable, drivable), (self.lane, lane)):
            if pair is not None:
                metric.update(*pair)

    def aggregate(self) -> dict[str, float]:
        out = dict(self.det.aggregate())
        if self.drivable.images:
            out["da_miou"] = float(self.drivable.iou().mean())
            out["da_images"] = self.drivable.images
        if self.lane.images:
            out["lane_acc"] = float(self.lane.recall()[1])
            out["lane_iou"] = float(self.lane.iou()[1])
            out["lane_images"] = self.lane.images
        parts = [(0.4, out.get("det_map50")), (0.3, out.get("da_miou")), (0.3, out.get("lane_iou"))]
        have = [(w, v) for w, v in parts if v is not None]
        out["score"] = sum(w * v for w, v in have) / sum(w for w, _ in have) if have else 0.0
        return out
