import json

import numpy as np
import pytest

from polyhead.apps.driving.data import DatasetSpec, DrivingDataset, load_spec, read_boxes
from polyhead.apps.driving.metrics import DetectionAP, DrivingMetrics
from polyhead.errors import InputError
from polyhead.train.data import collate_multitask

KINDS = {"det": "boxes", "drivable": "dense", "lane": "dense"}


def test_partial_labels_become_presence_masks(synthetic_dataset):
    ds = DrivingDataset(load_spec(synthetic_dataset), "train", imgsz=(128, 192))
    batch = collate_multitask([ds[i] for i in range(6)], KINDS)
    assert batch["image"].shape == (6, 3, 128, 192)
    assert batch["present"]["lane"].tolist() == [True, False, True, True, False, True]
    assert batch["present"]["det"].tolist() == [True, True, False, True, True, True]
    assert batch["targets"]["drivable"].shape == (6, 128, 192)
    det = batch["targets"]["det"]
    assert det.shape[1] == 6 and (det[:, 2:] >= 0).all() and (det[:, 2:] <= 1).all()
    assert 2 not in det[:, 0].tolist()  # sample 2 has no det file, so no rows


def test_augmented_samples_keep_boxes_inside(synthetic_dataset):
    ds = DrivingDataset(load_spec(synthetic_dataset), "train", imgsz=(128, 192), augment=True)
    for i in range(len(ds)):
        s = ds[i]
        if s["targets"]["det"] is not None and len(s["targets"]["det"]):
            b = s["targets"]["det"]
            assert (b[:, 3:] > 0).all() and (b[:, 1:3] >= 0).all() and (b[:, 1:3] <= 1).all()


def test_bad_label_files_are_named_and_skipped(synthetic_dataset, tmp_path, capsys):
    spec = load_spec(synthetic_dataset)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: label JSON does not parse"):
        read_boxes(bad, spec, (100, 100))
    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps({"frames": [{"objects": [{"category": "car", "box2d": {"x1": 10, "y1": 10, "x2": 500, "y2": 50}}]}]})
    )
    with pytest.raises(InputError, match="outside the 100x100 image"):
        read_boxes(outside, spec, (100, 100))
    ds = DrivingDataset(spec, "train", imgsz=(128, 192))
    ds.items[0].det = bad
    assert ds[0] is None and ds[1] is not None
    assert "bad.json" in capsys.readouterr().err
    batch = collate_multitask([ds[0], ds[1]], KINDS)
    assert batch["skipped"] == 1 and batch["image"].shape[0] == 1


def test_yolo_layout(tmp_path):
    from polyhead.io import write_image

    for split in ("train", "val"):
        write_image(tmp_path / "images" / split / "a.jpg", np.zeros((100, 200, 3), np.uint8))
        (tmp_path / "labels" / split).mkdir(parents=True)
        (tmp_path / "labels" / split / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
        write_image(tmp_path / "ll_seg" / split / "a.png", np.full((100, 200), 255, np.uint8))
    (tmp_path / "d.yaml").write_text("format: yolo\npath: .\ntrain: train\nval: val\nnames: [car, pedestrian]\n")
    ds = DrivingDataset(load_spec(tmp_path / "d.yaml"), "train", imgsz=(64, 128))
    s = ds[0]
    assert s["targets"]["drivable"] is None and s["targets"]["lane"].float().mean() > 0.9
    cls, cx, cy, w, h = s["targets"]["det"][0].tolist()
    assert cls == 1 and abs(cx - 0.5) < 1e-3 and abs(w - 0.2) < 0.01 and abs(h - 0.4) < 0.02


def test_spec_errors(tmp_path):
    with pytest.raises(InputError, match="dataset YAML not found"):
        load_spec(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("path: does/not/exist\n")
    with pytest.raises(InputError, match="does not exist"):
        load_spec(tmp_path / "x.yaml")


def test_metrics_perfect_and_wrong():
    ap = DetectionAP(2)
    gt = np.array([[0, 10, 10, 50, 50], [1, 60, 60, 90, 95]], float)
    ap.update(np.array([[10, 10, 50, 50, 0.9, 0], [60, 60, 90, 95, 0.8, 1]]), gt)
    res = ap.aggregate()
    assert res["det_map50"] > 0.99 and res["det_recall"] > 0.99
    assert res["det_precision"] > 0.99 and 0.0 <= res["det_best_f1_conf"] <= 0.8  # F1 peaks at/below 0.8
    ap3 = DetectionAP(1)  # true boxes scored 0.9, false ones 0.3: the F1 peak sits above the false ones
    g1 = np.array([[0, 10, 10, 50, 50]], float)
    for _ in range(5):
        ap3.update(np.array([[10, 10, 50, 50, 0.9, 0], [100, 100, 140, 140, 0.3, 0]]), g1)
    assert 0.3 < ap3.aggregate()["det_best_f1_conf"] <= 0.9
    ap2 = DetectionAP(2)
    ap2.update(np.array([[10, 10, 50, 50, 0.9, 1]]), gt)  # right place, wrong class
    assert ap2.aggregate()["det_map50"] < 0.01
    m = DrivingMetrics(2)
    mask = np.zeros((20, 20), np.uint8)
    mask[10:] = 1
    m.drivable.update(mask, mask)
    m.lane.update(np.zeros_like(mask), mask)  # predicts no lane at all
    out = m.aggregate()
    assert out["da_miou"] == 1.0 and out["lane_iou"] == 0.0 and out["lane_acc"] == 0.0
    half = DrivingMetrics(2)
    pred = mask.copy()
    pred[10:, 10:] = 0  # half of the road missed: road IoU 0.5, background IoU 200 / 300
    half.drivable.update(pred, mask)
    res = half.aggregate()
    assert res["da_iou_drivable"] == pytest.approx(0.5) and res["da_miou"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_non_finite_box_is_rejected(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text('{"frames": [{"objects": [{"category": "car", "box2d": {"x1": NaN, "y1": 1, "x2": 5, "y2": 6}}]}]}')
    with pytest.raises(InputError, match="nan.json"):
        read_boxes(path, DatasetSpec(root=tmp_path), (100, 100))
