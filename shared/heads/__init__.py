"""Task heads on the shared neck, and the registry that builds them from a config."""

from __future__ import annotations

from polyhead.heads.base import Head
from polyhead.heads.classification import ClassificationHead, DistributionHead
from polyhead.heads.detection import DetectionHead
from polyhead.heads.keypoints import KeypointHead
from polyhead.heads.pose import PoseHead
from polyhead.heads.segmentation import SegmentationHead

HEADS: dict[str, type[Head]] = {
    "detect": DetectionHead,
    "segment": SegmentationHead,
    "classify": ClassificationHead,
    "distribution": DistributionHead,
    "keypoints": KeypointHead,
    "pose": PoseHead,
}


def register_head(kind: str, cls: type[Head]) -> type[Head]:
    """Make an app-specific head buildable from a config (``{"type": kind, ...}``)."""
    HEADS[kind] = cls
    return cls


__all__ = [
    "HEADS",
    "ClassificationHead",
    "DetectionHead",
    "DistributionHead",
    "Head",
    "KeypointHead",
    "PoseHead",
    "SegmentationHead",
    "register_head",
]
