"""Necks: FPN + PAN (top-down context for segmentation, bottom-up paths for detection) and
segmentation-models-pytorch's U-Net decoder (concatenated skips, for masks of thin structures).

>>> neck = FPNPAN([24, 40, 112, 960], channels=64)
>>> out = neck([torch.zeros(1, c, 64 // s, 64 // s) for c, s in zip([24, 40, 112, 960], (4, 8, 16, 32))])
>>> sorted(out)
[4, 8, 16, 32]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyhead.layers import ConvBNAct, DWSeparable


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
    """The earlier hand-written U-Net decoder, kept so weights trained with it (``"neck": "unet"`` in their
    card) still load; new models use :class:`SmpUnetDecoder`. From the deepest level up: upsample,
    concatenate the skip, two 3x3 convs.

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


class SmpUnetDecoder(nn.Module):
    """segmentation-models-pytorch's U-Net decoder, every level returned (not only the finest).

    smp's ``UnetDecoderBlock`` (upsample, concatenate the skip, two 3x3 conv + BN + ReLU, optional
    scSE attention) runs from the deepest level up; each block's output is kept, so a mask head reads
    stride 1, 2 or 4 and an image-level head reads the projected deepest level. With stride 1 in
    ``strides`` the encoder passes the image itself as the last skip and the full-resolution block is
    ``full_res_channels`` wide (16, smp's default last width), so thin structures get pixel-exact edges at a
    bounded cost. Use this for new models;
    ``"unet"`` (:class:`UNetDecoder`) stays only so weights trained with it keep loading.

    >>> dec = SmpUnetDecoder([16, 24, 40, 112, 320], channels=32, strides=(2, 4, 8, 16, 32))
    >>> out = dec([torch.zeros(1, c, 64 // s, 64 // s) for c, s in zip([16, 24, 40, 112, 320], (2, 4, 8, 16, 32))])
    >>> [tuple(out[s].shape[1:]) for s in (2, 32)]
    [(32, 32, 32), (32, 2, 2)]
    """

    def __init__(
        self,
        in_channels: list[int],
        channels: int = 64,
        strides=(4, 8, 16, 32),
        attention: str | None = None,
        full_res_channels: int = 16,
    ):
        super().__init__()
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        self.strides = tuple(strides)
        n = len(in_channels) - 1  # one block per skip level
        widths = [channels] * n
        if self.strides[0] == 1:  # the full-resolution block (the image as its skip) stays narrow, as in smp
            widths[-1] = full_res_channels
        #: width of each returned level (heads read theirs)
        self.level_channels = dict(zip(self.strides[::-1], [channels, *widths], strict=True))
        # smp drops the first entry (its stride-1 input level); 3 stands in for it
        self.decoder = UnetDecoder(
            encoder_channels=[3, *in_channels],
            decoder_channels=widths,
            n_blocks=n,
            attention_type=attention,
            interpolation_mode="bilinear",
        )
        self.bottleneck = ConvBNAct(in_channels[-1], channels, 1)

    def forward(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        x = self.decoder.center(feats[-1])
        out = {self.strides[-1]: self.bottleneck(feats[-1])}
        for i, block in enumerate(self.decoder.blocks):
            skip = feats[-2 - i]
            x = block(x, skip.shape[-2], skip.shape[-1], skip_connection=skip)
            out[self.strides[-2 - i]] = x
        return out


class LastLevel(nn.Module):
    """The deepest encoder level alone, projected to ``channels`` by a 1x1 conv + BN + activation: the neck
    of an image-level model (a classifier or regressor on a crop), like the 1x1 "head" convolution of
    EfficientNet / MobileNet before their pooling. Build it with ``"strides": [32]`` so the encoder
    computes no other output.

    >>> neck = LastLevel([320], channels=256, strides=(32,))
    >>> tuple(neck([torch.zeros(2, 320, 4, 4)])[32].shape)
    (2, 256, 4, 4)
    """

    def __init__(self, in_channels: list[int], channels: int = 256, strides=(32,)):
        super().__init__()
        self.strides = tuple(strides)
        self.channels = channels
        self.project = ConvBNAct(in_channels[-1], channels, 1)

    def forward(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        return {self.strides[-1]: self.project(feats[-1])}


NECKS: dict[str, type[nn.Module]] = {
    "fpnpan": FPNPAN,
    "unet": UNetDecoder,
    "smp_unet": SmpUnetDecoder,
    "last": LastLevel,
}
