"""Video boxes keep stable ids (BYTETrack), per-video resets, mask PNGs per image."""

from __future__ import annotations

import json

import cv2
import numpy as np

from polyhead.apps.driving.postprocess import DrivingResult
from polyhead.tracking import BoxTracker, TrackedFinish


def test_two_moving_objects_keep_their_ids_through_a_missed_frame():
    t = BoxTracker(conf=0.25)
    ids = []
    for k in range(12):
        a = [10 + 3 * k, 20, 60 + 3 * k, 60]
        b = [300 - 4 * k, 100, 360 - 4 * k, 180]
        boxes = np.array([a, b] if k != 6 else [b], np.float32)  # a is missed in frame 6
        ids.append(t.update(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes))).tolist())
    first = ids[0]
    assert len(set(first)) == 2 and min(first) >= 0
    assert all(i == first for k, i in enumerate(ids) if k != 6)
    assert ids[6] == [first[1]]


def test_new_video_restarts_ids():
    made = []

    def make():
        made.append(BoxTracker())
        return made[-1]

    def assign(result, tracker):
        result.track_ids = tracker.update(result.boxes, result.scores, result.classes)

    def finish(raw):
        return DrivingResult(
            (100, 100),
            boxes=np.array([[10.0, 10, 40, 40]]),
            scores=np.array([0.9]),
            classes=np.array([0]),
            names=["car"],
        )

    stage = TrackedFinish(finish, assign, make)
    r1 = stage(None)
    stage.new_video()
    r2 = stage(None)
    assert len(made) == 2 and r1.track_ids.tolist() == [1] and r2.track_ids.tolist() == [1]
    doc = r2.to_json()
    assert doc["objects"][0]["track_id"] == 1


def test_video_json_carries_track_ids_and_images_get_mask_pngs(tmp_path):
    """Six consecutive real CamVid frames (15 fps) as a clip: the shipped model's cars get track ids."""
    from polyhead.apps.driving.app import DrivingApp
    from tests.conftest import shared_data

    app = DrivingApp().load()
    images = sorted(shared_data("driving", "camvid", "val", "images").glob("0016E5_079*.jpg"))[:6]
    frames = [cv2.imread(str(p)) for p in images]
    h, w = frames[0].shape[:2]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    cv2.imwrite(str(tmp_path / "still.jpg"), frames[0])
    out = tmp_path / "out"
    app.predict(str(tmp_path / "*.*"), out)
    frame_docs = sorted((out / "clip").glob("*.json"))
    assert frame_docs, list(out.iterdir())
    objects = [o for p in frame_docs for o in json.loads(p.read_text())["objects"]]
    assert objects and all("track_id" in o for o in objects)
    assert any(o["track_id"] is not None for o in objects)
    still = json.loads((out / "still.json").read_text())
    assert all("track_id" not in o for o in still["objects"])
    m = cv2.imread(str(out / "still_drivable.png"), cv2.IMREAD_UNCHANGED)
    assert m is not None and m.shape == (h, w) and set(np.unique(m)) <= {0, 255}
    assert cv2.imread(str(out / "still_lane.png"), cv2.IMREAD_UNCHANGED).shape == (h, w)
