"""Validation of a driving model on a dataset split (used by ``val`` and by the Trainer each epoch)."""

from __future__ import annotations

import numpy as np
import torch

from polyhead.apps.driving.data import DrivingDataset
from polyhead.apps.driving.metrics import DrivingMetrics
from polyhead.heads.detection import nms
from polyhead.heads.segmentation import upsample_logits


@torch.inference_mode()
def evaluate(
    model,
    dataset: DrivingDataset,
    batch_size: int = 4,
    conf: float = 0.001,
    iou: float = 0.6,
    max_images: int | None = None,
    plot_dir: str | None = None,
) -> dict[str, float]:
    """Run ``model`` over ``dataset`` (no augmentation) and aggregate :class:`DrivingMetrics`; with
    ``plot_dir``, PR curves and the confusion matrix are drawn there."""
    model.eval()
    metrics = DrivingMetrics(len(dataset.spec.names), dataset.spec.names, plot_dir)
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    samples = (dataset[i] for i in range(n))
    batch: list[dict] = []
    for s in samples:
        if s is not None:
            batch.append(s)
        if len(batch) == batch_size:
            _score(model, batch, metrics, conf, iou)
            batch = []
    if batch:
        _score(model, batch, metrics, conf, iou)
    return metrics.aggregate()


def _score(model, batch: list[dict], metrics: DrivingMetrics, conf: float, iou: float) -> None:
    out = model(torch.stack([s["image"] for s in batch]))
    dets = nms(out["det"], conf, iou) if "det" in out else [None] * len(batch)
    H, W = batch[0]["image"].shape[-2:]
    for k, s in enumerate(batch):
        t = s["targets"]
        x0, y0, x1, y1 = s["inner"]
        if t["det"] is not None and dets[k] is not None:
            g = t["det"].numpy()
            gt = (
                np.stack(
                    [
                        g[:, 0],
                        (g[:, 1] - g[:, 3] / 2) * W,
                        (g[:, 2] - g[:, 4] / 2) * H,
                        (g[:, 1] + g[:, 3] / 2) * W,
                        (g[:, 2] + g[:, 4] / 2) * H,
                    ],
                    1,
                )
                if len(g)
                else np.zeros((0, 5))
            )
            metrics.det.update(dets[k].cpu().numpy(), gt)
        for task, conf_m in (("drivable", metrics.drivable), ("lane", metrics.lane)):
            if t[task] is not None and task in out:
                pred = upsample_logits(out[task][k], (H, W)).argmax(0).numpy()[y0:y1, x0:x1]
                conf_m.update(pred, t[task].numpy()[y0:y1, x0:x1])
        if t["lane"] is None and t["drivable"] is not None and "lane" in out:
            lane = upsample_logits(out["lane"][k], (H, W)).argmax(0).numpy()[y0:y1, x0:x1]
            metrics.lane_placement.update(lane, t["drivable"].numpy()[y0:y1, x0:x1])
