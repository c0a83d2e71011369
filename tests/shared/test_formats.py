"""The format readers of polyhead.formats on generated files: parsed values, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from polyhead.errors import InputError
from polyhead.formats import bdd100k, coco, culane, kitti, tusimple, ultralytics_yaml
from polyhead.formats.common import ClassMap, MaskFile, draw_lanes, read_mask_file


def _image(path: Path, h: int = 60, w: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 80, np.uint8))
    return path


def _one_line(e: pytest.ExceptionInfo, *parts: str) -> None:
    text = str(e.value)
    assert isinstance(e.value, InputError) and "\n" not in text, text
    for p in parts:
        assert p in text, text


# ------------------------------------------------------------------------------------------ class map
def test_class_map_aliases_user_mapping_and_drop_counts():
    cm = ClassMap(["car", "pedestrian"], {"van": "car", "person": "pedestrian"}, {"Person_sitting": "pedestrian"})
    assert cm.ids(["Car", "VAN", "person sitting", "person", "tram", "Tram"]).tolist() == [0, 0, 1, 1, -1, -1]
    assert cm.report() == "dropped 2 boxes of classes not mapped to car, pedestrian: tram 1, Tram 1"
    assert ClassMap(["car"], {"bus": "car"}, {"bus": None}).ids(["bus"]).tolist() == [-1]  # the user wins
    with pytest.raises(InputError) as e:
        ClassMap(["car"], user={"bus": "lorry"}, source="d.yaml")
    _one_line(e, "d.yaml", "'bus' to 'lorry'")


# ------------------------------------------------------------------------------------------ ultralytics
@pytest.fixture()
def yolo_set(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    _image(root / "images" / "train" / "a.jpg")
    _image(root / "images" / "train" / "sub" / "b.png")  # folders are searched recursively
    _image(root / "images" / "val" / "c.jpg")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n2 0.1 0.2 0.3 0.2 0.3 0.4\n\n")
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "val" / "c.txt").write_text("1 0.25 0.75 0.5 0.5\n")
    (root / "val.txt").write_text("./images/val/c.jpg\n")
    (root / "data.yaml").write_text(
        "train: images/train\nval: [val.txt]\nnames:\n  0: person\n  1: car\n  2: traffic light\n"
    )
    return root / "data.yaml"


def test_ultralytics_yaml_paths_names_and_labels(yolo_set: Path):
    data = ultralytics_yaml.read_data_yaml(yolo_set)
    assert data.root == yolo_set.parent.resolve()  # no 'path': the YAML's folder, as ultralytics does
    assert data.names == ["person", "car", "traffic light"]  # a mapping, read as names (not [0, 1, 2])
    train = ultralytics_yaml.split_samples(data, "train")
    assert [s.image.name for s in train] == ["a.jpg", "b.png"]
    a, b = train
    assert a.normalised and a.categories == ["person", "traffic light"]
    np.testing.assert_allclose(a.boxes, [[0.4, 0.3, 0.6, 0.7], [0.1, 0.2, 0.3, 0.4]], atol=1e-6)  # polygon -> bbox
    assert b.boxes.shape == (0, 4) and b.problem is None  # no label file: a background image, as in ultralytics
    boxes, _ = a.pixel_boxes((60, 100))
    np.testing.assert_allclose(boxes[0], [40, 18, 60, 42], atol=1e-4)
    (val,) = ultralytics_yaml.split_samples(data, "val")
    assert val.image.name == "c.jpg" and val.categories == ["car"]


def test_ultralytics_agrees_with_ultralytics(yolo_set: Path):
    from ultralytics.data.base import BaseDataset
    from ultralytics.data.utils import img2label_paths, verify_image_label

    (yolo_set.parent / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n2 0.3 0.6 0.25 0.1\n")
    data = ultralytics_yaml.read_data_yaml(yolo_set)  # (ultralytics refuses files mixing boxes and polygons)
    ours = ultralytics_yaml.split_images(data, "train") + ultralytics_yaml.split_images(data, "val")
    theirs = BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), [str(data.root / "images" / "train")])
    theirs += BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), str(data.root / "val.txt"))
    assert sorted(map(str, ours)) == sorted(theirs)
    assert [str(ultralytics_yaml.label_path(p)) for p in ours] == img2label_paths([str(p) for p in ours])
    image = data.root / "images" / "train" / "a.jpg"
    checked = verify_image_label((str(image), str(ultralytics_yaml.label_path(image)), "", False, 3, 0, 0, False))
    lb = checked[1]
    assert lb is not None, checked[-1]
    (sample,) = [s for s in ultralytics_yaml.split_samples(data, "train") if s.image == image]
    cx, cy = (sample.boxes[:, 0] + sample.boxes[:, 2]) / 2, (sample.boxes[:, 1] + sample.boxes[:, 3]) / 2
    w, h = sample.boxes[:, 2] - sample.boxes[:, 0], sample.boxes[:, 3] - sample.boxes[:, 1]
    np.testing.assert_allclose(np.stack([cx, cy, w, h], 1), lb[:, 1:], atol=1e-5)
    assert lb[:, 0].tolist() == [0, 2]


def test_ultralytics_path_is_relative_to_the_yaml(tmp_path: Path, yolo_set: Path):
    (tmp_path / "cfg").mkdir()
    y = tmp_path / "cfg" / "d.yaml"
    y.write_text("path: ../set\ntrain: images/train\nval: images/val\nnames: [person, car, traffic light]\n")
    data = ultralytics_yaml.read_data_yaml(y)
    assert data.root == (tmp_path / "set").resolve()
    assert [s.image.name for s in ultralytics_yaml.split_samples(data, "val")] == ["c.jpg"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: images/train\nnames: {0: a, 2: b}\n", "'names' ids must be 0..1 without gaps"),
        ("train: images/train\nnames: [a, b]\nnc: 3\n", "'nc' is 3 but 'names' has 2"),
        ("train: images/train\n", "needs 'names'"),
        ("names: [a]\n", "names no 'train' or 'val'"),
        ("path: nowhere\ntrain: images\nnames: [a]\n", "does not exist"),
        ("train: [images\n", "not valid YAML"),
    ],
)
def test_ultralytics_yaml_errors(tmp_path: Path, text: str, message: str):
    y = tmp_path / "d.yaml"
    y.write_text(text)
    with pytest.raises(InputError) as e:
        ultralytics_yaml.split_samples(ultralytics_yaml.read_data_yaml(y), "train")
    _one_line(e, message)


def test_ultralytics_bad_label_line_is_the_samples_problem(yolo_set: Path):
    (yolo_set.parent / "labels" / "train" / "a.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    a = ultralytics_yaml.split_samples(ultralytics_yaml.read_data_yaml(yolo_set), "train")[0]
    assert isinstance(a.problem, InputError) and "a.txt: line 1: class 7 outside 0..2" in str(a.problem)
    (yolo_set.parent / "labels" / "train" / "a.txt").write_text("0 0.5 zero 0.2 0.2\n")
    a = ultralytics_yaml.split_samples(ultralytics_yaml.read_data_yaml(yolo_set), "train")[0]
    assert "line 1: expected numbers" in str(a.problem)


# ------------------------------------------------------------------------------------------ COCO
def _coco(tmp_path: Path) -> Path:
    _image(tmp_path / "images" / "1.jpg")
    _image(tmp_path / "images" / "2.jpg")
    ann = {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 100, "height": 60}, {"id": 2, "file_name": "2.jpg"}],
        "categories": [
            {"id": 3, "name": "car"},
            {"id": 7, "name": "face", "keypoints": ["le", "re", "n", "lm", "rm"]},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 5, 30, 20], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [50, 5, 40, 40], "iscrowd": 1},
            {
                "id": 12,
                "image_id": 1,
                "category_id": 7,
                "bbox": [60, 10, 20, 20],
                "keypoints": [64, 15, 2, 76, 15, 2, 70, 20, 1, 65, 26, 0, 75, 26, 2],
            },
        ],
    }
    path = tmp_path / "annotations" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(ann))
    return path


def test_coco_boxes_crowd_keypoints_and_empty_images(tmp_path: Path):
    samples, cats = coco.read_coco(_coco(tmp_path))
    assert cats == {3: "car", 7: "face"}
    one, two = samples
    assert one.image == tmp_path / "images" / "1.jpg" and one.image.is_file()  # found under ../images
    np.testing.assert_array_equal(one.boxes, [[10, 5, 40, 25], [60, 10, 80, 30]])
    assert one.categories == ["car", "face"]
    np.testing.assert_array_equal(one.ignore, [[50, 5, 90, 45]])  # iscrowd: neither object nor background
    assert one.keypoints.shape == (2, 5, 2) and np.isnan(one.keypoints[0]).all()  # the car has no points
    np.testing.assert_array_equal(one.keypoints[1, :3], [[64, 15], [76, 15], [70, 20]])
    assert np.isnan(one.keypoints[1, 3]).all() and one.keypoints[1, 4].tolist() == [75, 26]  # v=0: not labelled
    assert two.boxes.shape == (0, 4) and two.categories == []  # listed without annotations: no objects


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotation 10: 'bbox' must be [x, y, w, h]"),
        (lambda d: d["annotations"][0].update(image_id=99), "annotation 10 refers to image_id 99"),
        (lambda d: d["annotations"][0].update(category_id=5), "annotation 10: category_id 5 is not in"),
        (lambda d: d["annotations"][2].update(keypoints=[1, 2]), "annotation 12: 'keypoints' must be 15 numbers"),
        (lambda d: d.pop("images"), "not a COCO detection JSON"),
    ],
)
def test_coco_errors(tmp_path: Path, edit, message: str):
    path = _coco(tmp_path)
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(InputError) as e:
        coco.read_coco(path)
    _one_line(e, "instances.json", message)
    path.write_text('{"images": [')
    with pytest.raises(InputError) as e:
        coco.read_coco(path)
    _one_line(e, "is not valid JSON (line 1")


# ------------------------------------------------------------------------------------------ BDD100K
def _bdd(root: Path) -> Path:
    for name in ("a", "b", "c"):
        _image(root / "images" / "100k" / "val" / f"{name}.jpg", 40, 60)
    frames = [
        {
            "name": "a.jpg",
            "labels": [
                {"category": "car", "box2d": {"x1": 1, "y1": 2, "x2": 30, "y2": 20}},
                {"category": "traffic sign", "box2d": {"x1": 40, "y1": 2, "x2": 50, "y2": 10}},
                {
                    "category": "pedestrian",
                    "box2d": {"x1": 5, "y1": 5, "x2": 9, "y2": 15},
                    "attributes": {"crowd": True},
                },
                {"category": "lane/single white", "poly2d": [{"vertices": [[0, 0], [5, 5]]}]},  # no box2d: skipped
            ],
        },
        {"name": "b.jpg"},  # listed, no labels: labelled empty
    ]
    det = root / "labels" / "det_20" / "det_val.json"
    det.parent.mkdir(parents=True)
    det.write_text(json.dumps(frames))
    drivable = np.full((40, 60), 2, np.uint8)  # background
    drivable[20:, :20], drivable[20:, 20:40] = 0, 1  # direct, alternative
    (root / "labels" / "drivable" / "masks" / "val").mkdir(parents=True)
    cv2.imwrite(str(root / "labels" / "drivable" / "masks" / "val" / "a.png"), drivable)
    lane = np.full((40, 60), 255, np.uint8)
    lane[:, 10] = 6 + (1 << 4)  # single white, dashed
    lane[:, 30] = 3 + (1 << 5)  # double yellow, vertical
    lane[5, :] = 0  # crosswalk: not a lane line
    (root / "labels" / "lane" / "masks" / "val").mkdir(parents=True)
    cv2.imwrite(str(root / "labels" / "lane" / "masks" / "val" / "b.png"), lane)
    return root


def test_bdd100k_det_json_and_mask_ids(tmp_path: Path):
    a, b, c = bdd100k.read_layout(_bdd(tmp_path), "val")
    np.testing.assert_array_equal(a.boxes, [[1, 2, 30, 20], [40, 2, 50, 10]])
    assert a.categories == ["car", "traffic sign"] and a.ignore.tolist() == [[5, 5, 9, 15]]
    assert b.boxes.shape == (0, 4) and c.boxes is None  # c is not in the JSON: boxes unlabelled
    assert a.drivable.encoding == "bdd_drivable" and a.lane is None and b.drivable is None and c.lane is None
    da = read_mask_file(a.drivable, (40, 60))
    assert da[20:, :40].all() and not da[:20].any() and not da[20:, 40:].any()  # 0 and 1 drivable, 2 not
    ll = read_mask_file(b.lane, (40, 60))
    assert ll[:, 10].sum() == 39 and ll[:, 30].sum() == 39 and ll.sum() == 78  # 255 and the crosswalk row are not
    with pytest.raises(InputError) as e:
        read_mask_file(a.drivable, (41, 60))
    _one_line(e, "a.png", "mask is 60x40 but its image is 60x41")


def test_bdd100k_errors(tmp_path: Path):
    root = _bdd(tmp_path)
    det = root / "labels" / "det_20" / "det_val.json"
    det.write_text(json.dumps([{"name": "a.jpg", "labels": [{"category": "car", "box2d": {"x1": "left"}}]}]))
    with pytest.raises(InputError) as e:
        bdd100k.read_layout(root, "val")
    _one_line(e, "det_val.json", "box2d x1 is not a number")
    det.write_text(json.dumps({"frames": 3}))
    with pytest.raises(InputError) as e:
        bdd100k.read_layout(root, "val")
    _one_line(e, "not a BDD100K detection JSON")
    with pytest.raises(InputError) as e:
        bdd100k.read_layout(root, "train")
    _one_line(e, "no BDD100K images folder for split 'train'")


# ------------------------------------------------------------------------------------------ TuSimple, CULane
def test_tusimple_lanes_and_mask(tmp_path: Path):
    _image(tmp_path / "clips" / "0313-1" / "20.jpg", 100, 200)
    rows = [40, 50, 60, 70, 80, 90]
    lines = [
        {
            "lanes": [[-2, 100, 90, 80, 70, 60], [-2, -2, -2, -2, -2, -2]],
            "h_samples": rows,
            "raw_file": "clips/0313-1/20.jpg",
        },
        {"lanes": [], "h_samples": rows, "raw_file": "clips/0313-1/20.jpg"},
    ]
    (tmp_path / "label_data_0313.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    one, two = tusimple.read_label_data([tmp_path / "label_data_0313.json"])
    assert one.image == tmp_path / "clips" / "0313-1" / "20.jpg" and two.lanes == []
    (lane,) = one.lanes  # the all -2 lane has no points
    assert lane.tolist() == [[100, 50], [90, 60], [80, 70], [70, 80], [60, 90]]
    m = draw_lanes(one.lanes, (100, 200), 3)
    assert m[50, 100] == m[70, 80] == m[90, 60] == 1 and m[:45].sum() == 0 and m[70, 120] == 0
    (tmp_path / "label_data_0313.json").write_text('{"lanes": [[1, 2]], "h_samples": [1], "raw_file": "x.jpg"}\n')
    with pytest.raises(InputError) as e:
        tusimple.read_label_data([tmp_path / "label_data_0313.json"])
    _one_line(e, "label_data_0313.json", "line 1 is not a TuSimple label", "2 x values but there are 1")


def test_culane_list_and_lines(tmp_path: Path):
    img = _image(tmp_path / "driver_23_30frame" / "05151649_0422.MP4" / "00000.jpg", 59, 164)
    _image(img.with_name("00030.jpg"), 59, 164)
    img.with_suffix(".lines.txt").write_text("10.5 58 20.25 40 30 20 \n100 58 90 30\n")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "train_gt.txt").write_text(
        "/driver_23_30frame/05151649_0422.MP4/00000.jpg /laneseg/x.png 1 1 0 0\n"
        "/driver_23_30frame/05151649_0422.MP4/00030.jpg /laneseg/y.png 0 0 0 0\n"
    )
    a, b = culane.read_list(tmp_path, "list/train_gt.txt")
    assert a.image == img and len(a.lanes) == 2 and b.lanes is None  # no .lines.txt: lanes unlabelled
    np.testing.assert_allclose(a.lanes[0], [[10.5, 58], [20.25, 40], [30, 20]])
    img.with_suffix(".lines.txt").write_text("1 2 3\n")
    (a, _) = culane.read_list(tmp_path, "list/train_gt.txt")
    assert isinstance(a.problem, InputError) and "00000.lines.txt: line 1: expected x y pairs" in str(a.problem)
    with pytest.raises(InputError) as e:
        culane.read_list(tmp_path, "list/val.txt")
    _one_line(e, "val.txt", "CULane list file not found")


# ------------------------------------------------------------------------------------------ KITTI
def test_kitti_label_2(tmp_path: Path):
    _image(tmp_path / "image_2" / "000000.png", 375, 1242)
    _image(tmp_path / "image_2" / "000001.png", 375, 1242)
    (tmp_path / "label_2").mkdir()
    (tmp_path / "label_2" / "000000.txt").write_text(
        "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
        "Person_sitting 0.00 1 1.2 100 150 130 220 1.2 0.6 0.8 1 1 10 1.5\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    a, b = kitti.read_folder(tmp_path)
    np.testing.assert_allclose(a.boxes, [[587.01, 173.33, 614.12, 200.12], [100, 150, 130, 220]], atol=1e-3)
    assert a.categories == ["Car", "Person_sitting"]
    np.testing.assert_allclose(a.ignore, [[503.89, 169.71, 590.61, 190.13]], atol=1e-3)
    assert b.boxes is None  # no label file: unlabelled
    (tmp_path / "label_2" / "000000.txt").write_text("Car 0 0 1 2 3\n")
    assert "line 1: expected 15 fields" in str(kitti.read_folder(tmp_path)[0].problem)
    with pytest.raises(InputError) as e:
        kitti.read_folder(tmp_path, ids=["000009"])
    _one_line(e, "image_2", "1 listed ids have no image, e.g. 000009")


def test_mask_file_of_another_size_and_unreadable(tmp_path: Path):
    (tmp_path / "m.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as e:
        read_mask_file(MaskFile(tmp_path / "m.png"), (4, 4))
    _one_line(e, "m.png", "not a readable image")


def test_samples_pickle_with_their_problem(yolo_set: Path):
    import pickle

    (yolo_set.parent / "labels" / "train" / "a.txt").write_text("9 0.5 0.5 0.2 0.2\n")
    samples = ultralytics_yaml.split_samples(ultralytics_yaml.read_data_yaml(yolo_set), "train")
    back = pickle.loads(pickle.dumps(samples))  # DataLoader workers started with spawn (macOS) pickle them
    assert isinstance(back[0].problem, InputError) and str(back[0].problem) == str(samples[0].problem)
    np.testing.assert_array_equal(back[1].boxes, samples[1].boxes)
