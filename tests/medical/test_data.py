from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.apps.medical.data import MedicalDataset, list_items, load_spec, read_labels, read_mask, split_items
from polyhead.errors import InputError
from polyhead.heads.segmentation import IGNORE_INDEX
from polyhead.io import write_image
from tests.conftest import shared_data


def test_folder_dataset_gives_masks_and_labels(lesion_yaml):
    spec = load_spec(lesion_yaml)
    assert spec.diagnosis == ["benign", "malignant"]
    ds = MedicalDataset(spec, "train", augment=True)
    s = ds[0]
    assert s["image"].shape == (3, *spec.input_size)
    assert set(s["targets"]["mask"].unique().tolist()) <= {0, 1, IGNORE_INDEX}  # 255: padding of the affine warp
    assert (s["targets"]["mask"] == 1).sum() > 0
    assert s["targets"]["diagnosis"].item() in (0, 1)


def test_split_is_seeded_disjoint_and_stratified(lesion_yaml):
    spec = load_spec(lesion_yaml)
    items = list_items(spec)
    train, val = split_items(items, spec, "train"), split_items(items, spec, "val")
    assert {i.key for i in train}.isdisjoint({i.key for i in val})
    assert len(train) + len(val) == len(items)
    assert {i.label for i in val} == {"benign", "malignant"}
    assert [i.key for i in split_items(items, spec, "val")] == [i.key for i in val]


def test_mask_of_another_size_names_the_file(tmp_path):
    path = write_image(tmp_path / "m.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(InputError, match=r"m\.png.*12x10 but its image is 20x20"):
        read_mask(path, 2, (20, 20))


def test_jpeg_noisy_binary_mask_is_thresholded(tmp_path):
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    noisy = np.clip(m.astype(int) + np.random.default_rng(0).integers(-30, 30, m.shape), 0, 255).astype(np.uint8)
    path = write_image(tmp_path / "m.jpg", noisy)
    assert (read_mask(path, 2) == (m > 0)).mean() > 0.99


def test_multiclass_mask_with_unknown_id_is_refused(tmp_path):
    path = write_image(tmp_path / "m.png", np.full((8, 8), 7, np.uint8))
    with pytest.raises(InputError, match="out of range"):
        read_mask(path, 3)


def test_unknown_csv_label_names_file_and_line(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label\na,benign\nb,unicorn\n")
    with pytest.raises(InputError, match=r"labels\.csv.*line 3.*unicorn"):
        read_labels(csv, ["benign", "malignant"])
    assert read_labels(csv, None) == {"a": "benign", "b": "unicorn"}


def test_bad_sample_is_skipped_and_reported(lesion_yaml, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(Path(lesion_yaml).parent, root)
    first = sorted((root / "masks").iterdir())[0]
    write_image(first, np.zeros((5, 5), np.uint8))  # wrong size
    ds = MedicalDataset(load_spec(root / "data.yaml"), "all")
    assert ds[0] is None and first.stem in next(iter(ds.bad))
    assert ds[1] is not None


def test_nnunet_layout_slices_volumes(nnunet_yaml):
    spec = load_spec(nnunet_yaml)
    assert spec.classes == ["background", "blob"]
    train, val = MedicalDataset(spec, "train"), MedicalDataset(spec, "val")
    assert len(val) == 12 and len(train) == 24  # 12 slices per case along axis 2
    s = next(train[i] for i in range(len(train)) if train[i]["targets"]["mask"].sum() > 0)
    assert s["image"].shape == (3, 64, 64) and s["targets"]["mask"].dtype == torch.int64


def test_bad_dataset_json_names_the_file(nnunet_yaml, tmp_path):
    import shutil

    root = tmp_path / "nn"
    shutil.copytree(Path(nnunet_yaml).parent, root)
    (root / "dataset.json").write_text('{"labels": {"background": 0, "blob": 5}}')
    with pytest.raises(InputError, match="dataset.json.*label ids"):
        load_spec(root / "data.yaml")


def test_real_drive_pairs_images_masks_and_fov():
    shared_data("medical", "drive")
    spec = load_spec(Path(__file__).parents[2] / "datasets" / "medical-drive.yaml")
    val = MedicalDataset(spec, "val")
    assert [i.key for i in val.items] == ["37", "38", "39", "40"]
    img, mask, fov, _ = val.load_raw(0)
    assert img.shape[:2] == mask.shape == fov.shape
    assert 0.05 < mask[fov > 0].mean() < 0.2  # vessels are ~12% of the field of view
    s = MedicalDataset(spec, "train", augment=True)[0]
    assert (s["targets"]["mask"] == IGNORE_INDEX).any() or s["targets"]["mask"].numel() == 128 * 128


def test_real_ph2_reads_diagnosis_for_every_image():
    shared_data("medical", "ph2")
    spec = load_spec(Path(__file__).parents[2] / "datasets" / "medical-ph2.yaml")
    items = list_items(spec)
    assert len(items) == 150 and all(i.label in spec.diagnosis and i.mask for i in items)
    assert len(split_items(items, spec, "val")) == 30


@pytest.mark.parametrize(
    "name,share",
    [("medical-isbi2012.yaml", (0.15, 0.35)), ("medical-kvasir.yaml", (0.02, 0.6))],
)
def test_real_em_and_polyp_layouts_load(name, share):
    shared_data("medical")
    spec = load_spec(Path(__file__).parents[2] / "datasets" / name)
    ds = MedicalDataset(spec, "all")
    img, mask, _, _ = ds.load_raw(0)
    assert img.shape[:2] == mask.shape and share[0] < mask.mean() < share[1]  # membranes are the thin minority
