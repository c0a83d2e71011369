"""Boxes with keypoints in one pass: ultralytics' anchor-free Pose head and its v8 pose loss.

The YOLOv8-pose idea (and the single-shot face detectors' YuNet / RetinaFace / SCRFD: a box, a score and
five points per anchor): the detection head of :mod:`polyhead.heads.detection` plus a keypoint branch
per level. Keypoints are regressed relative to their anchor; a visibility flag of 0 (a face set without
landmarks) leaves the point out of the loss, so box-only and landmark data train one head.

>>> feats = {s: torch.zeros(1, 32, 64 // s, 64 // s) for s in (8, 16, 32)}
>>> PoseHead(32, num_classes=1, num_points=5).eval()(feats, (64, 64)).shape
torch.Size([1, 20, 84])
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from ultralytics.nn.modules import Pose
from ultralytics.utils.loss import v8PoseLoss

from polyhead.heads.detection import DetectionHead, _LossContext


class _PoseContext(_LossContext):
    """v8PoseLoss also reads ``kpt_oks_sigmas`` from the model (OKS spread per point)."""

    def __init__(self, detect: Pose, hyp: SimpleNamespace, sigmas: list[float] | None):
        super().__init__(detect, hyp)
        if sigmas is not None:
            self.kpt_oks_sigmas = sigmas


class PoseHead(DetectionHead):
    """Boxes + ``num_points`` keypoints on neck levels 8, 16, 32.

    Training output: ultralytics' raw dict (``boxes``, ``scores``, ``kpts``, ``feats``). Inference output:
    ``(B, 4 + nc + 3K, anchors)``: centre-xywh boxes in input pixels, class probabilities, then per point
    x, y (input pixels) and a visibility probability. Targets are rows ``(batch_idx, cls, cx, cy, w, h,
    x1, y1, v1, ..., xK, yK, vK)`` normalised to 0..1 (v = 0: the point is not labelled).

    ``kobj_gain`` trains the visibility probability against the labels' flags. With box-only data mixed in
    (v = 0 everywhere on those faces) it would learn "invisible" from them; set it to 0 there, and the
    point branch then learns from labelled points only.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_points: int,
        strides=(8, 16, 32),
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        pose_gain: float = 12.0,
        kobj_gain: float = 1.0,
        reg_max: int = 16,
        sigmas: list[float] | None = None,
    ):
        self.num_points = int(num_points)
        super().__init__(in_channels, num_classes, strides, box_gain, cls_gain, dfl_gain, reg_max)
        self._hyp.pose, self._hyp.kobj = pose_gain, kobj_gain
        self.sigmas = list(sigmas) if sigmas is not None else None

    def _make_detect(self, num_classes: int, reg_max: int, channels: tuple[int, ...]) -> Pose:
        return Pose(nc=num_classes, kpt_shape=(self.num_points, 3), reg_max=reg_max, ch=channels)

    def _make_criterion(self) -> v8PoseLoss:
        return v8PoseLoss(_PoseContext(self.detect, self._hyp, self.sigmas))

    def _batch(self, rows: torch.Tensor, new_index: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = super()._batch(rows, new_index)
        k = self.num_points
        if rows.shape[1] >= 6 + 3 * k:
            batch["keypoints"] = rows[:, 6 : 6 + 3 * k].reshape(-1, k, 3)
        else:  # box-only rows (an image without objects gives a (0, 6) block): no point is labelled
            batch["keypoints"] = rows.new_zeros(len(rows), k, 3)
        return batch
