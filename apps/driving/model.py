"""The driving network: shared encoder + FPN/PAN neck, a detection head and two segmentation heads.

>>> model = build_driving_model()
>>> sorted(model.eval()(torch.zeros(1, 3, 384, 640)))
['det', 'drivable', 'lane']
"""

from __future__ import annotations

import torch  # noqa: F401  (used in the doctest)

from polyhead.encoders import DEFAULT_ENCODER
from polyhead.model import MultiTaskModel, build_model

CLASSES = ["car", "pedestrian", "cyclist"]
INPUT_SIZE = (384, 640)  # (h, w); any multiple of 32 works
TASKS = ("det", "drivable", "lane")


def driving_config(encoder: str = DEFAULT_ENCODER, num_classes: int = len(CLASSES), neck_channels: int = 48) -> dict:
    """Architecture config: the default is the ImageNet EfficientNet-Lite0 encoder with a 48-channel neck.

    Drivable area reads the stride-8 level (large regions); lane lines read stride 4 (thin lines)
    and weight the rare lane class up; at inference both return logits at their stride and
    post-processing upsamples them (see :func:`polyhead.heads.segmentation.foreground`). Boxes use 8
    distribution bins per side (ultralytics' default is 16): half the box branch's width, each side still
    reaching 8 strides from its anchor.
    """
    return {
        "encoder": encoder,
        "neck_channels": neck_channels,
        "heads": {
            "det": {"type": "detect", "num_classes": num_classes, "reg_max": 8},
            "drivable": {
                "type": "segment",
                "num_classes": 2,
                "in_stride": 8,
                "mid_channels": 32,
                "eval_full_resolution": False,
            },
            "lane": {
                "type": "segment",
                "num_classes": 2,
                "in_stride": 4,
                "mid_channels": 16,
                "class_weights": [1.0, 4.0],
                "dice_weight": 1.0,
                "eval_full_resolution": False,
            },
        },
    }


def build_driving_model(
    encoder: str = DEFAULT_ENCODER, num_classes: int = len(CLASSES), tasks: tuple[str, ...] = TASKS
) -> MultiTaskModel:
    """The driving model with a subset of ``det``, ``drivable``, ``lane`` (single-task models for benchmarks)."""
    cfg = driving_config(encoder, num_classes)
    cfg["heads"] = {t: h for t, h in cfg["heads"].items() if t in tasks}
    return build_model(cfg)
