"""Sliding-window inference for images larger than the training patch (the nnU-Net recipe).

Patches overlap, each patch's output is weighted by a Gaussian that trusts its centre more than its
borders, and the weighted sum is divided by the summed weights. Only the full-size accumulators (one
float32 map per output channel) grow with the image; patches go through the model a few at a time, so
memory stays bounded on large images. Optional flip test-time augmentation averages the mirrored runs.

>>> model = lambda x: x[:, :1]                      # any (N, C, h, w) -> (N, K, h, w) callable
>>> out = sliding_window(torch.rand(3, 300, 500), model, patch=(128, 128), overlap=0.5)
>>> tuple(out.shape)
(1, 300, 500)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from polyhead.tta import flip_tta, flips_for


@lru_cache(maxsize=8)
def gaussian_weight(patch: tuple[int, int], sigma_scale: float = 0.125) -> torch.Tensor:
    """(h, w) importance map: a Gaussian with sigma = ``sigma_scale`` x patch size, minimum > 0."""
    axes = []
    for n in patch:
        x = np.arange(n) - (n - 1) / 2
        axes.append(np.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2))
    w = np.outer(*axes)
    w = np.maximum(w / w.max(), 1e-3)  # borders still count a little (no division by ~0 at image edges)
    return torch.from_numpy(w.astype(np.float32))


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets covering ``size`` with windows of ``patch`` and at least ``overlap`` overlap."""
    if size <= patch:
        return [0]
    step = max(1, int(round(patch * (1 - overlap))))
    n = int(np.ceil((size - patch) / step)) + 1
    return [int(round(i * (size - patch) / (n - 1))) for i in range(n)]


@torch.inference_mode()
def sliding_window(
    image: torch.Tensor,
    predict: Callable[[torch.Tensor], torch.Tensor],
    patch: tuple[int, int],
    overlap: float = 0.5,
    batch_size: int = 4,
    tta: bool = False,
    gaussian: bool = True,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run ``predict`` over overlapping ``patch`` windows of a (C, H, W) tensor; return (K, H, W).

    Images smaller than the patch are padded (reflect) and cropped back. ``activation`` (e.g. softmax
    over classes) is applied per patch before blending; blending probabilities is the usual choice.
    With ``tta``, every patch also runs mirrored (3 flips) and the results are averaged.
    """
    if image.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    ph, pw = patch
    _, h, w = image.shape
    pad_h, pad_w = max(0, ph - h), max(0, pw - w)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        image = F.pad(image[None], (0, pad_w, 0, pad_h), mode=mode)[0]
    H, W = image.shape[-2:]
    weight = gaussian_weight((ph, pw)) if gaussian else torch.ones(ph, pw)
    boxes = [(y, x) for y in window_starts(H, ph, overlap) for x in window_starts(W, pw, overlap)]
    acc: torch.Tensor | None = None
    norm = torch.zeros(H, W)
    flips = flips_for(tta)
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i : i + batch_size]
        crops = torch.stack([image[:, y : y + ph, x : x + pw] for y, x in chunk])
        out = flip_tta(predict, crops, flips, activation=activation)
        if acc is None:
            acc = torch.zeros(out.shape[1], H, W)
        for (y, x), p in zip(chunk, out, strict=True):
            acc[:, y : y + ph, x : x + pw] += p * weight
            norm[y : y + ph, x : x + pw] += weight
    assert acc is not None
    return (acc / norm.clamp_min(1e-8))[:, :h, :w]
