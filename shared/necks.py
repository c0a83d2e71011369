"""Necks: FPN + PAN (top-down context for segmentation, bottom-up paths for detection) and a
U-Net decoder (concatenated skips, for masks of thin structures).

>>> neck = FPNPAN([24, 40, 112, 960], channels=64)
>>> out = neck([torch.zeros(1, c, 64 // s, 64 // s) for c, s in zip([24, 40, 112, 960], (4, 8, 16, 32))])
>>> sorted(out)
[4, 8, 16, 32]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.layers import ConvBNAct, DWSeparable


class FPNPAN(nn.Module):
    """Feature pyramid (strides 4..32, all ``channels`` wide) with a PAN bottom-up pass on 8..32.

    ``forward`` returns ``{stride: tensor}``: the FPN output at stride 4 and the PAN outputs at
    strides 8, 16 and 32 (which also carry the top-down context).
    """

    def __init__(self, in_channels: list[int], channels: int = 64, strides=(4, 8, 16, 32)):
        super().__init__()
        self.strides = tuple(strides)
        self.channels = channels
        self.lateral = nn.ModuleList(ConvBNAct(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(DWSeparable(channels, channels) for _ in in_channels)
        self.down = nn.ModuleList(DWSeparable(channels, channels, s=2) for _ in in_channels[1:])
        self.fuse = nn.ModuleList(DWSeparable(2 * channels, channels) for _ in in_channels[1:])

    def forward(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(lat) - 1, 0, -1):  # top-down
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        fpn = [conv(f) for conv, f in zip(self.smooth, lat, strict=True)]
        out = [fpn[0]]
        for i in range(1, len(fpn)):  # bottom-up
            out.append(self.fuse[i - 1](torch.cat([self.down[i - 1](out[-1]), fpn[i]], 1)))
        return dict(zip(self.strides, out, strict=True))


class UNetDecoder(nn.Module):
    """U-Net decoder: from the deepest level up, upsample, concatenate the skip, two 3x3 convs.

    Every returned level is ``channels`` wide, so any head reads any stride; the deepest level is the
    projected bottleneck (what an image-level classifier should read).

    >>> dec = UNetDecoder([16, 24, 40, 112, 960], channels=32, strides=(2, 4, 8, 16, 32))
    >>> out = dec([torch.zeros(1, c, 64 // s, 64 // s) for c, s in zip([16, 24, 40, 112, 960], (2, 4, 8, 16, 32))])
    >>> out[2].shape
    torch.Size([1, 32, 32, 32])
    """

    def __init__(self, in_channels: list[int], channels: int = 64, strides=(4, 8, 16, 32)):
        super().__init__()
        self.strides = tuple(strides)
        self.bottleneck = ConvBNAct(in_channels[-1], channels, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(ConvBNAct(channels + c, channels, 3), ConvBNAct(channels, channels, 3))
            for c in in_channels[:-1]
        )

    def forward(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        x = self.bottleneck(feats[-1])
        out = {self.strides[-1]: x}
        for i in range(len(feats) - 2, -1, -1):
            x = F.interpolate(x, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[i](torch.cat([x, feats[i]], 1))
            out[self.strides[i]] = x
        return out


NECKS: dict[str, type[nn.Module]] = {"fpnpan": FPNPAN, "unet": UNetDecoder}
