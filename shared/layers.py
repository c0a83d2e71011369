"""Small building blocks shared by necks and heads."""

from __future__ import annotations

from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv2d + BatchNorm + SiLU, 'same' padding."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.SiLU(inplace=True),
        )


class DWSeparable(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1, each with BatchNorm + SiLU: a cheap 3x3 conv."""

    def __init__(self, c_in: int, c_out: int, s: int = 1):
        super().__init__(ConvBNAct(c_in, c_in, 3, s, groups=c_in), ConvBNAct(c_in, c_out, 1))
