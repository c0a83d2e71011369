"""shared.predict_source with ``predict_many``: images in batches, a bad one skipped alone, artifacts."""

import json

import cv2
import numpy as np

from polyhead.errors import InputError
from polyhead.predict import predict_source


class MeanResult:
    def __init__(self, rgb):
        self.mean = float(rgb.mean())
        self.shape = rgb.shape

    def to_json(self):
        return {"mean": self.mean}

    def plot(self, image):
        return image

    def artifacts(self):
        return {"_thumb.png": np.zeros((4, 4, 3), np.uint8), "extra/{name}_side.png": np.ones((2, 2, 3), np.uint8)}


def _folder(tmp_path, n=5):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        cv2.imwrite(str(src / f"im{i}.png"), np.full((8 + i, 10, 3), 20 * i, np.uint8))
    (src / "broken.png").write_bytes(b"not a png")
    return src


def test_batches_go_through_predict_many(tmp_path):
    src, calls = _folder(tmp_path), []

    def many(images):
        calls.append(len(images))
        return [MeanResult(im) for im in images]

    report = predict_source(src, tmp_path / "out", MeanResult, predict_many=many, batch=2, progress=False)
    # sorted names: [broken, im0] (broken skipped, im0 alone -> predict), [im1, im2], [im3, im4]
    assert calls == [2, 2] and report.frames == 5
    assert [s[0].endswith("broken.png") for s in report.skipped] == [True]
    for i in range(5):
        data = json.loads((tmp_path / "out" / f"im{i}.json").read_text())
        assert data["mean"] == 20 * i
        assert (tmp_path / "out" / f"im{i}_thumb.png").is_file()
        assert (tmp_path / "out" / "extra" / f"im{i}_side.png").is_file()  # "{name}" keys are paths
    assert report.exit_code == 1


def test_a_batch_with_a_bad_image_falls_back_to_one_at_a_time(tmp_path):
    src = _folder(tmp_path)

    def one(rgb):
        if rgb.shape[0] == 10:  # im2 is "bad" for the model
            raise InputError(None, "model rejects this image")
        return MeanResult(rgb)

    def many(images):
        return [one(im) for im in images]

    report = predict_source(src, tmp_path / "out", one, predict_many=many, batch=8, progress=False)
    assert report.frames == 4
    assert sorted(s[0].rsplit("/", 1)[-1] for s in report.skipped) == ["broken.png", "im2.png"]
    assert not (tmp_path / "out" / "im2.json").exists() and (tmp_path / "out" / "im3.json").exists()
