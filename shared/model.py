"""MultiTaskModel: one encoder, one neck, a dict of named heads; built from a plain config.

>>> cfg = {"encoder": "mobilenetv3_small_100", "neck_channels": 32,
...        "heads": {"seg": {"type": "segment", "num_classes": 2}}}
>>> model = build_model(cfg).eval()
>>> model(torch.zeros(1, 3, 64, 64))["seg"].shape
torch.Size([1, 2, 64, 64])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from polyhead.encoders import create_encoder, normalisation
from polyhead.heads import HEADS, Head
from polyhead.necks import NECKS


class MultiTaskModel(nn.Module):
    """Encoder -> neck -> heads. ``forward(x, tasks)`` returns ``{task: output}``.

    ``tasks`` (or the ``active_tasks`` attribute) switches heads off at inference to save time.
    """

    def __init__(self, encoder: nn.Module, neck: nn.Module, heads: dict[str, Head], config: dict | None = None):
        super().__init__()
        self.encoder = encoder
        self.neck = neck
        self.heads = nn.ModuleDict(heads)
        self.config = copy.deepcopy(config or {})
        self.active_tasks: list[str] = list(heads)

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def forward_features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.neck(self.encoder(x))

    def forward(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        feats = self.forward_features(x)
        size = tuple(x.shape[-2:])
        wanted = self.active_tasks if tasks is None else tasks
        return {t: self.heads[t](feats, size) for t in wanted}

    def compute_losses(self, outputs: dict, targets: dict, present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-task losses; a task absent from every sample of the batch gives a graph-connected zero."""
        return {t: self.heads[t].loss(outputs[t], targets[t], present[t]) for t in outputs}

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` on 0..1 RGB that this model's inputs are normalised with (from its config)."""
        norm = self.config.get("normalisation") or normalisation(self.config.get("encoder", "resnet18"))
        return tuple(norm["mean"]), tuple(norm["std"])

    def example_input(self, side: int = 64) -> torch.Tensor:
        """A seeded random batch of one ``side`` x ``side`` image with this model's input channels (for
        checks such as :func:`polyhead.bn_fold.fold_batchnorm`'s)."""
        g = torch.Generator().manual_seed(0)
        return torch.randn(1, int(self.config.get("in_chans", 3)), side, side, generator=g)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for p in list(self.encoder.parameters()) + list(self.neck.parameters()) if p.requires_grad]


def build_model(config: dict, pretrained: bool = False, encoder_weights: str | None = None) -> MultiTaskModel:
    """Build a :class:`MultiTaskModel` from ``{"encoder", "neck_channels", "heads": {task: {"type", ...}}}``.

    Optional keys: ``"neck"`` (``"fpnpan"``, the default, ``"unet"`` or ``"smp_unet"``), ``"strides"``
    (add 2 for a stride-2 level), ``"in_chans"``, ``"normalisation"`` (``{"mean", "std"}`` on 0..1 RGB;
    default: what the encoder's weights expect). The same config is stored in the model card, so shipped
    weights rebuild their own architecture and inference reads the normalisation from it.
    ``pretrained`` starts the encoder from ImageNet, ``encoder_weights`` from a local file.

    >>> build_model({"encoder": "efficientnet_lite0", "heads": {}}).normalisation[1][0] == 128 / 255
    True
    """
    cfg = copy.deepcopy(config)
    cfg.setdefault("normalisation", normalisation(cfg["encoder"]))
    strides = tuple(cfg.get("strides", (4, 8, 16, 32)))
    encoder = create_encoder(
        cfg["encoder"],
        weights=encoder_weights,
        in_chans=cfg.get("in_chans", 3),
        strides=strides,
        pretrained=pretrained,
    )
    channels = int(cfg.get("neck_channels", 64))
    kind = cfg.get("neck", "fpnpan")
    if kind not in NECKS:
        raise ValueError(f"unknown neck '{kind}'; known: {', '.join(NECKS)}")
    neck = NECKS[kind](encoder.channels, channels=channels, strides=strides)
    heads = {}
    for task, spec in cfg["heads"].items():
        spec = dict(spec)
        kind = spec.pop("type")
        if kind not in HEADS:
            raise ValueError(f"head '{task}': unknown type '{kind}'; known: {', '.join(HEADS)}")
        width = getattr(neck, "level_channels", {}).get(spec.get("in_stride"), channels)
        heads[task] = HEADS[kind](width, **spec)
    return MultiTaskModel(encoder, neck, heads, config=cfg)
