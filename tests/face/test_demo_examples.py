"""The demo's example photos: real CC0 photos (read from ../shared/data) with their annotated faces,
found by the shipped cascade; skips without the data folder."""

from pathlib import Path

import numpy as np
import pytest

from polyhead.apps.face.app import FaceApp
from polyhead.apps.face.crowd import read_voc
from polyhead.apps.face.demo import CC0_FOLDER, EXAMPLE, EXAMPLES, PHOTOS
from polyhead.io import read_image
from tests.conftest import shared_data


def _faces(photo: Path) -> list[list[float]]:
    return [list(map(float, b)) for b in read_voc(CC0_FOLDER / "annotations" / f"{photo.stem}.xml")[0]]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_every_example_is_an_attributed_real_photo_outside_the_crowd_hold_out():
    shared_data("face", "facemask_cc0", "annotations")
    held_out = Path(__file__).resolve().parents[2] / "datasets" / "face-crowd-holdout.txt"
    held = {ln.strip() for ln in held_out.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    attribution = (EXAMPLES / "ATTRIBUTION.md").read_text()
    assert EXAMPLE == PHOTOS[0] and len(PHOTOS) == 3
    assert not list(EXAMPLES.glob("maksssksksss*")), "third-party photos are read from the data folder, never shipped"
    for photo in PHOTOS:
        assert photo.stem in attribution and "CC0" in attribution
        assert photo.name not in held and photo.stem not in held
        assert read_image(photo).shape[2] == 3 and len(_faces(photo)) >= 4


@pytest.fixture(scope="module")
def app():
    shared_data("face", "facemask_cc0", "annotations")
    return FaceApp().load()


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_the_shipped_cascade_finds_the_annotated_faces(app, photo):
    faces = _faces(photo)
    big = [b for b in faces if b[3] - b[1] >= 20]  # the crowd protocol's minimum size
    found = app.predict_image(read_image(photo)).to_json()["faces"]
    boxes = [f["box_xyxy"] for f in found]
    hits = sum(any(_iou(g, b) >= 0.4 for b in boxes) for g in big)
    assert hits >= np.ceil(0.75 * len(big)), (photo.name, hits, len(big), boxes)
    assert len(found) <= len(faces) + 2, "a few false faces at most"
