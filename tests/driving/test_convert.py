"""Conversion of the driving data into the BDD layout, on generated data and (when present) real data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from polyhead.apps.driving import lane_labels
from polyhead.apps.driving.convert import BOX_RULES, add_convert_arguments, class_boxes, clip_split, run_convert

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _camvid_mask() -> np.ndarray:
    m = np.full((360, 480), 11, np.uint8)
    m[:150] = 0  # sky
    m[200:] = 3  # road
    m[210:250, 40:120] = 8  # car 1
    m[215:245, 300:360] = 8  # car 2, well apart
    m[220:222, 120:300] = 8  # a thin 2 px bridge joining them: the opening must cut it
    m[180:230, 200:212] = 9  # pedestrian
    m[100:102, 400:402] = 8  # a 4-pixel fragment: dropped
    return m


def _fake_source(root: Path) -> Path:
    for split in ("train", "val"):
        (root / "camvid" / split / "images").mkdir(parents=True)
        (root / "camvid" / split / "masks").mkdir(parents=True)
        img = np.random.default_rng(0).integers(0, 255, (360, 480, 3), np.uint8)
        cv2.imwrite(str(root / "camvid" / split / "images" / f"{split}_001.jpg"), img)
        cv2.imwrite(str(root / "camvid" / split / "masks" / f"{split}_001.png"), _camvid_mask())
    ex = root / "tusimple_sample" / "training_data_example"
    for sub in ("image", "gt_binary_image", "gt_instance_image"):
        (ex / sub).mkdir(parents=True)
    for stem in ("0000", "0004"):
        img = np.full((720, 1280, 3), 90, np.uint8)
        lane = np.zeros((720, 1280), np.uint8)
        cv2.line(lane, (300, 719), (600, 300), 255, 8)
        img[lane > 0] = 255
        cv2.imwrite(str(ex / "image" / f"{stem}.png"), img)
        cv2.imwrite(str(ex / "gt_binary_image" / f"{stem}.png"), lane)
        cv2.imwrite(str(ex / "gt_instance_image" / f"{stem}.png"), (lane > 0).astype(np.uint8) * 20)
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("convert")
    src = _fake_source(base / "src")
    parser = argparse.ArgumentParser()
    add_convert_arguments(parser)
    out = base / "out"
    assert run_convert(parser.parse_args(["--source", str(src), "--out", str(out), "--seed", "3"])) == 0
    return out


def test_camvid_boxes_masks_and_files(converted: Path):
    det = json.loads((converted / "det_annotations/train/camvid_train_001.json").read_text())
    assert det["name"] == "camvid_train_001"
    objs = det["frames"][0]["objects"]
    cars = sorted(
        (o["box2d"]["x1"], o["box2d"]["y1"], o["box2d"]["x2"], o["box2d"]["y2"]) for o in objs if o["category"] == "car"
    )
    # two cars despite the bridge; the fragment is gone; bridge pixels reattached within 3 px only
    assert len(cars) == 2
    assert cars[0][0] == 40 and cars[0][1] == 210 and cars[0][3] == 250 and 120 <= cars[0][2] <= 124
    assert cars[1][1] == 215 and cars[1][2] == 360 and cars[1][3] == 245 and 296 <= cars[1][0] <= 300
    peds = [o["box2d"] for o in objs if o["category"] == "pedestrian"]
    assert peds == [{"x1": 200.0, "y1": 180.0, "x2": 212.0, "y2": 230.0}]
    da = cv2.imread(str(converted / "da_seg_annotations/train/camvid_train_001.png"), cv2.IMREAD_UNCHANGED)
    assert da.shape == (360, 480) and set(np.unique(da)) == {0, 255}
    expected = _camvid_mask() == 3
    assert np.array_equal(da > 0, expected)
    assert (converted / "images/val/camvid_val_001.jpg").is_file()
    # CamVid lanes are unlabelled: no lane file at all
    assert not (converted / "ll_seg_annotations/train/camvid_train_001.png").exists()


def test_tusimple_lanes_val_split_and_missing_tasks(converted: Path):
    ll = cv2.imread(str(converted / "ll_seg_annotations/val/tusimple_0004.png"), cv2.IMREAD_UNCHANGED)
    assert ll.shape == (720, 1280) and set(np.unique(ll)) == {0, 255}
    assert ll[719, 300] == 255 and ll[719, 900] == 0
    assert (converted / "images/train/tusimple_0000.jpg").is_file()
    assert not (converted / "images/train/tusimple_0004.jpg").exists()  # val frames never in train
    for task in ("det_annotations", "da_seg_annotations"):
        assert not list((converted / task).rglob("tusimple_*"))


def test_yaml_report_and_no_leftovers(converted: Path):
    spec = yaml.safe_load((converted / "driving.yaml").read_text())
    assert spec["format"] == "bdd100k" and spec["path"] == "."
    assert spec["names"] == ["car", "pedestrian", "cyclist"]
    assert spec["category_map"]["bicyclist"] == "cyclist"
    report = json.loads((converted / "convert_report.json").read_text())
    assert report["seed"] == 3
    assert report["counts"]["train"]["images"] == 2 and report["counts"]["val"]["images"] == 2
    assert report["counts"]["val"]["ll"] == 1 and report["counts"]["train"]["da"] == 1
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path):
    src = _fake_source(tmp_path / "src")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("not a dataset")
    args = argparse.Namespace(source=str(src), out=str(out), val_fraction=0.2, seed=0, clip_step=5)
    with pytest.raises(FileExistsError):
        run_convert(args)
    assert (out / "keep.txt").read_text() == "not a dataset"


def test_class_boxes_drop_small_and_split_touching():
    m = np.zeros((360, 480), np.uint8)
    m[100:140, 100:160] = 8
    m[100:140, 161:220] = 8
    m[118:120, 160] = 8  # touching through a 2-pixel neck
    assert len(class_boxes(m, 8, BOX_RULES[8])) == 2
    m2 = np.zeros((360, 480), np.uint8)
    m2[10:14, 10:14] = 9
    assert class_boxes(m2, 9, BOX_RULES[9]) == []


def test_clip_split_is_by_time():
    splits = [clip_split(i, 200, 0.25, 25) for i in range(200)]
    first_val = splits.index("val")
    assert first_val == 150 and all(s == "val" for s in splits[150:])
    assert all(s is None for s in splits[125:150]) and all(s == "train" for s in splits[:125])


def test_lane_finder_on_a_drawn_road():
    img = np.full((540, 960, 3), 70, np.uint8)
    for bottom, top in (((150, 539), (436, 364)), ((830, 539), (524, 364))):  # converge at (480, 337)
        cv2.line(img, bottom, top, (240, 240, 240), 8)
    found = lane_labels.check_plausible(lane_labels.find_lanes(img), 540, 960)
    assert found.accepted, found.reason
    left, right = (found.lanes[i] for i in found.ego)
    assert abs(float(left.x_at(539)) - 150) < 4 and abs(float(right.x_at(539)) - 830) < 4
    mask = lane_labels.draw_lanes(found.lanes, 540, 960)
    x_left = int(round(150 + (539 - 450) * 286 / 175))  # the drawn line's x at row 450
    assert mask[450, x_left] == 255 and mask[450, 480] == 0


def test_plausibility_rejects_one_sided_lanes():
    img = np.full((540, 960, 3), 70, np.uint8)
    cv2.line(img, (150, 539), (436, 364), (240, 240, 240), 8)
    found = lane_labels.check_plausible(lane_labels.find_lanes(img), 540, 960)
    assert not found.accepted


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}")
def test_lane_finder_on_real_highway_frame():
    path = SHARED_DATA / "driving" / "highway_frames" / "solidWhiteRight.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    found = lane_labels.check_plausible(lane_labels.find_lanes(rgb), h, w)
    assert found.accepted, found.reason
    left, right = (found.lanes[i] for i in found.ego)
    # ego lines: the dashed one left of centre, the solid one right of centre, meeting near the horizon
    assert 0.05 * w < float(left.x_at(h - 1)) < 0.35 * w
    assert 0.7 * w < float(right.x_at(h - 1)) < 1.0 * w
    assert float(left.x_at(0.65 * h)) < float(right.x_at(0.65 * h))
