"""Alignment onto the ArcFace template, IoU tracking, blur, sample labelling and readers."""

import numpy as np
import pytest

from polyhead.apps.face.align import TEMPLATE_112, align_face, similarity_transform, transform_points
from polyhead.apps.face.result import Face, FaceResult, blur_faces
from polyhead.apps.face.samples import Scene, box_from_points, in_holdout, label_windows, read_landmark_list, read_wider
from polyhead.apps.face.track import Tracker
from polyhead.errors import InputError


def test_alignment_maps_points_onto_template():
    rng = np.random.default_rng(0)
    a = np.deg2rad(23.0)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = TEMPLATE_112 @ (1.7 * r).T + np.array([140.0, 90.0])  # a face seen at another pose and scale
    m = similarity_transform(pts, TEMPLATE_112)
    assert np.abs(transform_points(pts, m) - TEMPLATE_112).max() < 1.0
    noisy = pts + rng.normal(0, 0.3, pts.shape)
    assert np.abs(transform_points(noisy, similarity_transform(noisy, TEMPLATE_112)) - TEMPLATE_112).max() < 1.0


def test_align_face_crop_puts_marked_points_on_template():
    img = np.zeros((300, 300, 3), np.uint8)
    a = np.deg2rad(-15.0)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = TEMPLATE_112 @ (1.5 * r).T + np.array([60.0, 70.0])
    for x, y in pts:
        img[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    crop = align_face(img, pts)
    assert crop.shape == (112, 112, 3)
    for x, y in TEMPLATE_112:
        assert crop[int(round(y)), int(round(x))].max() > 100
    # a zoomed-out crop: the same layout about the centre, the points nearer to it by the margin
    wide = align_face(img, pts, size=128, margin=1.5)
    assert wide.shape == (128, 128, 3)
    for x, y in (TEMPLATE_112 - 56) * (128 / 112 / 1.5) + 64:
        assert wide[int(round(y)), int(round(x))].max() > 100
    with pytest.raises(ValueError, match="margin"):
        align_face(img, pts, margin=0)


def test_tracker_ids_stable_on_moving_box():
    tr = Tracker()
    ids_a, ids_b = [], []
    for t in range(30):
        a = np.array([10 + 3 * t, 20, 60 + 3 * t, 70], np.float32)
        b = np.array([300 - 2 * t, 200, 340 - 2 * t, 240], np.float32)
        boxes = [b, a] if t % 2 else [a, b]  # detection order changes from frame to frame
        ids = tr.update(boxes)
        ida, idb = (ids[1], ids[0]) if t % 2 else (ids[0], ids[1])
        ids_a.append(ida)
        ids_b.append(idb)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    assert tr.update([np.array([500, 500, 520, 520], np.float32)]) == [3]


def test_tracker_smooths_attributes():
    tr = Tracker(alpha=0.5)
    tid = tr.update([np.array([0, 0, 10, 10.0])])[0]
    assert tr.smooth(tid, 20.0, 0.0) == (20.0, 0.0)
    tr.update([np.array([0, 0, 10, 10.0])])
    assert tr.smooth(tid, 40.0, 1.0) == (30.0, 0.5)


def test_blur_changes_only_face_pixels():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (120, 160, 3), np.uint8)
    box = np.array([40.0, 30.0, 90.0, 80.0])
    out = FaceResult([Face(box, 0.9, np.zeros((5, 2)))], (120, 160), blur=True).plot(img)
    changed = np.any(out != img, axis=2)
    grown = np.zeros_like(changed)
    grown[25:86, 35:96] = True  # box grown by 10% per side
    assert changed.any() and not changed[~grown].any()
    assert changed[30:80, 40:90].mean() > 0.8
    assert np.array_equal(blur_faces(img, []), img)


def test_plot_and_json():
    f = Face(np.array([10, 10, 50, 50.0]), 0.97, np.full((5, 2), 30.0), age=31.2, p_female=0.8, track_id=4)
    r = FaceResult([f], (64, 64))
    doc = r.to_json()
    assert doc["count"] == 1 and doc["faces"][0]["gender"] == "female" and doc["faces"][0]["id"] == 4
    assert r.plot(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64, 3)


def test_window_labels():
    pts = np.array([[30, 30], [50, 30], [40, 40], [32, 50], [48, 50]], np.float32)
    box = box_from_points(pts)
    scene = Scene(np.zeros((100, 100, 3), np.uint8), box[None], pts[None])
    shifted = box + np.array([box[2] - box[0]] * 2 + [box[2] - box[0]] * 2) * 0.5
    wins = np.stack([box, shifted, np.array([0, 0, 5, 5], np.float32)])
    label, off, lmk = label_windows(wins.astype(np.float32), scene)
    assert label.tolist() == [1, 0, 0]
    assert np.allclose(off[0], 0) and np.isfinite(lmk[0]).all() and np.isnan(lmk[1]).all()
    assert 0 < lmk[0][0] < lmk[0][1] < 1


def test_readers_and_split(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("a/b.jpg 1 2 3 4 5 6 7 8 9 10\n")
    ((path, pts),) = read_landmark_list(lst)
    assert path == tmp_path / "a/b.jpg" and pts[0].tolist() == [1, 6]
    lst.write_text("a/b.jpg 1 2 3\n")
    with pytest.raises(InputError, match="line 1"):
        read_landmark_list(lst)
    w = tmp_path / "gt.txt"
    w.write_text("0--x/a.jpg\n2\n10 10 20 20 0 0 0 0 0 0\n5 5 3 3 0 0 0 0 0 0\n0--x/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    items = read_wider(w, tmp_path)
    assert [len(b) for _, b in items] == [1, 0] and items[0][1][0].tolist() == [10, 10, 30, 30]
    held = [in_holdout(f"{i}.jpg", 0.1) for i in range(2000)]
    assert 0.07 < np.mean(held) < 0.13 and held == [in_holdout(f"{i}.jpg", 0.1) for i in range(2000)]
