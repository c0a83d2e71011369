"""WIDER-style crowd protocol: matching with ignore regions, AP and recall at fixed FP/image checked against
hand-computed figures; VOC reading; the facemask_cc0 hold-out split; `face val --protocol wider`."""

import json
from pathlib import Path

import numpy as np
import pytest

from polyhead.apps.face.crowd import (
    CrowdSet,
    evaluate_crowd,
    make_split,
    read_split,
    read_voc,
    read_voc_folder,
    recall_at_fppi,
)
from polyhead.cli import main
from polyhead.errors import InputError
from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]
SPLIT = ROOT / "datasets" / "face-crowd-holdout.txt"
EXAMPLE = ROOT / "apps" / "face" / "examples" / "generated_astronaut.jpg"


def _case():
    """Two images. Image 1: faces A (40 px), B (30 px) and C (10 px: an ignore region); detections: A exactly
    (0.9), a duplicate on A (0.8), one on C (0.7), one on nothing (0.6). Image 2: face D (64 px) found (0.5)."""
    gts = [
        np.array([[0, 0, 40, 40], [100, 0, 130, 30], [200, 0, 210, 10]], np.float32),
        np.array([[0, 0, 64, 64]], np.float32),
    ]
    dets = [
        {
            "boxes": np.array([[0, 0, 40, 40], [1, 1, 41, 41], [200, 0, 210, 10], [300, 300, 340, 340]], np.float32),
            "scores": np.array([0.9, 0.8, 0.7, 0.6], np.float32),
        },
        {"boxes": np.array([[0, 0, 64, 64]], np.float32), "scores": np.array([0.5], np.float32)},
    ]
    return dets, gts


def test_metrics_match_a_hand_computed_case():
    dets, gts = _case()
    m = evaluate_crowd(dets, gts, min_face=20, size_bins=(20, 32, 64), fppi=0.5)
    a = m["all"]
    # counted faces A, B, D; ranked: 0.9 TP, 0.8 FP (duplicate), [0.7 ignored: on C], 0.6 FP, 0.5 TP
    # precision envelope: 1 up to recall 1/3, then 0.5 up to 2/3 -> AP = 1/3 * 1 + 1/3 * 0.5 = 0.5
    assert a["faces"] == 3 and a["tp"] == 2 and a["fp"] == 2
    assert a["ap50"] == pytest.approx(0.5, abs=1e-4)
    assert a["recall"] == pytest.approx(2 / 3, abs=1e-4)
    # 0.5 FP/image over 2 images allows 1 FP: the threshold stops at 0.8 -> recall 1/3
    assert a["recall_at_fppi"] == pytest.approx(1 / 3, abs=1e-4) and a["score_at_fppi"] == pytest.approx(0.8)
    assert a["fp_per_image"] == 1.0
    # bins: B alone in 20-32 (nothing finds it; the 40-px detections are outside the bin and ignored)
    assert m["20-32"]["faces"] == 1 and m["20-32"]["ap50"] == 0.0 and m["20-32"]["fp"] == 0
    # 32-64: A found, the duplicate and the 40-px detection on nothing are that bin's false positives
    assert m["32-64"]["faces"] == 1 and m["32-64"]["tp"] == 1 and m["32-64"]["fp"] == 2
    assert m["32-64"]["ap50"] == pytest.approx(1.0)
    assert m["64+"]["faces"] == 1 and m["64+"]["ap50"] == pytest.approx(1.0) and m["64+"]["fp"] == 0


def test_ignore_regions_are_neither_hits_nor_misses():
    dets, gts = _case()
    strict = evaluate_crowd(dets, gts, min_face=5, size_bins=(5,))["all"]
    # with a 5-px minimum, C counts: the 0.7 detection becomes a true positive and C is no longer ignored
    assert strict["faces"] == 4 and strict["tp"] == 3 and strict["fp"] == 2
    # a detection on an ignore region alone changes nothing
    only = [{"boxes": np.array([[200, 0, 210, 10]], np.float32), "scores": np.array([0.9], np.float32)}]
    m = evaluate_crowd(only, gts[:1], min_face=20)["all"]
    assert m["fp"] == 0 and m["tp"] == 0 and m["faces"] == 2


def test_recall_at_fppi_waits_for_tied_scores():
    # two detections share the score 0.8: the threshold cannot split them, so the second FP counts
    r, thr = recall_at_fppi(np.array([0.9, 0.8, 0.8]), np.array([1, 1, 0]), 2, 1, 0.0)
    assert (r, thr) == (0.5, 0.9)


def _voc(path: Path, w: int, h: int, boxes, stray: str = "") -> None:
    objs = "".join(
        f"<object><name>with_mask</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox>{stray}</object>"
        for b in boxes
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{w}</width><height>{h}</height></size>{objs}</annotation>")


def test_read_voc_clips_and_reports_bad_files(tmp_path):
    f = tmp_path / "a.xml"
    _voc(f, 100, 80, [(10, 10, 101, 50), (5, 5, 20, 30)], stray="file:/stray/path.xml")
    boxes, size = read_voc(f)
    assert size == (80, 100) and boxes.tolist() == [[10, 10, 100, 50], [5, 5, 20, 30]]
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object>")
    with pytest.raises(InputError, match="not a readable Pascal VOC XML") as e:
        read_voc(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    nobox = tmp_path / "nobox.xml"
    nobox.write_text("<annotation><object><name>x</name></object></annotation>")
    with pytest.raises(InputError, match="no <bndbox>"):
        read_voc(nobox)


def test_split_is_seeded_and_by_image():
    names = [f"img{i}.jpg" for i in range(50)]
    a, b = make_split(names, 0.2, 0), make_split(list(reversed(names)), 0.2, 0)
    assert a == b and len(a) == 10 and len(set(a)) == 10
    assert make_split(names, 0.2, 1) != a


def test_committed_holdout_list():
    held = read_split(SPLIT)
    assert len(held) == 171 and all(n.startswith("maksssksksss") and n.endswith(".jpg") for n in held)
    assert "seed=0" in SPLIT.read_text() and "share=0.2" in SPLIT.read_text()


def test_holdout_list_is_what_make_split_gives_on_the_real_set():
    root = shared_data("face", "facemask_cc0", "images")
    names = [p.name for p in root.glob("*.jpg")]
    assert len(names) == 853
    assert set(make_split(names, 0.2, 0)) == read_split(SPLIT)
    cs = CrowdSet.from_path(ROOT / "datasets" / "face-crowd.yaml")
    val, train = cs.items("val"), cs.items("train")
    assert len(val) == 171 and len(train) == 682
    assert not {p.name for p, _ in val} & {p.name for p, _ in train}
    assert sum(len(b) for _, b in val) + sum(len(b) for _, b in train) == 4072


def test_split_list_naming_missing_images_is_an_error(tmp_path):
    _voc(tmp_path / "set" / "annotations" / "a.xml", 50, 50, [(0, 0, 30, 30)])
    (tmp_path / "set" / "images").mkdir()
    (tmp_path / "set" / "images" / "a.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="not in the set"):
        read_voc_folder(tmp_path / "set", {"a.jpg", "zzz.jpg"})
    yml = tmp_path / "c.yaml"
    yml.write_text("voc: set\nsplits: x.txt\n")
    with pytest.raises(InputError, match="unknown key"):
        CrowdSet.from_path(yml)


def test_cli_wider_val_on_a_generated_set(tmp_path, capsys):
    """The shipped cascade on the example portrait: its own detections as ground truth give AP 1, and a
    10-px face is an ignore region (counted as ignored, not missed)."""
    import shutil

    import torch

    from polyhead.apps.face.app import FaceApp
    from polyhead.io import read_image

    torch.set_num_threads(1)
    r = FaceApp().load().detector.detect([read_image(EXAMPLE)])[0]
    assert len(r["boxes"]) >= 1
    h, w = read_image(EXAMPLE).shape[:2]
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    shutil.copy(EXAMPLE, root / "images" / "a.jpg")
    _voc(root / "annotations" / "a.xml", w, h, [tuple(int(round(v)) for v in b) for b in r["boxes"]] + [(5, 5, 15, 15)])
    out = tmp_path / "m.json"
    assert main(["face", "val", "--protocol", "wider", "--data", str(root), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())["metrics"]
    assert doc["images"] == 1 and doc["faces_ignored_under_min"] == 1
    assert doc["bins"]["all"]["ap50"] == pytest.approx(1.0) and doc["bins"]["all"]["fp"] == 0
    assert "| all |" in capsys.readouterr().out


def test_cli_wider_val_on_the_holdout(tmp_path):
    shared_data("face", "facemask_cc0", "annotations")
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "m.json"
    args = ["face", "val", "--protocol", "wider", "--data", str(ROOT / "datasets" / "face-crowd.yaml"), "--limit", "6"]
    assert main([*args, "--json", str(out)]) == 0
    m = json.loads(out.read_text())["metrics"]
    assert m["images"] == 6 and set(m["bins"]) == {"all", "20-32", "32-64", "64+"}
    assert 0 <= m["bins"]["all"]["ap50"] <= 1
    stages = tmp_path / "s.json"
    assert main([*args, "--stages", "--json", str(stages)]) == 0
    s = json.loads(stages.read_text())
    steps = s["steps"]
    # the NMS across levels and the cap only remove P-Net boxes: recall cannot rise through them
    assert steps["pnet_levels"]["all"] >= steps["pnet_nms"]["all"] >= steps["pnet_cap"]["all"]
    assert set(steps) == {"pnet_levels", "pnet_nms", "pnet_cap", "rnet", "onet"}
    assert s["levels"] and s["levels"][0]["window_px"] == pytest.approx(20.0, abs=0.5)
