"""Letterbox resize + normalisation, recorded so results map back to original pixels.

>>> lb = Letterbox.fit((360, 480), (384, 640))
>>> bool(np.allclose(lb.to_original_points(np.array([[lb.pad[0], lb.pad[1]]])), 0))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Scale an image by ``scale`` and pad it by ``pad = (left, top)`` into ``size = (h, w)``."""

    original: tuple[int, int]  # (h, w)
    size: tuple[int, int]  # (h, w) of the network input
    scale: float
    pad: tuple[int, int]  # (left, top)

    @classmethod
    def fit(cls, original: tuple[int, int], size: tuple[int, int]) -> Letterbox:
        h, w = original
        if h < 1 or w < 1:
            raise ValueError(f"image size {w}x{h} has an empty side")
        scale = min(size[0] / h, size[1] / w)
        nh, nw = _scaled_sides(original, size, scale)
        return cls(tuple(original), tuple(size), scale, ((size[1] - nw) // 2, (size[0] - nh) // 2))

    @property
    def inner(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the image inside the padded input (each side at least one pixel, so a
        3x20000 strip still has a row)."""
        nh, nw = _scaled_sides(self.original, self.size, self.scale)
        return self.pad[0], self.pad[1], self.pad[0] + nw, self.pad[1] + nh

    def apply(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR, value: int = PAD_VALUE) -> np.ndarray:
        x0, y0, x1, y1 = self.inner
        resized = cv2.resize(image, (x1 - x0, y1 - y0), interpolation=interpolation)
        return cv2.copyMakeBorder(
            resized,
            y0,
            self.size[0] - y1,
            x0,
            self.size[1] - x1,
            cv2.BORDER_CONSTANT,
            value=value if image.ndim == 2 else (value,) * image.shape[2],
        )

    def to_original_points(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input-pixel points -> original pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - np.array(self.pad)) / self.scale

    def to_original_boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """(n, 4) input-pixel boxes -> original pixels, clipped to the image."""
        b = self.to_original_points(np.asarray(xyxy, np.float64).reshape(-1, 2, 2)).reshape(-1, 4)
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, self.original[1])
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, self.original[0])
        return b

    def to_original_map(self, m: np.ndarray, interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
        """A (H, W[, C]) map at input resolution -> cropped and resized to the original size."""
        x0, y0, x1, y1 = self.inner
        return cv2.resize(m[y0:y1, x0:x1], (self.original[1], self.original[0]), interpolation=interpolation)


def _scaled_sides(original: tuple[int, int], size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(h, w) of the resized image: rounded, clamped to [1, network side]."""
    return (
        min(size[0], max(1, round(original[0] * scale))),
        min(size[1], max(1, round(original[1] * scale))),
    )


Norm = tuple[tuple[float, ...], tuple[float, ...]]


def card_normalisation(card: dict) -> Norm:
    """``(mean, std)`` on 0..1 RGB that a model card's network expects: its model config's
    ``normalisation`` (set from the encoder), else the card's own entry, else ImageNet's.

    >>> card_normalisation({"model": {"normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3}}})
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    """
    norm = (card.get("model") or {}).get("normalisation") or card.get("normalisation") or {}
    return tuple(norm.get("mean", IMAGENET_MEAN)), tuple(norm.get("std", IMAGENET_STD))


def to_tensor(rgb: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """(h, w, 3) uint8 RGB -> normalised float (3, h, w)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def check_input_size(size: tuple[int, int], multiple: int = 32) -> tuple[int, int]:
    """Raise a helpful error unless both sides are positive multiples of ``multiple``."""
    h, w = size
    if h <= 0 or w <= 0 or h % multiple or w % multiple:
        fix = (max(multiple, round(h / multiple) * multiple), max(multiple, round(w / multiple) * multiple))
        raise ValueError(f"input size {w}x{h} must be a multiple of {multiple}; use {fix[1]}x{fix[0]}")
    return h, w


#: input contrast options a model card may name (``input.contrast``); inference applies the card's
CONTRASTS = ("clahe",)


def local_contrast(rgb: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (CLAHE, OpenCV's) of the lightness channel of an
    RGB uint8 image (CIE L*a*b*; the colours keep their hue): evens out illumination and local contrast
    between images, the usual first step for retinal vessel images. ``tiles`` is the grid per side.

    >>> img = np.zeros((64, 64, 3), np.uint8); img[:, 32:] = 60
    >>> out = local_contrast(img)
    >>> out.shape, out.dtype.name, int(out[:, 40:].mean()) > 60
    ((64, 64, 3), 'uint8', True)
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"local_contrast needs an RGB uint8 image, got {rgb.dtype} {rgb.shape}")
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def apply_contrast(rgb: np.ndarray, contrast: str | None) -> np.ndarray:
    """``rgb`` with the named input contrast applied (``None``: unchanged)."""
    if contrast is None:
        return rgb
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown input contrast {contrast!r}; known: {', '.join(CONTRASTS)}")
    return local_contrast(rgb)
