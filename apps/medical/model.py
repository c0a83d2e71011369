"""The medical network: shared encoder, a U-Net decoder, a mask head at stride 2 and an image-level
diagnosis head on the deepest features (Cerberus / dual-head style). Either head may be left out.

>>> model = build_medical_model(mask_classes=2, diagnosis_classes=3).eval()
>>> out = model(torch.zeros(1, 3, 128, 128))
>>> tuple(out["mask"].shape), tuple(out["diagnosis"].shape)
((1, 2, 128, 128), (1, 3))
"""

from __future__ import annotations

import torch  # noqa: F401  (used in the doctest)

from polyhead.encoders import DEFAULT_ENCODER
from polyhead.model import MultiTaskModel, build_model


def medical_config(
    encoder: str = DEFAULT_ENCODER,
    mask_classes: int = 2,
    diagnosis_classes: int = 0,
    neck_channels: int = 48,
    dice_weight: float = 1.0,
    mask_stride: int = 2,
    image_heads: dict[str, int] | None = None,
    lovasz_weight: float = 0.0,
) -> dict:
    """Architecture config (stored in the model card). ``0`` classes drops that head; ``image_heads`` adds
    further image-level heads beside ``diagnosis`` (``{"melanoma": 2}``), built the same way.

    ``mask_stride`` 2 adds a stride-2 decoder level for thin structures (vessels, membranes); 1 adds a
    narrow full-resolution level over the image itself as well (one-pixel vessels); 4 is cheaper and
    enough for blob-like targets (skin lesions, polyps)."""
    if mask_stride not in (1, 2, 4):
        raise ValueError(f"mask_stride must be 1, 2 or 4, not {mask_stride}")
    heads: dict = {}
    if mask_classes:
        heads["mask"] = {
            "type": "segment",
            "num_classes": mask_classes,
            "in_stride": mask_stride,
            "mid_channels": 16 if mask_stride == 1 else 32,
            "dice_weight": dice_weight,
            **({"lovasz_weight": lovasz_weight} if lovasz_weight else {}),
        }
    for name, n in {"diagnosis": diagnosis_classes, **(image_heads or {})}.items():
        if n:
            heads[name] = {"type": "classify", "num_outputs": n, "in_stride": 32, "dropout": 0.3}
    if not heads:
        raise ValueError("a medical model needs a mask head, a diagnosis head or both")
    return {
        "encoder": encoder,
        "neck": "smp_unet",
        "strides": [s for s in (1, 2, 4, 8, 16, 32) if s >= mask_stride],
        "neck_channels": neck_channels,
        "heads": heads,
    }


def build_medical_model(
    encoder: str = DEFAULT_ENCODER,
    mask_classes: int = 2,
    diagnosis_classes: int = 0,
    neck_channels: int = 48,
    mask_stride: int = 2,
    image_heads: dict[str, int] | None = None,
    dice_weight: float = 1.0,
    lovasz_weight: float = 0.0,
) -> MultiTaskModel:
    """Build the medical model; see :func:`medical_config`."""
    return build_model(
        medical_config(
            encoder,
            mask_classes,
            diagnosis_classes,
            neck_channels,
            dice_weight=dice_weight,
            mask_stride=mask_stride,
            image_heads=image_heads,
            lovasz_weight=lovasz_weight,
        )
    )
