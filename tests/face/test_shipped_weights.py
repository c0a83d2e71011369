"""The shipped face weights: card, no pickle, the generated example and a composite with a real face."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyhead.apps.face.app import FaceApp
from tests.conftest import shared_data

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "face.safetensors"


@pytest.fixture(scope="module")
def app():
    if not WEIGHTS.is_file():
        pytest.fail(f"{WEIGHTS} is missing: the app must ship trained weights")
    return FaceApp().load()


def test_card():
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert WEIGHTS.stat().st_size < 16 * 2**20  # cascade + attributes + single-shot detector, float16 parts
    for key in ("detector", "attr_model", "training", "data", "val"):
        assert key in card, key
    for part in ("pnet", "rnet", "onet", "attributes"):
        assert "command" in card["training"][part] and card["training"][part]["wall_time_s"] > 0


def test_generated_example_has_faces(app):
    from polyhead.apps.face.demo import GENERATED, render_example

    assert GENERATED.is_file()
    r = app.predict_image(render_example())
    assert r.to_json()["count"] >= 1
    # the big astronaut portrait sits at x 40..340, y 150..450; her face is in its upper half
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in r.faces]
    assert any(40 < cx < 340 and 150 < cy < 330 for cx, cy in centres)


def test_finds_pasted_real_face(app):
    """A held-out landmark crop's face pasted onto a generated scene is found with its points."""
    from polyhead.apps.face.samples import FaceSources, Scene, box_from_points, composite, iou_matrix

    shared_data("face", "landmarks5", "train.txt")
    src = FaceSources.from_yaml(Path(__file__).resolve().parents[2] / "datasets" / "face.yaml")
    rng = np.random.default_rng(5)
    bg = np.clip(rng.normal(120, 40, (240, 320, 3)), 0, 255).astype(np.uint8)
    bg = cv2.GaussianBlur(bg, (31, 31), 0)
    hits = 0
    items = src.landmark_items("val")[:6]
    for path, pts in items:
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        face = Scene(img, box_from_points(pts)[None], pts[None])
        sc = composite(bg, [face], np.random.default_rng(hits + 11), (360, 480), min_side=70)
        r = app.predict_image(sc.image)
        if len(r.faces) and len(sc.boxes):
            iou = iou_matrix(sc.boxes, np.stack([f.box for f in r.faces]))[0]
            hits += int(iou.max() >= 0.4)
    assert hits >= len(items) - 2


def test_crops_saved(app, tmp_path):
    from polyhead.apps.face.demo import EXAMPLE
    from polyhead.cli import main

    assert main(["face", "predict", str(EXAMPLE), "--out", str(tmp_path), "--save-crops"]) == 0
    crops = list((tmp_path / "crops").glob("*.jpg"))
    assert crops and cv2.imread(str(crops[0])).shape == (112, 112, 3)


def test_val_floors_on_real_data(app, tmp_path, monkeypatch):
    """The card's val figures, re-measured on part of the held-out real data, stay above floors."""
    from polyhead.apps.face.evaluate import eval_attributes, eval_detection, eval_landmarks
    from polyhead.apps.face.samples import FaceSources

    shared_data("face", "dlib_examples", "testing.xml")
    shared_data("face", "utkface")
    src = FaceSources.from_yaml(Path(__file__).resolve().parents[2] / "datasets" / "face.yaml")
    monkeypatch.chdir(tmp_path)  # the alignment cache goes to ./runs
    det = eval_detection(app, src.val_boxes)
    # shipped: recall 1.0, AP 1.0, 0 false positives
    assert det["det_faces"] == 25 and det["det_recall"] >= 0.96 and det["det_ap50"] >= 0.95, det
    assert det["det_false_positives"] <= 5, det
    lmk = eval_landmarks(app, src.landmark_items("val"), limit=120)
    assert lmk["lmk_face_found"] >= 0.97 and lmk["lmk_nme_iod"] <= 0.08, lmk  # shipped: 0.0655 on these 120
    attr = eval_attributes(app, src.utk_items("val"), limit=300)
    # shipped on these 300: age MAE 6.28, gender 81.3%
    assert attr["utk_val_chips"] == 300 and attr["age_mae"] <= 7.5 and attr["gender_acc"] >= 0.77, attr


def test_bench_writes_its_figures(tmp_path):
    from polyhead.cli import main

    out = tmp_path / "bench.json"
    args = ["bench", "face", "--rounds", "1", "--images", "2", "--size", "120", "160", "--crowd", "1"]
    assert main([*args, "--json", str(out)]) == 0
    fig = json.loads(out.read_text())
    for key in ("app_batching_speedup", "cascade_batching_speedup", "one_image_speedup_from_threads"):
        assert fig[key] > 0, key
    assert fig["faces_found_per_batch"] >= 2  # the portrait in each scene
    assert fig["cascade_batched_stage_pyramid+pnet_cpu_s"] > 0 and fig["cascade_single_stage_rnet_s"] >= 0
    # the crowd case: one 1024x768 mosaic of the 3 CC0 photos (14-18 annotated faces; 13.75 found on average)
    assert fig["crowd_input"].startswith("1 mosaics 1024x768")
    from polyhead.apps.face.demo import PHOTOS

    if all(p.is_file() for p in PHOTOS):  # the photos come from ../shared/data
        assert fig["crowd_faces_found_per_image"] >= 8
    assert fig["crowd_app_s_per_image"] > fig["crowd_cascade_s_per_image"] > 0


def test_shipped_single_shot_detector_finds_the_faces_of_a_crowd_photo():
    """The shipped file also holds the single-shot detector (``--detector single``; the cascade is the
    default): on a held-out CC0 crowd photo it finds most of the annotated faces of at least 20 px."""
    from polyhead.apps.face.crowd import CrowdSet
    from polyhead.apps.face.samples import iou_matrix
    from polyhead.io import read_image

    shared_data("face", "facemask_cc0", "images")
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert card["default_detector"] == "cascade" and "single" in card["parts"]
    app = FaceApp().load(detector="single", tasks=["none"])
    assert app.detector_kind == "single"
    items = CrowdSet.from_path(Path(__file__).resolve().parents[2] / "datasets" / "face-crowd.yaml").items("val")
    hits = total = 0
    for path, boxes in items[:10]:
        big = boxes[(boxes[:, 3] - boxes[:, 1]) >= 20]
        if not len(big):
            continue
        found = app.detector.detect([read_image(path)])[0]["boxes"]
        total += len(big)
        if len(found):
            hits += int((iou_matrix(big, found).max(axis=1) >= 0.5).sum())
    assert total >= 10 and hits / total >= 0.7
