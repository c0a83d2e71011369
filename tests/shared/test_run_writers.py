"""Run-level writers read back by the libraries that own the formats: YOLO txt by ultralytics' label
check, COCO results by pycocotools (loadRes + COCOeval), summary.csv by the csv module, KITTI label_2
by a strict line parser; all of them atomic, a skipped input still in the summary."""

import csv
import json
import math

import cv2
import numpy as np
import pytest

from polyhead.errors import InputError
from polyhead.io.boxes import Detections
from polyhead.io.coco_json import CocoResults
from polyhead.io.kitti_label import TYPES, KittiObject, write_kitti_label
from polyhead.io.run_files import FRAME_BASE, RunFiles
from polyhead.io.summary_csv import SummaryTable, is_summary
from polyhead.io.writers import TEMP_PREFIX, VideoWriter
from polyhead.io.yolo_txt import write_yolo_txt
from polyhead.predict import predict_source

NAMES = ["car", "person"]


def boxes_for(rgb: np.ndarray) -> list[dict]:
    """Known boxes per generated image (keyed by its grey level): k boxes for level 40 * k."""
    k = int(round(float(rgb.mean()) / 40))
    h, w = rgb.shape[:2]
    return [
        {"class_id": i % 2, "score": 0.9 - 0.1 * i, "box_xyxy": [4.0 + 6 * i, 3.0 + 2 * i, 20.0 + 6 * i, h - 2.0 - i]}
        for i in range(k)
    ][: max(0, k)] + [{"class_id": 0, "score": 0.5, "box_xyxy": [0.0, 0.0, w / 2, h / 2]}] * (k == 3)


class BoxResult:
    def __init__(self, rgb):
        self.objects = boxes_for(rgb)
        self.shape = rgb.shape

    def to_json(self):
        return {"objects": self.objects}

    def plot(self, image):
        return image


def detections(doc):
    return Detections.from_json(doc.get("objects", []), NAMES)


def summary_row(doc):
    return {**detections(doc).counts(), "objects": len(doc["objects"])}


@pytest.fixture()
def images(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        cv2.imwrite(str(src / f"im{k}.png"), np.full((40 + 8 * k, 64, 3), 40 * k, np.uint8))
    (src / "broken.png").write_bytes(b"not a png")
    return src


def run(src, out, **kw):
    files = RunFiles(out, summary_row, detections, **kw)
    return predict_source(src, out, BoxResult, progress=False, run_files=files), files


def no_temp_files(folder):
    return not [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_yolo_txt_reads_back_through_ultralytics(images, tmp_path):
    from ultralytics.data.utils import verify_image_label

    out = tmp_path / "out"
    run(images, out, save_txt=True)
    for k in range(4):
        im = images / f"im{k}.png"
        label = out / "labels" / f"im{k}.txt"
        assert label.is_file()
        got = verify_image_label((str(im), str(label), "", False, len(NAMES), 0, 0, False))
        lb, shape, msg = got[1], got[2], got[-1]
        assert "ignoring corrupt" not in msg, msg
        h, w = shape
        want = np.array(
            [
                [
                    o["class_id"],
                    (o["box_xyxy"][0] + o["box_xyxy"][2]) / 2 / w,
                    (o["box_xyxy"][1] + o["box_xyxy"][3]) / 2 / h,
                ]
                + [(o["box_xyxy"][2] - o["box_xyxy"][0]) / w, (o["box_xyxy"][3] - o["box_xyxy"][1]) / h]
                for o in boxes_for(cv2.imread(str(im))[..., ::-1])
            ]
        ).reshape(-1, 5)
        if len(want) != len(lb):  # ultralytics drops exact duplicate rows
            want = np.unique(want, axis=0)
        order = np.lexsort(lb.T[::-1]), np.lexsort(want.T[::-1])
        np.testing.assert_allclose(lb[order[0]], want[order[1]], atol=1e-5)
    assert (out / "labels" / "im0.txt").read_text() == ""  # nothing found: an empty label file
    assert no_temp_files(out)


def parse_yolo_line(line: str, with_conf: bool) -> tuple[int, list[float]]:
    """Strict: an integer class, 4 (+1) floats in [0, 1], nothing else."""
    fields = line.split(" ")
    assert len(fields) == (6 if with_conf else 5), line
    cls, values = int(fields[0]), [float(v) for v in fields[1:]]
    assert str(cls) == fields[0] and all(0 <= v <= 1 for v in values), line
    return cls, values


def test_yolo_conf_column_and_clipping(tmp_path):
    dets = Detections([[-10, 5, 30, 25], [90, 0, 120, 10], [50, 50, 50, 60]], [0.8, 0.7, 0.6], [1, 0, 0], NAMES)
    path = write_yolo_txt(tmp_path / "a.txt", dets, width=100, height=50, conf=True)
    lines = path.read_text().splitlines()
    assert len(lines) == 2  # the zero-width box is dropped
    cls, (cx, cy, w, h, conf) = parse_yolo_line(lines[0], with_conf=True)
    assert cls == 1 and math.isclose(cx, 0.15) and math.isclose(w, 0.3) and math.isclose(cy, 0.3) and conf == 0.8
    assert math.isclose(parse_yolo_line(lines[1], True)[1][2], 0.1)  # clipped at the right edge


def test_coco_results_load_and_evaluate_in_pycocotools(images, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "out"
    report, _ = run(images, out, save_coco=True)
    results, tables = out / "coco" / "results.json", out / "coco" / "images.json"
    assert results in report.run_files and tables in report.run_files
    own = COCO(str(tables))
    dt = own.loadRes(str(results))  # the results refer only to images of the table
    assert len(dt.getAnnIds()) == sum(len(boxes_for(cv2.imread(str(images / f"im{k}.png")))) for k in range(4))
    assert [c["name"] for c in own.loadCats(own.getCatIds())] == NAMES

    # ground truth = the known boxes: COCOeval must give AP 1
    gt_doc = json.loads(tables.read_text())
    anns = []
    for im in gt_doc["images"]:
        rgb = cv2.imread(str(images / im["file_name"]))[..., ::-1]
        assert (im["width"], im["height"]) == (rgb.shape[1], rgb.shape[0])
        for o in boxes_for(rgb):
            x1, y1, x2, y2 = o["box_xyxy"]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": im["id"],
                    "category_id": o["class_id"] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    gt = COCO()
    gt.dataset = {**gt_doc, "annotations": anns}
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(str(results)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)
    # image ids: the 1-based position in the sorted input list (broken.png is position 1)
    assert sorted(im["id"] for im in gt_doc["images"]) == [2, 3, 4, 5]


def test_summary_has_a_row_per_input_skipped_ones_too(images, tmp_path):
    out = tmp_path / "out"
    report, _ = run(images, out)
    assert report.exit_code == 1 and out / "summary.csv" in report.run_files
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_name = {r["name"]: r for r in rows}
    assert len(rows) == 5 and set(by_name) == {"broken", "im0", "im1", "im2", "im3"}
    assert by_name["broken"]["status"] == "skipped" and by_name["broken"]["problem"]
    assert by_name["broken"]["car"] == ""  # no figures for a skipped input
    for k in range(4):
        row = by_name[f"im{k}"]
        assert row["status"] == "ok" and row["problem"] == "" and row["file"].endswith(f"im{k}.png")
        assert int(row["objects"]) == len(boxes_for(cv2.imread(str(images / f"im{k}.png"))))
        assert int(row["car"]) + int(row["person"]) == int(row["objects"])
    assert is_summary(out / "summary.csv")


def test_resumed_inputs_keep_their_rows_and_labels(images, tmp_path):
    out = tmp_path / "out"
    run(images, out, save_txt=True)
    (out / "labels" / "im2.txt").unlink()
    files = RunFiles(out, summary_row, detections, save_txt=True)
    report = predict_source(images, out, BoxResult, progress=False, resume=True, run_files=files)
    assert report.resumed == 4
    rows = list(csv.DictReader(open(out / "summary.csv", newline="")))
    assert [r["objects"] for r in rows if r["name"] == "im2"] == ["2"]
    assert (out / "labels" / "im2.txt").read_text().count("\n") == 2  # rebuilt from the JSON


def test_video_frames_get_labels_coco_ids_and_one_summary_row(tmp_path):
    src = tmp_path / "in"
    with VideoWriter(src / "clip.mp4", fps=5) as w:
        for _ in range(3):
            w.write(np.full((48, 64, 3), 80, np.uint8))
    out = tmp_path / "out"
    files = RunFiles(out, summary_row, detections, save_txt=True, save_coco=True)
    predict_source(src, out, BoxResult, progress=False, run_files=files)
    assert sorted(p.name for p in (out / "labels" / "clip").iterdir()) == ["000000.txt", "000001.txt", "000002.txt"]
    (row,) = csv.DictReader(open(out / "summary.csv", newline=""))
    assert row["status"] == "ok" and row["frames"] == "3" and float(row["objects"]) == 2.0  # mean per frame
    ids = sorted(im["id"] for im in json.loads((out / "coco" / "images.json").read_text())["images"])
    assert ids == [FRAME_BASE, FRAME_BASE + 1, FRAME_BASE + 2]


def test_foreign_files_are_refused_before_anything_is_written(images, tmp_path):
    out = tmp_path / "out"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "im0.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # someone's ground truth
    with pytest.raises(InputError, match="holds .txt labels polyhead did not write"):
        run(images, out, save_txt=True)
    assert sorted(p.name for p in out.rglob("*")) == ["im0.txt", "labels"]
    (out / "summary.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a polyhead summary"):
        run(images, out)
    assert (out / "summary.csv").read_text() == "a,b\n1,2\n"


def test_summary_table_csv_round_trip(tmp_path):
    t = SummaryTable()
    t.add("a, b.jpg", "a_b", figures={"car": 2, "share": 0.123456789, "label": 'say "hi"'})
    t.add("c.jpg", "c", "skipped", "zero-byte file")
    rows = list(csv.DictReader(open(t.write(tmp_path / "s.csv"), newline="")))
    assert rows[0] == {
        "file": "a, b.jpg",
        "name": "a_b",
        "status": "ok",
        "problem": "",
        "car": "2",
        "share": "0.123457",
        "label": 'say "hi"',
    }
    assert rows[1]["status"] == "skipped" and rows[1]["car"] == ""
    with pytest.raises(ValueError):
        t.add("x", status="done")


def test_coco_category_mismatch_is_refused():
    c = CocoResults(["car"])
    with pytest.raises(ValueError, match="name classes"):
        c.add(1, "a.jpg", 10, 10, Detections([[0, 0, 1, 1]], [1.0], [0], ["face"]))


# ---------------------------------------------------------------- KITTI label_2


def parse_kitti_line(line: str) -> dict:
    """Strict KITTI label_2 line: 15 fields, or 16 with the score; the types and ranges of the devkit."""
    f = line.split(" ")
    assert len(f) in (15, 16), line
    assert f[0] in TYPES, f[0]
    out = {"type": f[0], "truncated": float(f[1]), "occluded": int(f[2]), "alpha": float(f[3])}
    out["bbox"] = [float(v) for v in f[4:8]]
    out["dimensions"] = [float(v) for v in f[8:11]]
    out["location"] = [float(v) for v in f[11:14]]
    out["rotation_y"] = float(f[14])
    out["score"] = float(f[15]) if len(f) == 16 else None
    assert 0 <= out["truncated"] <= 1 and out["occluded"] in (0, 1, 2, 3)
    assert -math.pi - 0.01 <= out["alpha"] <= math.pi + 0.01 and -math.pi - 0.01 <= out["rotation_y"] <= math.pi + 0.01
    assert all(v >= 0 for v in out["dimensions"])
    x1, y1, x2, y2 = out["bbox"]
    assert x2 >= x1 and y2 >= y1
    return out


def _calib():
    from polyhead.apps.driving.lidar.calib import KittiCalib

    # KITTI 000000's calibration, rounded
    P2 = np.array([[721.5, 0, 609.6, 44.86], [0, 721.5, 172.9, 0.2164], [0, 0, 1, 0.002746]])
    R0 = np.array([[0.9999, 0.0098, -0.0074], [-0.0099, 0.9999, -0.0043], [0.0074, 0.0044, 1.0]])
    Tr = np.array(
        [[0.0075, -0.9999, -0.0006, -0.0041], [0.0148, 0.0007, -0.9999, -0.0763], [0.9999, 0.0075, 0.0148, -0.2718]]
    )
    return KittiCalib(P2, R0, Tr)


def test_kitti_lines_round_trip(tmp_path):
    objs = [
        KittiObject(
            "Car",
            bbox=(100, 120, 300, 240),
            dimensions=(1.5, 1.6, 3.9),
            location=(1, 1.7, 10),
            rotation_y=3.1,
            score=0.5,
        ),
        KittiObject("Pedestrian", dimensions=(1.8, 0.6, 0.6), location=(-3, 1.6, 6), rotation_y=-0.2),
    ]
    lines = write_kitti_label(tmp_path / "000001.txt", objs).read_text().splitlines()
    car, ped = (parse_kitti_line(line) for line in lines)
    assert car["score"] == 0.5 and ped["score"] is None and car["bbox"] == [100, 120, 300, 240]
    assert car["alpha"] == pytest.approx(3.1 - math.atan2(1, 10), abs=0.01)
    with pytest.raises(ValueError, match="KITTI type"):
        KittiObject("car")
    with pytest.raises(ValueError, match="finite"):
        KittiObject("Car", location=(float("nan"), 0, 1)).to_line()


@pytest.mark.parametrize("with_calib", [True, False])
def test_lidar_boxes_to_kitti_camera_frame(with_calib):
    from polyhead.apps.driving.lidar.geometry import Box3D
    from polyhead.apps.driving.lidar.kitti_export import kitti_objects

    calib = _calib() if with_calib else None
    box = Box3D(np.array([12.0, -2.0, -0.8]), np.array([4.2, 1.8, 1.5]), 0.4, 120, "car")
    (obj,) = kitti_objects([box], calib, image_shape=(375, 1242))
    rec = parse_kitti_line(obj.to_line())
    assert rec["type"] == "Car" and rec["dimensions"] == pytest.approx([1.5, 1.8, 4.2], abs=0.01)
    bottom = box.center - [0, 0, 0.75]
    if with_calib:
        np.testing.assert_allclose(obj.location, calib.velo_to_rect(bottom[None])[0], atol=1e-9)
        assert rec["rotation_y"] == pytest.approx(-math.pi / 2 - 0.4, abs=0.02)  # yaw about z -> about camera y
        u1, v1, u2, v2 = rec["bbox"]
        uv, _ = calib.project(np.array([box.center]))
        assert u1 < uv[0, 0] < u2 and v1 < uv[0, 1] < v2  # the centre projects inside the 2-D box
    else:
        assert obj.location == pytest.approx((2.0, 0.8 + 0.75, 12.0)) and rec["bbox"] == [0, 0, 0, 0]
        assert rec["rotation_y"] == pytest.approx(-math.pi / 2 - 0.4, abs=0.01)


def test_lidar_cli_save_kitti(tmp_path):
    from polyhead.apps.driving.lidar.synthetic import street_scan
    from polyhead.cli import main

    scans = tmp_path / "scans"
    scans.mkdir()
    np.save(scans / "000001.npy", street_scan(np.random.default_rng(0))[0].astype(np.float32))
    (scans / "000002.npy").write_bytes(b"broken")
    out = tmp_path / "out"
    assert main(["driving", "lidar", str(scans), "--out", str(out), "--save-kitti"]) == 1
    lines = (out / "label_2" / "000001.txt").read_text().splitlines()
    doc = json.loads((out / "000001.json").read_text())
    assert len(lines) == len(doc["boxes"]) > 0
    for line in lines:
        parse_kitti_line(line)
    rows = {r["name"]: r for r in csv.DictReader(open(out / "summary.csv", newline=""))}
    assert rows["000001"]["status"] == "ok" and rows["000002"]["status"] == "skipped"
    assert not (out / "label_2" / "000002.txt").exists() and no_temp_files(out)
