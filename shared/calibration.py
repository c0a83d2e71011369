"""Probability calibration for classification heads: temperature scaling (Guo et al. 2017), expected
calibration error and the reliability diagram. Any app with an image-level head can use it.

A network's softmax is usually over-confident. One scalar ``T`` fitted on held-out logits (minimising
their negative log-likelihood with LBFGS) divides every logit: ``softmax(z / T)``. It keeps the argmax, so
accuracy is unchanged, and makes a predicted 0.9 mean about 90% right.

>>> rng = np.random.default_rng(0)
>>> labels = rng.integers(0, 3, 500)
>>> logits = rng.normal(0, 1, (500, 3)); logits[np.arange(500), labels] += 1.0; logits *= 4  # over-confident
>>> t = fit_temperature(logits, labels)
>>> t > 1, nll(logits / t, labels) < nll(logits, labels)
(True, True)
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

#: bins of the expected calibration error and the reliability diagram (equal width on [0, 1])
ECE_BINS = 15
#: the temperatures :func:`fit_temperature` may return
T_RANGE = (0.01, 100.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, numerically stable."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of integer ``labels`` under ``softmax(logits)``."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-logp[np.arange(len(labels)), np.asarray(labels, int)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 100) -> float:
    """The temperature ``T > 0`` minimising the NLL of ``logits / T`` (LBFGS on ``log T``, so T stays
    positive), clamped to :data:`T_RANGE`. 1.0 when there is nothing to fit (no samples, or a single class
    present) or the fit fails."""
    import torch

    z = torch.as_tensor(np.asarray(logits, np.float64))
    y = torch.as_tensor(np.asarray(labels, np.int64))
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"expected (N, C) logits and N labels, got {tuple(z.shape)} and {tuple(y.shape)}")
    if len(y) == 0 or len(torch.unique(y)) < 2:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    # an uninformative head's optimum runs off to T -> infinity (uniform probabilities): clamp, not reset
    return float(np.clip(t, T_RANGE[0], T_RANGE[1])) if np.isfinite(t) else 1.0


def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each confidence, equal-width bins on [0, 1] (right-closed; 0 goes to the first bin)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, n_bins - 1)


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Per-bin mean confidence, accuracy and count of the top-label prediction (the diagram's data)."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, int)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    b = _bins(conf, n_bins)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(b, conf, n_bins) / count
        accuracy = np.bincount(b, correct, n_bins) / count
    return {"confidence": mean_conf, "accuracy": accuracy, "count": count, "edges": np.linspace(0, 1, n_bins + 1)}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of the top-label prediction: sum over bins of ``|accuracy - confidence|`` weighted by the
    share of samples in the bin. NaN for no samples.

    >>> expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1]))
    0.4
    """
    if len(labels) == 0:
        return float("nan")
    r = reliability(probs, labels, n_bins)
    keep = r["count"] > 0
    gap = np.abs(r["accuracy"][keep] - r["confidence"][keep])
    return float(round((gap * r["count"][keep]).sum() / r["count"].sum(), 12))


def calibration_report(logits: np.ndarray, labels: np.ndarray, temperature: float | None = None) -> dict:
    """NLL and ECE before and after temperature scaling; ``temperature`` None fits one on these logits."""
    t = fit_temperature(logits, labels) if temperature is None else float(temperature)
    before, after = softmax(logits), softmax(np.asarray(logits, np.float64) / t)
    return {
        "temperature": t,
        "fitted_here": temperature is None,
        "n": int(len(labels)),
        "nll_before": nll(logits, labels),
        "nll_after": nll(np.asarray(logits, np.float64) / t, labels),
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(after, labels),
    }


def reliability_diagram(
    logits: np.ndarray, labels: np.ndarray, temperature: float, path: str | Path, title: str = ""
) -> Path:
    """Write a PNG: accuracy against confidence per bin before and after ``temperature`` (the diagonal is
    perfect calibration), with the ECE of each and the sample count per bin underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polyhead.io.writers import write_bytes

    before = reliability(softmax(logits), labels)
    after = reliability(softmax(np.asarray(logits, np.float64) / temperature), labels)
    centres = (before["edges"][:-1] + before["edges"][1:]) / 2
    width = 1.0 / len(centres)
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(4.5, 5.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for r, name, colour in ((before, "T = 1", "tab:red"), (after, f"T = {temperature:.2f}", "tab:blue")):
        keep = r["count"] > 0
        ece = float((np.abs(r["accuracy"] - r["confidence"])[keep] * r["count"][keep]).sum() / max(r["count"].sum(), 1))
        ax.plot(r["confidence"][keep], r["accuracy"][keep], "o-", color=colour, ms=4, label=f"{name}: ECE {ece:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or "reliability", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax_n.bar(centres - width / 4, before["count"], width / 2, color="tab:red", alpha=0.6)
    ax_n.bar(centres + width / 4, after["count"], width / 2, color="tab:blue", alpha=0.6)
    ax_n.set_xlabel("confidence (top class)")
    ax_n.set_ylabel("images")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes(Path(path), buf.getvalue())
    return Path(path)
