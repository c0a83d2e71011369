"""Face training reads COCO JSON: boxes, and 5 landmarks where the category has 5 keypoints."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from polyhead.apps.face.samples import FaceSources, box_scenes, windows_from_scene


def _coco_faces(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "p.jpg"), np.full((120, 160, 3), 90, np.uint8))
    ann = {
        "images": [{"id": 1, "file_name": "p.jpg"}],
        "categories": [
            {"id": 1, "name": "face", "keypoints": ["le", "re", "nose", "lm", "rm"]},
            {"id": 2, "name": "hand"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [40, 30, 48, 48],
                "keypoints": [54, 48, 2, 74, 48, 2, 64, 58, 2, 56, 68, 2, 72, 68, 2],
            },
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 20, 30, 30]},  # a face without points
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [5, 5, 20, 20]},  # not a face
        ],
    }
    (tmp_path / "faces.json").write_text(json.dumps(ann))
    y = tmp_path / "face.yaml"
    y.write_text("coco: [{json: faces.json, images: imgs}]\nseed: 0\n")
    return y


def test_coco_faces_become_scenes_with_landmarks(tmp_path: Path):
    src = FaceSources.from_yaml(_coco_faces(tmp_path))
    assert src.coco == [((tmp_path / "faces.json").resolve(), (tmp_path / "imgs").resolve())]
    (scene,) = box_scenes(src)
    np.testing.assert_array_equal(scene.boxes, [[40, 30, 88, 78], [100, 20, 130, 50]])  # the hand is left out
    np.testing.assert_array_equal(scene.points[0], [[54, 48], [74, 48], [64, 58], [56, 68], [72, 68]])
    assert np.isnan(scene.points[1]).all()
    s = windows_from_scene(scene, 24, np.random.default_rng(0), 4, 0)
    faces = s.label == 1
    with_points = np.isfinite(s.lmk).all(1)
    assert faces.sum() >= 4 and with_points.sum() >= 1 and not (with_points & ~faces).any()
    assert ((s.lmk[with_points] > 0) & (s.lmk[with_points] < 1)).all()  # landmarks inside their windows


def test_the_coco_key_leaves_other_caches_alone(tmp_path: Path):
    assert "coco" not in repr(FaceSources()) and "coco" not in repr(FaceSources.from_yaml(_coco_faces(tmp_path)))
