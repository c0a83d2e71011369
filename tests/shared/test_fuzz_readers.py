"""Fuzzing the readers: every input ends in a result or one InputError naming the file."""

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.driving.data import DatasetSpec, load_spec, read_boxes
from shared.errors import InputError
from shared.io import VideoReader, read_image

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_png(h=12, w=17) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))[1].tobytes()


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".png", ".jpg", ".bmp", ".gif", ".tif", ".webp"]))
def test_read_image_random_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("img") / f"x{suffix}"
    path.write_bytes(data)
    try:
        img = read_image(path)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@FUZZ
@given(cut=st.integers(min_value=0, max_value=400), flip=st.integers(min_value=0, max_value=399))
def test_read_image_truncated_or_corrupted_png(tmp_path_factory, cut, flip):
    raw = bytearray(_valid_png())
    raw[flip % len(raw)] ^= 0xFF
    path = tmp_path_factory.mktemp("png") / "x.png"
    path.write_bytes(bytes(raw[: max(1, len(raw) - cut)]))
    try:
        img = read_image(path)
    except InputError as e:
        assert "x.png" in str(e)
    else:
        assert img.shape[2] == 3


@FUZZ
@given(data=st.binary(max_size=2048))
def test_video_reader_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("vid") / "x.mp4"
    path.write_bytes(data)
    with pytest.raises(InputError, match="x.mp4"):
        VideoReader(path)


@FUZZ
@given(text=st.text(max_size=300))
def test_label_json_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("lbl") / "x.json"
    path.write_text(text)
    try:
        boxes = read_boxes(path, DatasetSpec(root=path.parent), (100, 100))
    except InputError as e:
        assert "x.json" in str(e)
    else:
        assert boxes.shape[1] == 5


@FUZZ
@given(
    objects=st.lists(
        st.fixed_dictionaries(
            {
                "category": st.sampled_from(["car", "pedestrian", "cyclist", "truck", "tree", ""]),
                "box2d": st.fixed_dictionaries(
                    {
                        k: st.one_of(st.floats(allow_nan=True), st.integers(-500, 500), st.text(max_size=3))
                        for k in ("x1", "y1", "x2", "y2")
                    }
                ),
            }
        ),
        max_size=6,
    )
)
def test_label_json_random_boxes(tmp_path_factory, objects):
    path = tmp_path_factory.mktemp("box") / "x.json"
    path.write_text(json.dumps({"frames": [{"objects": objects}]}))
    try:
        boxes = read_boxes(path, DatasetSpec(root=path.parent), (100, 200))
    except InputError as e:
        assert "x.json" in str(e)
    else:  # whatever is accepted is a valid box inside the image
        assert (boxes[:, 3] > boxes[:, 1]).all() and (boxes[:, 4] > boxes[:, 2]).all()
        assert (boxes[:, 1:] >= 0).all() and (boxes[:, [1, 3]] <= 200).all() and (boxes[:, [2, 4]] <= 100).all()


@FUZZ
@given(text=st.text(max_size=200))
def test_dataset_yaml_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "d.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="d.yaml|does not exist"):
        load_spec(path)
