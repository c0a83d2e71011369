"""Encoders: one factory over timm backbones that return multi-scale features (strides 4..32).

>>> enc = create_encoder("mobilenetv3_large_100")
>>> [f.shape[1] for f in enc(torch.zeros(1, 3, 64, 64))] == enc.channels
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    """A supported encoder: the timm architecture behind it and what it is for."""

    timm_name: str
    family: str
    note: str


ENCODERS: dict[str, EncoderSpec] = {
    "lcnet_075": EncoderSpec("lcnet_075", "mobile", "PP-LCNet 0.75, built for CPUs: the driving default"),
    "lcnet_100": EncoderSpec("lcnet_100", "mobile", "PP-LCNet 1.0, built for CPUs"),
    "mobilenetv3_large_100": EncoderSpec("mobilenetv3_large_100", "mobile", "light"),
    "mobilenetv3_small_100": EncoderSpec("mobilenetv3_small_100", "mobile", "lightest"),
    "efficientnet_b0": EncoderSpec("efficientnet_b0", "mobile", "accurate mobile"),
    "resnet18": EncoderSpec("resnet18", "resnet", "ResNet class, trains easily from scratch"),
    "resnet34": EncoderSpec("resnet34", "resnet", "ResNet class, larger"),
}

STRIDES = (4, 8, 16, 32)


class Encoder(nn.Module):
    """A timm backbone returning feature maps at strides 4, 8, 16 and 32 (and 2 when asked).

    Attributes:
        channels: channel count of each returned feature map.
        strides: the stride of each returned map: ``(4, 8, 16, 32)`` or ``(2, 4, 8, 16, 32)``.
    """

    def __init__(self, name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES):
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder '{name}'; choose one of {', '.join(sorted(ENCODERS))}")
        self.name = name
        self.body = timm.create_model(ENCODERS[name].timm_name, pretrained=False, features_only=True, in_chans=in_chans)
        info = self.body.feature_info
        strides = tuple(strides)
        wanted = [i for i, r in enumerate(info.reduction()) if r in strides]
        self.body = timm.create_model(
            ENCODERS[name].timm_name,
            pretrained=False,
            features_only=True,
            in_chans=in_chans,
            out_indices=tuple(wanted),
        )
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.strides: tuple[int, ...] = tuple(self.body.feature_info.reduction())
        if self.strides != strides:
            raise ValueError(f"encoder {name} gives strides {self.strides}, expected {strides}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


def create_encoder(
    name: str, weights: str | Path | None = None, in_chans: int = 3, strides: tuple[int, ...] = STRIDES
) -> Encoder:
    """Build a registered encoder with random weights, or load them from a local safetensors file.

    Nothing is ever downloaded: ``weights`` must be a path on disk.
    """
    encoder = Encoder(name, in_chans=in_chans, strides=strides)
    if weights is not None:
        from safetensors.torch import load_file

        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: encoder weights not found (only local files are used)")
        encoder.load_state_dict(load_file(str(path)))
    return encoder


def list_encoders() -> list[str]:
    """Names accepted by :func:`create_encoder`."""
    return sorted(ENCODERS)
