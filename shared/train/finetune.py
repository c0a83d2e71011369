"""Where a training run starts: ImageNet encoder, a local encoder file, or earlier weights loaded
tolerantly (every tensor whose name and shape match; the rest reported), plus the fine-tuning
controls the Trainer applies (encoder learning-rate factor, frozen encoder epochs, frozen BatchNorm).

>>> model = build_driving_model("efficientnet_lite0", num_classes=5)             # doctest: +SKIP
>>> report = load_matching(model, load_state("weights/driving.safetensors"), "driving")  # doctest: +SKIP
>>> print(report.summary())                                                   # doctest: +SKIP
driving: loaded 412 of 420 tensors; 8 skipped (shape differs: heads.det.cv3.0.2.weight ...)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import torch
from torch import nn

from polyhead.encoders import describe_init, encoder_spec, imagenet_state, read_weights_file
from polyhead.errors import InputError
from polyhead.model import MultiTaskModel


@dataclass
class LoadReport:
    """What :func:`load_matching` did: tensors loaded, skipped (with why) and left at their init."""

    origin: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason) of the file's tensors
    untouched: list[str] = field(default_factory=list)  # the model's tensors the file did not provide

    def summary(self, show: int = 3) -> str:
        total = len(self.loaded) + len(self.untouched)
        line = f"{self.origin}: loaded {len(self.loaded)} of {total} tensors"
        if self.skipped:
            first = ", ".join(f"{k} ({why})" for k, why in self.skipped[:show])
            line += f"; skipped {len(self.skipped)} from the file: {first}{' ...' if len(self.skipped) > show else ''}"
        if self.untouched:
            line += f"; {len(self.untouched)} keep their initial values (e.g. {self.untouched[0]})"
        return line

    def to_card(self) -> dict:
        return {
            "from": self.origin,
            "loaded": len(self.loaded),
            "skipped": [f"{k}: {why}" for k, why in self.skipped],
            "untouched": len(self.untouched),
        }


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> LoadReport:
    """Load every tensor of ``state`` whose name and shape match ``model``'s; report the rest.

    This is how a model with a new class list (a new detection or segmentation head) starts from
    shipped weights: the encoder and neck load, the mismatched head tensors keep their fresh init.
    Raises :class:`InputError` when nothing at all matches (the file is for another architecture).
    """
    own = model.state_dict()
    report = LoadReport(origin)
    usable = {}
    for key, value in state.items():
        if key not in own:
            report.skipped.append((key, "not in this model"))
        elif tuple(value.shape) != tuple(own[key].shape):
            report.skipped.append((key, f"shape {tuple(value.shape)} vs {tuple(own[key].shape)}"))
        else:
            usable[key] = value
    if not usable:
        raise InputError(origin, "no tensor matches this model's architecture (wrong app or encoder?)")
    model.load_state_dict(usable, strict=False)
    report.loaded = list(usable)
    report.untouched = [k for k in own if k not in usable]
    return report


# ---------------------------------------------------------------- CLI
def add_init_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` options that say where a run starts and how the encoder is fine-tuned."""
    p.add_argument(
        "--no-pretrained",
        action="store_true",
        help="start the encoder from random weights instead of ImageNet",
    )
    p.add_argument(
        "--encoder-weights",
        metavar="FILE",
        help="start the encoder from this local file (.safetensors, or a .pth state dict); any timm encoder",
    )
    p.add_argument(
        "--encoder-lr",
        type=float,
        default=None,
        metavar="FACTOR",
        help="encoder learning rate as a factor of --lr (default 0.3 for a pretrained encoder, 1 from scratch)",
    )
    p.add_argument(
        "--freeze-encoder",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="train only the neck and heads for the first EPOCHS epochs",
    )
    p.add_argument(
        "--freeze-bn",
        action="store_true",
        help="keep the encoder's BatchNorm statistics fixed (helps with very small batches)",
    )


#: encoder learning rate relative to the heads' when the encoder starts pretrained (measured in docs/pretrained.md)
PRETRAINED_ENCODER_LR = 0.3


def initialise(model: MultiTaskModel, args: argparse.Namespace) -> dict:
    """Set ``model``'s starting weights from the ``train`` options; returns the model-card fields.

    Order: the encoder from ImageNet (default), or ``--encoder-weights``, or random
    (``--no-pretrained``); then ``--weights`` on top, loaded tolerantly with a printed report.
    """
    encoder = model.encoder
    weights = getattr(args, "weights", None)
    enc_file = getattr(args, "encoder_weights", None)
    if enc_file:
        encoder.load_backbone(read_weights_file(enc_file), str(enc_file))
    elif not getattr(args, "no_pretrained", False):
        if encoder_spec(encoder.name).imagenet is not None:
            encoder.load_backbone(imagenet_state(encoder.name), "imagenet")
        elif not weights:
            raise InputError(
                None,
                f"encoder '{encoder.name}' has no offline ImageNet weights: use --encoder efficientnet_lite0 "
                "(or lite1/lite2), --encoder-weights FILE, or --no-pretrained",
            )
    card: dict = {"encoder_init": describe_init(encoder)}
    if weights:
        from polyhead.weights import load_state

        report = load_matching(model, load_state(weights, getattr(args, "trust_pickle", False)), str(weights))
        print(report.summary())
        card["fine_tuned_from"] = report.to_card()
    return card


def encoder_lr_factor(args: argparse.Namespace, card: dict) -> float:
    """``--encoder-lr``, or the default for how the encoder started."""
    value = getattr(args, "encoder_lr", None)
    if value is not None:
        return float(value)
    started = card.get("encoder_init", {}).get("init", "random")
    return PRETRAINED_ENCODER_LR if started != "random" or "fine_tuned_from" in card else 1.0


def fine_tune_overrides(args: argparse.Namespace, card: dict) -> dict:
    """The TrainConfig fields these options set (for :func:`polyhead.train.config_from_args` overrides)."""
    return {
        "encoder_lr": encoder_lr_factor(args, card),
        "freeze_encoder_epochs": int(getattr(args, "freeze_encoder", 0) or 0),
        "freeze_bn": bool(getattr(args, "freeze_bn", False)),
    }


def set_encoder_trainable(model: MultiTaskModel, trainable: bool) -> None:
    """Freeze or unfreeze the encoder's parameters (frozen: no gradients, BatchNorm in eval mode)."""
    for p in model.encoder.parameters():
        p.requires_grad_(trainable)


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics stay as loaded)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
