"""Stable ids for boxes across video frames: ultralytics' BYTETrack behind a small interface.

BYTETrack (Zhang et al., 2022) associates boxes frame to frame by IoU with a Kalman motion model and keeps
lost tracks for a while, so an object keeps its id through short misses. ultralytics ships it; we feed it
the boxes the app already kept after NMS.

>>> t = BoxTracker(conf=0.25)
>>> box = np.array([[10.0, 10.0, 50.0, 40.0]])
>>> [t.update(box + k, np.array([0.9]), np.array([0])).tolist() for k in range(3)]
[[1], [1], [1]]
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np


class _Detections:
    """The few attributes BYTETracker reads from ultralytics' ``Boxes`` (numpy, boolean indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> _Detections:
        return _Detections(self.xyxy[index], self.conf[index], self.cls[index])


class BoxTracker:
    """Per-video tracker: ``update(boxes xyxy, scores, classes) -> ids`` (one int per box, -1 when the box
    did not (yet) start a track).

    ``conf``: the score at which boxes were kept; it is BYTETrack's high threshold and its new-track
    threshold. ``buffer``: frames a lost track is kept at 30 fps (scaled to ``frame_rate``).
    ``match``: BYTETrack's IoU-cost gate for the first association.
    """

    def __init__(self, conf: float = 0.25, frame_rate: float = 30.0, buffer: int = 30, match: float = 0.8):
        from ultralytics.trackers.byte_tracker import BYTETracker

        args = SimpleNamespace(
            tracker_type="bytetrack",
            track_high_thresh=float(conf),
            track_low_thresh=min(0.1, float(conf)),
            new_track_thresh=float(conf),
            track_buffer=max(1, round(buffer * frame_rate / 30.0)),
            match_thresh=float(match),
            fuse_score=True,
        )
        self.tracker = BYTETracker(args)

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
        ids = np.full(len(boxes), -1, np.int64)
        dets = _Detections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(scores, np.float32).reshape(-1),
            np.asarray(classes, np.float32).reshape(-1),
        )
        tracks = self.tracker.update(dets)
        if len(tracks):
            ids[tracks[:, -1].astype(int)] = tracks[:, 4].astype(np.int64)
        return ids


class TrackedFinish:
    """A video ``finish(raw) -> result`` stage that gives each result's boxes track ids.

    ``assign(result, tracker)`` writes the ids into the result; :meth:`new_video` starts fresh ids (the
    batch predictor calls it before every video).
    """

    def __init__(self, finish: Callable, assign: Callable, make_tracker: Callable[[], BoxTracker]):
        self.finish, self.assign, self.make_tracker = finish, assign, make_tracker
        self.tracker = make_tracker()

    def new_video(self) -> None:
        self.tracker = self.make_tracker()

    def __call__(self, raw):
        result = self.finish(raw)
        self.assign(result, self.tracker)
        return result
