"""Flip test-time augmentation for dense heads (the idea of ultralytics' ``augment=True`` and ttach).

The mirrored copies of a batch go through the network as one batch (on CPU 1.5x faster than one by one,
measured on the medical U-Net), every dense output (a map with spatial axes) is mirrored back, and the
copies are averaged; image-level outputs (``(N, C)`` logits) are averaged as they are.

>>> net = lambda x: {"mask": x[:, :2], "cls": x.mean((2, 3))}
>>> out = flip_tta(net, torch.rand(1, 3, 32, 48), FLIPS)
>>> tuple(out["mask"].shape), tuple(out["cls"].shape)
((1, 2, 32, 48), (1, 3))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

#: none, horizontal, vertical, both: dims counted from the end, so they hold for (C, H, W) and (N, C, H, W)
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def flips_for(tta: bool) -> tuple[tuple[int, ...], ...]:
    """The flips a ``tta`` switch stands for: all four, or the identity alone."""
    return FLIPS if tta else FLIPS[:1]


def _mirror(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return t.flip(dims) if dims else t


def flip_tta(
    forward: Callable[[torch.Tensor], torch.Tensor | dict[str, torch.Tensor]],
    x: torch.Tensor,
    flips: Sequence[tuple[int, ...]] = FLIPS,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """``forward`` over ``x`` (N, C, H, W) and its mirrored copies, averaged; same structure as ``forward``'s
    output (a tensor or a dict of tensors), as float32.

    Outputs with at least 3 dimensions are maps: they are mirrored back, and ``activation`` (for example
    softmax over classes: averaging probabilities is the usual choice) is applied to them before averaging.
    Lower-dimensional outputs (image-level logits) are averaged unchanged. With ``flips`` the identity alone
    this is one plain forward pass (plus the activation on the maps).
    """
    flips = tuple(tuple(d) for d in flips) or ((),)
    n = len(flips)
    batch = torch.cat([_mirror(x, d) for d in flips]) if n > 1 else x
    out = forward(batch)

    def merge(value: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value).float()
        parts = value.chunk(n) if n > 1 else (value,)
        if value.ndim >= 3:
            parts = [_mirror(activation(p) if activation else p, d) for p, d in zip(parts, flips, strict=True)]
        return parts[0] if n == 1 else torch.stack(list(parts)).mean(0)

    if isinstance(out, dict):
        return {k: merge(v) for k, v in out.items()}
    return merge(out)
