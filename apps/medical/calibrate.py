"""Temperature scaling of the medical image heads on a validation split, and the report ``val`` prints.

>>> report = calibrate_heads(model, val_set, spec)          # doctest: +SKIP
>>> report["diagnosis"]["temperature"], report["diagnosis"]["ece_after"]   # doctest: +SKIP
(1.83, 0.061)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.calibration import calibration_report, reliability_diagram


def collect_logits(model, dataset, spec, tta: bool = False, temperature: dict | None = None) -> tuple[dict, dict]:
    """Validation metrics (with ``detail``) and ``{head: (logits (N, C), labels (N,))}`` over every source."""
    from polyhead.apps.medical.evaluate import evaluate
    from polyhead.apps.medical.sources import MultiSourceDataset, evaluate_sources

    raw: dict = {}
    if isinstance(dataset, MultiSourceDataset):
        metrics = evaluate_sources(
            model, dataset, tta=tta, hd95=False, detail=True, temperature=temperature, collect=raw
        )
        merged = merge_sources(raw)
    else:
        metrics = evaluate(
            model, dataset, spec, tta=tta, hd95=False, detail=True, keep_largest=spec.keep_largest,
            temperature=temperature, collect=raw,
        )  # fmt: skip
        merged = raw
    return metrics, {h: (np.stack(z), np.asarray(y)) for h, (z, y) in merged.items() if z}


def merge_sources(raw: dict[str, dict[str, tuple[list, list]]]) -> dict[str, tuple[list, list]]:
    """``{source: {head: (logits, labels)}}`` -> ``{head: (logits, labels)}``: one temperature per head,
    fitted on every source that labels it."""
    merged: dict[str, tuple[list, list]] = {}
    for per_head in raw.values():
        for head, (z, y) in per_head.items():
            merged.setdefault(head, ([], []))[0].extend(z)
            merged[head][1].extend(y)
    return merged


def calibrate_heads(
    logits: dict[str, tuple[np.ndarray, np.ndarray]],
    temperature: dict[str, float] | None = None,
    plots: str | Path | None = None,
    prefix: str = "reliability",
) -> dict:
    """Per head: NLL and ECE before / after temperature scaling; a temperature from ``temperature`` (the
    card's) or fitted here (LBFGS on the NLL of these held-out logits). With ``plots``, one reliability
    diagram PNG per head (``<plots>/<prefix>_<head>.png``)."""
    out = {}
    for head, (z, y) in logits.items():
        t = (temperature or {}).get(head)
        rep = calibration_report(z, y, t)
        if plots is not None:
            path = Path(plots) / f"{prefix}_{head}.png"
            reliability_diagram(z, y, rep["temperature"], path, title=f"{head}: {len(y)} validation images")
            rep["reliability_png"] = str(path)
        out[head] = rep
    return out
