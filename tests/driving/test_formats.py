"""Standard dataset formats as driving datasets: YAML -> DrivingDataset sample -> batch, on generated files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyhead.apps.driving.data import DatasetSpec, DrivingDataset, load_spec
from polyhead.apps.driving.formats import FormatSpec, detect_format
from polyhead.dataset_yaml import UnknownKeyWarning
from polyhead.errors import InputError
from polyhead.train.data import collate_multitask
from tests.conftest import shared_data

H, W = 64, 128  # generated images; datasets are read at this size, so targets equal the labels
KINDS = {"det": "boxes", "drivable": "dense", "lane": "dense"}


def _image(path: Path, h: int = H, w: int = W, value: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


def _raw(yaml_path: Path, split: str = "train", i: int = 0):
    ds = DrivingDataset(load_spec(yaml_path), split, imgsz=(H, W))
    return ds, ds.load_raw(i)


# ------------------------------------------------------------------------------------------ ultralytics
@pytest.fixture()
def ultralytics_set(tmp_path: Path) -> Path:
    """The layout of the issue: ``path`` + ``images/train``, names as a mapping, one class polyhead lacks."""
    root = tmp_path / "datasets" / "road"
    for split, name in (("train", "a"), ("train", "b"), ("val", "c")):
        _image(root / "images" / split / f"{name}.jpg")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.125 0.25\n2 0.8 0.2 0.1 0.1\n")
    (root / "labels" / "train" / "b.txt").write_text("3 0.5 0.5 0.5 0.5\n")
    (tmp_path / "cfg").mkdir()
    y = tmp_path / "cfg" / "data.yaml"
    y.write_text(
        "path: ../datasets/road\ntrain: images/train\nval: images/val\n"
        "names:\n  0: person\n  1: car\n  2: traffic light\n  3: motorcycle\n"
    )
    return y


def test_ultralytics_data_yaml_trains_as_it_is(ultralytics_set: Path, capsys):
    spec = load_spec(ultralytics_set)
    assert (
        isinstance(spec, FormatSpec) and spec.layout == "ultralytics" and spec.names == ["car", "pedestrian", "cyclist"]
    )
    assert spec.root == (ultralytics_set.parent.parent / "datasets" / "road").resolve()  # not images/images/train
    ds, (img, boxes, da, ll) = _raw(ultralytics_set)
    assert "data.yaml [train]: dropped 1 boxes of classes not mapped to car, pedestrian, cyclist: traffic light 1" in (
        capsys.readouterr().err
    )
    assert da is None and ll is None  # detection only: the other tasks are unlabelled
    np.testing.assert_allclose(boxes, [[1, 48, 16, 80, 48], [0, 24, 8, 40, 24]], atol=1e-4)  # person -> pedestrian
    np.testing.assert_allclose(ds.load_raw(1)[1], [[2, 32, 16, 96, 48]], atol=1e-4)  # motorcycle -> cyclist
    batch = collate_multitask([ds[0], ds[1]], KINDS)
    det = batch["targets"]["det"]  # (image index, class, cx, cy, w, h) as the Trainer gets it
    np.testing.assert_allclose(det[0].tolist(), [0, 1, 0.5, 0.5, 0.25, 0.5], atol=1e-4)
    assert batch["present"]["det"].tolist() == [True, True] and batch["present"]["lane"].tolist() == [False, False]
    (val,) = DrivingDataset(spec, "val", imgsz=(H, W)).items
    assert val.image.name == "c.jpg" and val.sample.boxes.shape == (0, 4)  # no label file: background


def test_ultralytics_user_mapping_by_name_or_id(ultralytics_set: Path):
    text = ultralytics_set.read_text() + "category_map: {2: car, motorcycle: null}\n"
    ultralytics_set.write_text(text)
    _, (_, boxes, _, _) = _raw(ultralytics_set)
    assert boxes[:, 0].tolist() == [1, 0, 0]  # traffic light (id 2) mapped to car by the user
    assert len(_raw(ultralytics_set, i=1)[1][1]) == 0  # motorcycle dropped by the user


def test_ultralytics_bad_label_is_skipped_with_one_line(ultralytics_set: Path, capsys):
    (ultralytics_set.parent.parent / "datasets" / "road" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.25\n")
    ds = DrivingDataset(load_spec(ultralytics_set), "train", imgsz=(H, W))
    assert ds[0] is None and ds[1] is not None
    err = capsys.readouterr().err
    assert "a.txt: line 1: expected 'class cx cy w h'" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------ COCO, KITTI
def test_coco_yaml(tmp_path: Path):
    _image(tmp_path / "images" / "train" / "x.jpg")
    ann = {
        "images": [{"id": 1, "file_name": "x.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bus"}, {"id": 3, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 8, 10, 20]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 10, 50, 30]},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [100, 10, 10, 10]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 40, 20, 20], "iscrowd": 1},
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.json").write_text(json.dumps(ann))
    (tmp_path / "d.yaml").write_text("format: coco\npath: .\ntrain: annotations/train.json\n")
    _, (img, boxes, da, ll) = _raw(tmp_path / "d.yaml")
    np.testing.assert_allclose(boxes, [[1, 4, 8, 14, 28], [0, 40, 10, 90, 40]])
    assert (img[40:60, 0:20] == 114).all() and (img[0:8] == 200).all()  # the crowd region is painted grey


def test_kitti_yaml_with_dontcare(tmp_path: Path):
    _image(tmp_path / "training" / "image_2" / "000000.png")
    (tmp_path / "training" / "label_2").mkdir(parents=True)
    (tmp_path / "training" / "label_2" / "000000.txt").write_text(
        "Van 0.00 0 -1.58 10 12 40 30 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Cyclist 0.00 0 -1.58 50 10 60 40 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Tram 0.00 0 -1.58 70 10 90 40 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "DontCare -1 -1 -10 100 0 120 10 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "train.txt").write_text("000000\n")
    (tmp_path / "d.yaml").write_text("format: kitti\npath: .\ntrain: ImageSets/train.txt\nval: training\n")
    _, (img, boxes, _, _) = _raw(tmp_path / "d.yaml")
    np.testing.assert_allclose(boxes, [[0, 10, 12, 40, 30], [2, 50, 10, 60, 40]])  # Tram dropped
    assert (img[0:10, 100:120] == 114).all() and (img[20:, 100:] == 200).all()
    assert len(DrivingDataset(load_spec(tmp_path / "d.yaml"), "val", imgsz=(H, W))) == 1


def test_real_kitti_sample(tmp_path: Path):
    root = shared_data("driving", "kitti_sample")
    (tmp_path / "d.yaml").write_text(f"format: kitti\npath: {root}\ntrain: .\n")
    ds = DrivingDataset(load_spec(tmp_path / "d.yaml"), "train", imgsz=(384, 1248))
    boxes = ds.load_raw(1)[1]  # 000001: Truck, Car, Cyclist
    assert len(ds) >= 3 and boxes[:, 0].tolist() == [0, 0, 2] and (boxes[:, 3] <= 1242).all()


# ------------------------------------------------------------------------------------------ BDD100K official
def test_official_bdd100k_layout(tmp_path: Path):
    root = tmp_path / "bdd100k"
    _image(root / "images" / "100k" / "train" / "f1.jpg")
    _image(root / "images" / "100k" / "train" / "f2.jpg")
    (root / "labels" / "det_20").mkdir(parents=True)
    (root / "labels" / "det_20" / "det_train.json").write_text(
        json.dumps(
            [
                {
                    "name": "f1.jpg",
                    "labels": [
                        {"category": "truck", "box2d": {"x1": 2, "y1": 3, "x2": 50, "y2": 40}},
                        {"category": "rider", "box2d": {"x1": 60, "y1": 3, "x2": 70, "y2": 40}},
                        {"category": "traffic light", "box2d": {"x1": 80, "y1": 3, "x2": 85, "y2": 10}},
                    ],
                }
            ]
        )
    )
    da = np.full((H, W), 2, np.uint8)
    da[40:, :64], da[40:, 64:] = 0, 1
    (root / "labels" / "drivable" / "masks" / "train").mkdir(parents=True)
    cv2.imwrite(str(root / "labels" / "drivable" / "masks" / "train" / "f1.png"), da)
    lane = np.full((H, W), 255, np.uint8)
    lane[:, 20] = 7
    (root / "labels" / "lane" / "masks" / "train").mkdir(parents=True)
    cv2.imwrite(str(root / "labels" / "lane" / "masks" / "train" / "f2.png"), lane)
    y = tmp_path / "bdd.yaml"
    y.write_text("format: bdd100k\npath: bdd100k\ntrain: train\nval: val\n")
    assert detect_format(y) == "bdd100k"
    ds, (_, boxes, drivable, ll) = _raw(y)
    np.testing.assert_allclose(boxes, [[0, 2, 3, 50, 40], [2, 60, 3, 70, 40]])
    assert ll is None and drivable[40:].all() and not drivable[:40].any()
    _, b2, d2, ll2 = ds.load_raw(1)
    assert b2 is None and d2 is None and ll2[:, 20].all() and ll2.sum() == H  # f2: not in the JSON, lane only
    assert [sorted(it.tasks) for it in ds.items] == [["det", "drivable"], ["lane"]]  # what each image labels
    batch = collate_multitask([ds[0], ds[1]], KINDS)
    assert batch["present"]["det"].tolist() == [True, False] and batch["present"]["lane"].tolist() == [False, True]


def test_yolop_bdd100k_layout_is_unchanged(synthetic_dataset: Path):
    assert detect_format(synthetic_dataset) is None
    assert type(load_spec(synthetic_dataset)) is DatasetSpec


# ------------------------------------------------------------------------------------------ lanes
def test_tusimple_yaml_draws_lane_masks(tmp_path: Path):
    _image(tmp_path / "clips" / "c1" / "1.jpg", 72, 128)
    rows = list(range(30, 72, 10))
    label = {"lanes": [[40, 36, 32, 28, 24], [-2, 90, 95, 100, -2]], "h_samples": rows, "raw_file": "clips/c1/1.jpg"}
    (tmp_path / "label_data_0313.json").write_text(json.dumps(label) + "\n")
    (tmp_path / "d.yaml").write_text("format: tusimple\npath: .\ntrain: [label_data_0313.json]\nlane_width: 10\n")
    _, (img, boxes, da, ll) = _raw(tmp_path / "d.yaml")
    assert boxes is None and da is None
    assert ll[30, 40] == ll[70, 24] == ll[40, 90] == ll[60, 100] == 1 and ll[:25].sum() == 0 and ll[70, 100] == 0
    assert 1 <= ll[50, :64].sum() <= 3  # 10 px at 1280 wide is 1 px at 128


def test_culane_yaml(tmp_path: Path):
    img = _image(tmp_path / "driver_1" / "v.MP4" / "00000.jpg")
    img.with_suffix(".lines.txt").write_text("10 63 30 30 \n")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "train_gt.txt").write_text("/driver_1/v.MP4/00000.jpg /seg.png 1 0 0 0\n")
    (tmp_path / "d.yaml").write_text("format: culane\npath: .\ntrain: list/train_gt.txt\n")
    _, (_, boxes, _, ll) = _raw(tmp_path / "d.yaml")
    assert boxes is None and ll[63, 10] == ll[30, 30] == 1 and ll[10].sum() == 0


# ------------------------------------------------------------------------------------------ YAML problems
def test_unknown_key_warns_and_names_the_nearest(ultralytics_set: Path, tmp_path: Path):
    y = tmp_path / "k.yaml"
    y.write_text("format: kitti\npath: .\ntrain: .\ncategory_mapp: {}\n")
    _image(tmp_path / "image_2" / "000000.png")
    with pytest.warns(
        UnknownKeyWarning, match=r"k.yaml: unknown key 'category_mapp' \(did you mean 'category_map'\?\)"
    ):
        assert len(DrivingDataset(load_spec(y), "train", imgsz=(H, W))) == 1


def test_cli_shows_the_warning_in_one_line_and_the_error_in_another(tmp_path: Path):
    y = tmp_path / "d.yaml"
    y.write_text("format: coco\npath: .\ntrian: a.json\n")
    cmd = [sys.executable, "-m", "polyhead", "driving", "train", "--data", str(y), "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode != 0 and len(lines) == 2, done.stderr
    assert lines[0] == f"warning: {y}: unknown key 'trian' (did you mean 'train'?), ignored", lines
    assert lines[1] == f"error: {y}: no 'train' in the dataset YAML (format: coco)", lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format: coco\npath: .\ntrain: missing.json\n", "missing.json: COCO JSON not found"),
        ("format: tusimple\npath: .\ntrain: {a: 1}\n", "'train' must be a path or a list of paths"),
        ("format: kitti\npath: nowhere\ntrain: .\n", "does not exist"),
        ("format: culane\npath: .\ntrain: l.txt\ncategory_map: {car: lorry}\n", "'car' to 'lorry'"),
        ("format: coco\npath: .\ntrain: a.json\nlane_width: wide\n", "'lane_width' must be a number"),
    ],
)
def test_yaml_errors_are_one_line(tmp_path: Path, text: str, message: str):
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(InputError) as e:
        DrivingDataset(load_spec(tmp_path / "d.yaml"), "train", imgsz=(H, W))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_shipped_official_bdd100k_example_selects_the_official_reader():
    path = Path(__file__).resolve().parents[2] / "datasets" / "bdd100k-official.yaml"
    assert detect_format(path) == "bdd100k"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        try:
            spec = load_spec(path)
        except InputError as e:  # /data/bdd100k is absent here; the keys and values are not the problem
            assert "does not exist" in str(e), str(e)
        else:
            assert isinstance(spec, FormatSpec)
