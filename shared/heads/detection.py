"""Detection head: ultralytics' anchor-free Detect, its v8 box/cls/DFL loss and its NMS."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from ultralytics.nn.modules import Detect
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.nms import non_max_suppression

from polyhead.heads.base import Head, zero_loss


class _LossContext:
    """The two attributes v8DetectionLoss reads from a model, without wrapping our model."""

    def __init__(self, detect: Detect, hyp: SimpleNamespace):
        self.model = [detect]
        self.args = hyp

    def parameters(self):
        return self.model[0].parameters()


class DetectionHead(Head):
    """Boxes on neck levels 8, 16, 32.

    ``reg_max``: distribution-focal bins per box side (ultralytics' default 16). Each side reaches at most
    ``reg_max`` strides from its anchor; 8 bins halve the box branch's width (and its cost) and still
    reach 256 px at stride 32.

    Training output: ultralytics' raw dict (``boxes``, ``scores``, ``feats``). Inference output:
    ``(B, 4 + nc, anchors)`` with centre-xywh boxes in input pixels and class probabilities, the
    layout :func:`nms` expects. Targets are rows ``(batch_idx, cls, cx, cy, w, h)`` normalised to 0..1.
    """

    target_kind = "boxes"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        strides=(8, 16, 32),
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        reg_max: int = 16,
    ):
        super().__init__()
        self.strides = tuple(strides)
        self.num_classes = num_classes
        self.detect = self._make_detect(num_classes, reg_max, tuple(in_channels for _ in self.strides))
        self.detect.stride = torch.tensor(self.strides, dtype=torch.float32)
        self.detect.export = True  # eval returns only the decoded tensor (also what ONNX needs)
        self.detect.bias_init()
        self._hyp = SimpleNamespace(box=box_gain, cls=cls_gain, dfl=dfl_gain)
        self._criterion: v8DetectionLoss | None = None

    def _make_detect(self, num_classes: int, reg_max: int, channels: tuple[int, ...]) -> Detect:
        return Detect(nc=num_classes, reg_max=reg_max, ch=channels)

    def _make_criterion(self) -> v8DetectionLoss:
        return v8DetectionLoss(_LossContext(self.detect, self._hyp))

    def _batch(self, rows: torch.Tensor, new_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """ultralytics' target dict from our rows ``(batch_idx, cls, cx, cy, w, h, ...)`` of the kept images."""
        return {
            "batch_idx": new_index[rows[:, 0].long()].float() if len(rows) else rows[:, 0],
            "cls": rows[:, 1:2],
            "bboxes": rows[:, 2:6],
        }

    def forward(self, feats: dict[int, torch.Tensor], image_size: tuple[int, int]):
        return self.detect([feats[s] for s in self.strides])

    def _criterion_for(self, device: torch.device) -> v8DetectionLoss:
        if self._criterion is None or self._criterion.device != device:
            self._criterion = self._make_criterion()
        return self._criterion

    def loss(self, pred: dict, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if not bool(present.any()):
            return zero_loss(list(pred["feats"]) + [v for k, v in pred.items() if k != "feats"])
        keep = present.nonzero().flatten()
        sub = {k: v[keep] for k, v in pred.items() if k != "feats"}
        sub["feats"] = [f[keep] for f in pred["feats"]]
        new_index = torch.cumsum(present.long(), 0) - 1  # old batch index -> index in the subset
        rows = target[present[target[:, 0].long()]] if len(target) else target
        loss, _ = self._criterion_for(sub["boxes"].device)(sub, self._batch(rows, new_index))
        return loss.sum() / len(keep)


def nms(pred: torch.Tensor, conf: float = 0.25, iou: float = 0.45, max_det: int = 300) -> list[torch.Tensor]:
    """Per-image detections ``(n, 6)``: x1, y1, x2, y2, score, class (input pixels)."""
    return non_max_suppression(pred, conf_thres=conf, iou_thres=iou, max_det=max_det)
