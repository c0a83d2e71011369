"""Validation of a floor-plan model on a dataset (used by ``val`` and by the Trainer each epoch)."""

from __future__ import annotations

import torch

from polyhead.apps.floorplan.data import FloorplanDataset
from polyhead.apps.floorplan.metrics import FloorplanMetrics
from polyhead.apps.floorplan.model import TASK, split_logits
from polyhead.tta import flip_tta, flips_for


@torch.inference_mode()
def evaluate(model, dataset: FloorplanDataset, batch_size: int = 4, detailed: bool = False, tta: bool = False) -> dict:
    """Run ``model`` over ``dataset`` (no training augmentation); metrics over the plan area (padding
    excluded). With ``tta`` each batch also runs mirrored (3 flips) and the logits are averaged.

    With ``detailed`` the per-class tables of both tasks are returned too.
    """
    model.eval()
    metrics = FloorplanMetrics()
    batch: list[dict] = []
    for i in range(len(dataset)):
        s = dataset[i]
        if s is not None:
            batch.append(s)
        if len(batch) == batch_size or (i == len(dataset) - 1 and batch):
            out = flip_tta(model, torch.stack([s["image"] for s in batch]), flips_for(tta))
            out = out[TASK] if isinstance(out, dict) else out
            bl, rl = split_logits(out)
            bp, rp = bl.argmax(1).numpy(), rl.argmax(1).numpy()
            for k, s in enumerate(batch):
                x0, y0, x1, y1 = s["inner"]
                t = s["targets"][TASK].numpy()
                metrics.update(bp[k, y0:y1, x0:x1], rp[k, y0:y1, x0:x1], t[0, y0:y1, x0:x1], t[1, y0:y1, x0:x1])
            batch = []
    result = metrics.aggregate()
    if detailed:
        result["boundary_detail"] = metrics.boundary.aggregate()
        result["room_detail"] = metrics.room.aggregate()
    return result
