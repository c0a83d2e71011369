"""Driving augmentation: mosaic geometry and partial labels, lane negatives, repeat factors, mAP50-95."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.apps.driving.augment import (
    IGNORE,
    build_augment,
    lane_negatives,
    mosaic,
    repeat_factors,
    repeated_indices,
)
from polyhead.apps.driving.metrics import DetectionAP, LanePlacement, match_detections


def _tile(value: int, boxes=None, drivable=True, lane=False):
    img = np.full((100, 160, 3), value, np.uint8)
    return {
        "image": img,
        "boxes": boxes,
        "drivable": np.ones((100, 160), np.uint8) if drivable else None,
        "lane": np.ones((100, 160), np.uint8) if lane else None,
    }


def test_mosaic_places_boxes_and_marks_missing_labels_unlabelled():
    rng = np.random.default_rng(0)
    box = np.array([[1, 70, 40, 90, 60]], np.float32)  # centre of a 160x100 tile
    tiles = [_tile(10 * (k + 1), box, lane=(k == 0)) for k in range(4)]
    out = mosaic(tiles, (200, 320), rng)
    assert out["image"].shape == (200, 320, 3)
    assert out["boxes"] is not None and len(out["boxes"]) >= 1 and (out["boxes"][:, 0] == 1).all()
    b = out["boxes"]
    assert (b[:, 1] >= 0).all() and (b[:, 3] <= 320).all() and (b[:, 4] <= 200).all()
    # every box covers pixels of one tile: its centre pixel has that tile's grey value
    for _, x1, y1, x2, y2 in b:
        v = out["image"][int((y1 + y2) / 2), int((x1 + x2) / 2), 0]
        assert v in (10, 20, 30, 40)
    lane = out["lane"]
    assert set(np.unique(lane)) == {1, IGNORE}  # only tile 0 had lane labels
    assert set(np.unique(out["drivable"])) == {1}


def test_mosaic_drops_boxes_when_a_tile_has_no_box_labels():
    rng = np.random.default_rng(1)
    box = np.array([[0, 10, 10, 50, 50]], np.float32)
    tiles = [_tile(50, box), _tile(60, box), _tile(70, None), _tile(80, box)]
    assert mosaic(tiles, (200, 320), rng)["boxes"] is None


def test_lane_negatives_off_the_road_only():
    da = np.zeros((50, 50), np.uint8)
    da[30:, 10:40] = 1
    neg = lane_negatives(da, margin=3)
    assert neg[0, 0] == 0 and neg[45, 25] == IGNORE
    assert neg[28, 25] == IGNORE and neg[20, 25] == 0  # within the margin / beyond it


def test_lane_negatives_mark_plain_asphalt_and_leave_paint_unlabelled():
    rng = np.random.default_rng(0)
    da = np.zeros((120, 192), np.uint8)
    da[40:, :] = 1
    rgb = np.clip(rng.normal(90, 6, (120, 192, 3)), 0, 255).astype(np.uint8)  # asphalt texture
    rgb[40:, 94:98] = 235  # a painted centre line
    rgb[:40] = 200  # bright buildings off the road
    t = lane_negatives(da, rgb, margin=3)
    road_inner = np.zeros_like(da, bool)
    road_inner[44:, :] = True
    assert (t[44:, 94:98] == IGNORE).all()  # the paint (and 2 px around it) stays unlabelled
    asphalt = road_inner.copy()
    asphalt[:, 90:102] = False
    assert (t[asphalt] == 0).mean() > 0.99  # plain road is "no lane"
    assert (t[:36] == 0).all() and (t[37:43] == IGNORE).all()  # off the road / the border band
    assert (lane_negatives(da, margin=3)[44:] == IGNORE).all()  # without the image: the road unlabelled


def test_repeat_factors_favour_rare_classes_and_keep_the_expected_count():
    sets = [{0}] * 18 + [{0, 1}] * 2
    f = repeat_factors(sets, threshold=0.3)
    assert f[0] == 1.0 and f[-1] == pytest.approx(np.sqrt(0.3 / 0.1))
    counts = [np.bincount(repeated_indices(f, np.random.default_rng(s)), minlength=20)[-1] for s in range(200)]
    assert np.mean(counts) == pytest.approx(f[-1], abs=0.1)


def test_augment_keeps_boxes_inside_and_masks_binary():
    aug = build_augment()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    m = np.zeros((120, 200), np.uint8)
    m[60:, :] = 1
    for _ in range(10):
        r = aug(image=img, masks=[m, lane_negatives(m)], bboxes=[[50, 50, 90, 100]], cls=[0])
        assert r["image"].shape == img.shape
        assert set(np.unique(r["masks"][0])) <= {0, 1}
        assert set(np.unique(r["masks"][1])) <= {0, IGNORE}
        for x1, y1, x2, y2 in r["bboxes"]:
            assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 120


def test_match_detections_per_threshold():
    gt = np.array([[0, 0, 0, 100, 100]], np.float32)
    pred = np.array([[0, 0, 100, 80, 0.9, 0], [0, 0, 100, 100, 0.5, 0], [0, 0, 100, 100, 0.4, 1]], np.float32)
    tp = match_detections(pred, gt)
    assert tp[0].tolist() == [True] * 7 + [False] * 3  # IoU 0.8
    assert tp[1, 7:].all() and not tp[1, :7].any()  # the rest of the thresholds go to the later box
    assert not tp[2].any()  # wrong class


def test_map50_95_agrees_with_pycocotools(tmp_path):
    pycocotools = pytest.importorskip("pycocotools.cocoeval")
    from pycocotools.coco import COCO

    rng = np.random.default_rng(0)
    images, anns, dets = [], [], []
    plots = tmp_path / "new" / "plots"  # a folder that does not exist yet
    metric = DetectionAP(2, ["car", "pedestrian"], plot_dir=str(plots))
    for i in range(30):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(20, 120, (n, 2))
        cls = rng.integers(0, 2, n)
        gt = np.concatenate([cls[:, None], xy, xy + wh], 1).astype(np.float32)
        noisy = gt[:, 1:] + rng.normal(0, 6, (n, 4))
        conf = rng.uniform(0.3, 1.0, n)
        pred = np.concatenate([noisy, conf[:, None], cls[:, None]], 1).astype(np.float32)
        fp = np.array([[10, 10, 60, 60, 0.35, 0]], np.float32) if i % 3 == 0 else np.zeros((0, 6), np.float32)
        pred = np.concatenate([pred, fp])
        metric.update(pred, gt)
        images.append({"id": i, "width": 500, "height": 500})
        for g in gt:
            w, h = g[3] - g[1], g[4] - g[2]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(g[0]),
                    "bbox": [*map(float, g[1:3]), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
        for p in pred:
            dets.append(
                {
                    "image_id": i,
                    "category_id": int(p[5]),
                    "bbox": [float(p[0]), float(p[1]), float(p[2] - p[0]), float(p[3] - p[1])],
                    "score": float(p[4]),
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 0, "name": "car"}, {"id": 1, "name": "pedestrian"}],
    }
    coco.createIndex()
    ev = pycocotools.COCOeval(coco, coco.loadRes(dets), "bbox")
    ev.evaluate(), ev.accumulate()
    ours = metric.aggregate()
    ev.summarize()
    assert ours["det_map50_95"] == pytest.approx(ev.stats[0], abs=0.03)
    assert ours["det_map50"] == pytest.approx(ev.stats[1], abs=0.03)
    assert {"det_ap50_car", "det_ap50_95_pedestrian"} <= set(ours)
    pngs = {p.name for p in plots.glob("*.png")}
    assert any("PR_curve" in n for n in pngs) and any("confusion_matrix" in n for n in pngs), pngs


def test_lane_placement_shares():
    m = LanePlacement(margin=0)
    lane = np.zeros((10, 10), bool)
    lane[0, :4] = True  # off the road
    lane[9, :6] = True  # on the road
    road = np.zeros((10, 10), np.uint8)
    road[8:] = 1
    m.update(lane, road)
    out = m.aggregate()
    assert out["lane_px_share_unlabelled"] == pytest.approx(0.10)
    assert out["lane_on_drivable_share"] == pytest.approx(0.6)
