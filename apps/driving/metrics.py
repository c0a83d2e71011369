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


class SegConfusion:
    """A 2-class confusion matrix accumulated over images."""

    def __init__(self, n: int = 2):
        self.m = np.zeros((n, n), np.int64)
        self.images = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        n = self.m.shape[0]
        self.m += np.bincount(n * gt.astype(np.int64).ravel() + pred.astype(np.int64).ravel(), minlength=n * n).reshape(
            n, n
        )
        self.images += 1

    def iou(self) -> np.ndarray:
        inter = np.diag(self.m)
        return inter / np.maximum(self.m.sum(0) + self.m.sum(1) - inter, 1)

    def recall(self) -> np.ndarray:
        return np.diag(self.m) / np.maximum(self.m.sum(1), 1)


class DetectionAP:
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


class DrivingMetrics:
    """All three tasks; call :meth:`update` per image with whichever labels it has."""

    def __init__(self, num_classes: int):
        self.det = DetectionAP(num_classes)
        self.drivable = SegConfusion()
        self.lane = SegConfusion()

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
