"""Cascade training on Pascal VOC photos (facemask_cc0): the crowd hold-out list is read and its images never
reach window generation or hard-negative mining; the real split leaves exactly the 682 other photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from polyhead.apps.face import mining, samples
from polyhead.apps.face.crowd import CrowdSet, read_split
from polyhead.apps.face.samples import FaceSources, Scene, cached, generate, windows_from_scene
from polyhead.errors import InputError
from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]


def _voc_set(root: Path, n: int = 8) -> list[str]:
    """``n`` generated photos with two face boxes each (VOC XML); returns the image names."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    names = []
    for i in range(n):
        name = f"photo{i}.jpg"
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (96, 128, 3), np.uint8))
        objs = "".join(
            f"<object><name>with_mask</name><bndbox><xmin>{x}</xmin><ymin>10</ymin><xmax>{x + s}</xmax>"
            f"<ymax>{10 + s}</ymax></bndbox></object>"
            for x, s in ((5, 30), (60, 8))  # a 30 px face and an 8 px one (labels windows, gets none itself)
        )
        (root / "annotations" / f"photo{i}.xml").write_text(
            f"<annotation><size><width>128</width><height>96</height></size>{objs}</annotation>"
        )
        names.append(name)
    return names


@pytest.fixture
def voc_yaml(tmp_path):
    names = _voc_set(tmp_path / "voc", 16)
    held = names[:4]
    (tmp_path / "holdout.txt").write_text("# hold-out\n" + "\n".join(held) + "\n")
    y = tmp_path / "faces.yaml"
    y.write_text("voc:\n  - folder: voc\n    exclude: [holdout.txt]\nholdout: 0.4\nseed: 0\n")
    return y, set(names), set(held)


def test_holdout_list_is_read_and_its_images_excluded(voc_yaml):
    y, names, held = voc_yaml
    src = FaceSources.from_yaml(y)
    tr = {p.name for p, _ in src.voc_items("train")}
    va = {p.name for p, _ in src.voc_items("val")}
    assert not (tr | va) & held
    assert tr | va == names - held and not tr & va and tr and va
    # without the exclusion the same folder gives every image: the list is what removes them
    y.write_text("voc: [voc]\nholdout: 0.4\n")
    every = FaceSources.from_yaml(y)
    assert {p.name for s in ("train", "val") for p, _ in every.voc_items(s)} == names


def test_held_out_images_are_never_read_for_windows_or_mining(voc_yaml, monkeypatch, tmp_path):
    y, _, held = voc_yaml
    src = FaceSources.from_yaml(y)
    read: list[str] = []
    real_read = samples._read

    def spy(path):
        read.append(Path(path).name)
        return real_read(path)

    monkeypatch.setattr(samples, "_read", spy)
    for split in ("train", "val"):
        for stage in ("pnet", "onet"):
            out = generate(stage, src, split, progress=False)
            assert len(out) and (out.label == 1).any() and (out.label == 0).any()
        for _ in mining._scenes(src, split, np.random.default_rng(0), 0, 0):
            pass
    assert read, "the spy saw no image: the test would prove nothing"
    assert not set(read) & held
    # the cache key follows the exclusion list: a different list is a different cache
    a = cached("pnet", src, "train", cache_dir=tmp_path / "c")
    (y.parent / "holdout.txt").write_text("photo0.jpg\n")
    b = cached("pnet", FaceSources.from_yaml(y), "train", cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("pnet_train_*.npz"))) == 2 and len(b) >= len(a)


def test_bad_exclusion_lists_are_one_line_errors(voc_yaml):
    y, _, _ = voc_yaml
    (y.parent / "holdout.txt").write_text("not_in_the_set.jpg\n")
    with pytest.raises(InputError, match="holdout.txt.*not in"):
        FaceSources.from_yaml(y).voc_items("train")
    (y.parent / "holdout.txt").unlink()
    with pytest.raises(InputError, match="holdout.txt.*not found"):
        FaceSources.from_yaml(y).voc_items("train")
    y.write_text("voc:\n  - folder: voc\n    exlude: [holdout.txt]\n")
    with pytest.raises(InputError, match="faces.yaml.*'voc' entry"):
        FaceSources.from_yaml(y)


def test_small_faces_label_windows_but_get_none_of_their_own():
    img = np.full((100, 100, 3), 128, np.uint8)
    scene = Scene(img, np.array([[10, 10, 50, 50], [70, 70, 78, 78]], np.float32), np.full((2, 5, 2), np.nan))
    s = windows_from_scene(scene, 12, np.random.default_rng(0), 4, 0, min_face=12)
    assert len(s) and (s.label != 0).all()
    # every face window is around the 40 px face: its box target points back into [10, 50]
    assert np.all(np.abs(s.box) < 1.0)


def test_real_holdout_never_in_the_training_yaml():
    shared_data("face", "facemask_cc0", "annotations")
    src = FaceSources.from_yaml(ROOT / "datasets" / "face-masks.yaml")
    held = read_split(ROOT / "datasets" / "face-crowd-holdout.txt")
    assert len(held) == 171
    used = {p.name for s in ("train", "val") for p, _ in src.voc_items(s)}
    assert not used & held
    crowd_train = {p.name for p, _ in CrowdSet.from_path(ROOT / "datasets" / "face-crowd.yaml").items("train")}
    assert used == crowd_train and len(used) == 682
