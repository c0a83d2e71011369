"""Batching samples whose labels cover any subset of the tasks."""

from __future__ import annotations

import torch


def collate_multitask(samples: list[dict | None], kinds: dict[str, str]) -> dict:
    """Batch ``{"image", "targets": {task: value | None}, "name"}`` samples.

    ``kinds`` maps task -> "dense" | "boxes" | "vector" (the head's ``target_kind``). Missing labels
    become zeros plus ``present[task] = False``; box rows get their batch index prepended. ``None``
    samples (unreadable files) are dropped and counted in ``batch["skipped"]``.
    """
    good = [s for s in samples if s is not None]
    batch: dict = {"skipped": len(samples) - len(good), "names": [s.get("name", "") for s in good]}
    if not good:
        return batch
    batch["image"] = torch.stack([s["image"] for s in good])
    batch["targets"], batch["present"] = {}, {}
    for task, kind in kinds.items():
        values = [s["targets"].get(task) for s in good]
        batch["present"][task] = torch.tensor([v is not None for v in values])
        if kind == "boxes":
            rows = [
                torch.cat([torch.full((len(v), 1), float(i)), v.float()], 1)
                for i, v in enumerate(values)
                if v is not None and len(v)
            ]
            batch["targets"][task] = torch.cat(rows) if rows else torch.zeros(0, 6)
        else:
            ref = next((v for v in values if v is not None), None)
            if ref is None:
                ref = torch.zeros(batch["image"].shape[-2:], dtype=torch.long) if kind == "dense" else torch.zeros(1)
            batch["targets"][task] = torch.stack(
                [torch.as_tensor(v) if v is not None else torch.zeros_like(torch.as_tensor(ref)) for v in values]
            )
    return batch
