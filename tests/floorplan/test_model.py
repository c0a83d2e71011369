"""Model: output shapes, class-balanced two-task loss with gradients everywhere, save/rebuild from the card."""

from __future__ import annotations

import numpy as np
import torch

from polyhead.apps.floorplan.metrics import FloorplanMetrics, SegMetrics
from polyhead.apps.floorplan.model import (
    TASK,
    balanced_ce,
    build_floorplan_model,
    frequency_weights,
    split_logits,
    task_balanced,
)
from polyhead.weights import load_model, save_weights


def _tiny():
    return build_floorplan_model("lcnet_100", neck_channels=24, mid_channels=16, boundary_weights=[0.2, 1, 3])


def test_forward_shapes_and_backward():
    torch.manual_seed(0)
    model = _tiny().train()
    x = torch.randn(2, 3, 96, 128)
    out = model(x)[TASK]
    assert out.shape == (2, 10, 96, 128)
    b, r = split_logits(out)
    assert b.shape[1] == 3 and r.shape[1] == 7
    target = torch.stack([torch.randint(0, 3, (2, 96, 128)), torch.randint(0, 7, (2, 96, 128))], 1)
    target[0, :, :4] = 255  # ignored pixels
    loss = model.heads[TASK].loss(out, target, torch.tensor([True, True]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    head = model.heads[TASK]
    for part in (model.encoder, head.b_lateral, head.r_lateral, head.attention, head.b_out, head.r_out):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    # a batch without labels is a graph-connected zero
    zero = model.heads[TASK].loss(out, target, torch.tensor([False, False]))
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_attention_uses_boundary_features():
    """Room logits change when only the boundary branch's weights change: the guidance is wired in."""
    torch.manual_seed(1)
    model = _tiny().eval()
    x = torch.randn(1, 3, 64, 64)
    before = split_logits(model(x)[TASK])[1].clone()
    with torch.no_grad():
        for p in model.heads[TASK].b_refine.parameters():
            p.add_(0.5)
    after = split_logits(model(x)[TASK])[1]
    assert not torch.allclose(before, after)


def test_loss_weights():
    assert frequency_weights([800, 150, 50]).tolist() == [0.1875, 1.0, 3.0]
    assert frequency_weights([0, 10, 10]).tolist()[0] == 10.0
    logits = torch.zeros(1, 3, 4, 4, requires_grad=True)
    assert torch.isfinite(balanced_ce(logits, torch.zeros(1, 4, 4, dtype=torch.long), None))
    lb, lr = torch.tensor(1.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    total = task_balanced(lb, lr)
    total.backward()
    assert abs(float(total.detach()) - 1.5) < 1e-6
    assert abs(float(lb.grad) - 0.75) < 1e-6 and abs(float(lr.grad) - 0.25) < 1e-6


def test_save_and_rebuild_from_card(tmp_path):
    model = _tiny().eval()
    path = save_weights(model, tmp_path / "fp.safetensors", {"app": "floorplan", "input_size": [64, 64]})
    rebuilt, card = load_model(path)
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(model(x)[TASK], rebuilt(x)[TASK], atol=1e-5)
    assert card["model"]["heads"][TASK]["boundary_weights"] == [0.2, 1, 3]


def test_metrics_accumulate_over_the_set():
    m = SegMetrics(["bg", "wall", "door"])
    m.update(np.array([0, 1, 1, 2]), np.array([0, 1, 0, 2]))
    m.update(np.array([0, 0]), np.array([0, 255]))  # 255 ignored
    r = m.aggregate()
    assert r["overall_acc"] == 0.8 and r["pixels"] == 5
    assert r["class_acc"] == {"bg": 0.6667, "wall": 1.0, "door": 1.0}
    assert r["iou"]["wall"] == 0.5 and r["miou"] == round((2 / 3 + 0.5 + 1) / 3, 4)
    fm = FloorplanMetrics()
    fm.update(np.zeros((2, 2)), np.ones((2, 2)), np.zeros((2, 2)), np.ones((2, 2)))
    out = fm.aggregate()
    assert out["boundary_acc"] == 1.0 and out["room_acc"] == 1.0 and out["score"] == 1.0


def test_paper_nine_class_metric_paints_boundaries_over_rooms():
    fm = FloorplanMetrics()
    room_gt = np.array([[3, 3, 4, 4], [3, 3, 4, 4]])
    boundary_gt = np.array([[0, 1, 1, 0], [0, 2, 2, 0]])
    room_pred = np.array([[3, 4, 4, 4], [3, 3, 3, 4]])  # the walls hide two room errors, one shows
    boundary_pred = np.array([[0, 1, 1, 0], [0, 2, 0, 0]])
    fm.update(boundary_pred, room_pred, boundary_gt, room_gt)
    out = fm.aggregate()
    # 9-class truth: [3 wall wall 4 / 3 door door 4]; prediction: [3 wall wall 4 / 3 door 3 4]: 7 of 8
    assert out["paper_overall_acc"] == 0.875
    assert out["paper_acc/door_window"] == 0.5 and out["paper_acc/wall"] == 1.0
    assert out["paper_acc/living_kitchen_dining"] == 1.0 and out["paper_acc/bedroom"] == 1.0
    assert out["paper_mean_class_acc"] == round((1 + 1 + 1 + 0.5) / 4, 4)  # classes present, background out
