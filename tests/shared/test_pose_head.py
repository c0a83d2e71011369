"""The core pose head (boxes + keypoints, ultralytics' Pose and v8 pose loss) in the multi-task model."""

import torch

from polyhead.heads import HEADS, PoseHead
from polyhead.model import build_model

CONFIG = {
    "encoder": "lcnet_100",
    "pretrained": False,
    "neck_channels": 32,
    "strides": [8, 16, 32],
    "heads": {"faces": {"type": "pose", "num_classes": 1, "num_points": 5, "kobj_gain": 0.0}},
}


def _scene(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright square on a dark 128x128 image; rows (cls, cx, cy, w, h, 5 x (x, y, v)) normalised."""
    g = torch.Generator().manual_seed(seed)
    side = int(torch.randint(24, 48, (1,), generator=g))
    x0, y0 = (int(v) for v in torch.randint(0, 128 - side, (2,), generator=g))
    img = torch.full((3, 128, 128), -1.0)
    img[:, y0 : y0 + side, x0 : x0 + side] = 1.0
    pts = torch.tensor([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    pts = torch.stack([(x0 + pts[:, 0] * side) / 128, (y0 + pts[:, 1] * side) / 128, torch.ones(5)], 1)
    box = torch.tensor([0, (x0 + side / 2) / 128, (y0 + side / 2) / 128, side / 128, side / 128])
    return img, torch.cat([box, pts.flatten()])[None]


def _batch(seeds) -> tuple[torch.Tensor, torch.Tensor]:
    imgs, rows = [], []
    for i, s in enumerate(seeds):
        img, row = _scene(s)
        imgs.append(img)
        rows.append(torch.cat([torch.full((1, 1), float(i)), row], 1))
    return torch.stack(imgs), torch.cat(rows)


def test_pose_is_a_registered_head_with_the_decoded_layout():
    assert HEADS["pose"] is PoseHead
    model = build_model(CONFIG).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 128, 96))["faces"]
    anchors = sum((128 // s) * (96 // s) for s in (8, 16, 32))
    assert out.shape == (2, 4 + 1 + 15, anchors)
    vis = out[:, 5 + 2 :: 3]
    assert float(vis.min()) >= 0 and float(vis.max()) <= 1, "visibility is a probability"


def test_box_only_rows_train_the_boxes_and_leave_the_points_alone():
    """With the visibility term off (kobj_gain 0, as for faces) a box-only set never moves the point branch."""
    torch.manual_seed(0)
    model = build_model(CONFIG).train()
    head = model.heads["faces"]
    x, rows = _batch([1, 2])
    pred = model(x)["faces"]
    box_only = head.loss(pred, rows[:, :6], torch.tensor([True, True]))
    box_only.backward()
    kpt_grad = sum(float(p.grad.abs().sum()) for p in head.detect.cv4.parameters() if p.grad is not None)
    box_grad = sum(float(p.grad.abs().sum()) for p in head.detect.cv2.parameters() if p.grad is not None)
    assert torch.isfinite(box_only) and box_grad > 0 and kpt_grad == 0
    model.zero_grad()
    full = head.loss(model(x)["faces"], rows, torch.tensor([True, True]))
    full.backward()
    assert (
        float(full) > float(box_only) * 0.5
        and sum(float(p.grad.abs().sum()) for p in head.detect.cv4.parameters() if p.grad is not None) > 0
    )
    empty = head.loss(model(x)["faces"], rows, torch.tensor([False, False]))
    assert float(empty) == 0.0


def test_a_few_steps_learn_the_square_and_its_points():
    torch.manual_seed(0)
    model = build_model(CONFIG)
    head = model.heads["faces"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    present = torch.ones(8, dtype=torch.bool)
    losses = []
    for step in range(60):
        x, rows = _batch(range(step * 8, step * 8 + 8))
        model.train()
        loss = head.loss(model(x)["faces"], rows, present)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10, losses[::10]
    model.eval()
    x, rows = _batch([10_000])
    with torch.no_grad():
        out = model(x)["faces"][0]
    best = int(out[4].argmax())
    cx, cy = float(out[0, best]) / 128, float(out[1, best]) / 128
    assert abs(cx - float(rows[0, 2])) < 0.1 and abs(cy - float(rows[0, 3])) < 0.1
