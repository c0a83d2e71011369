"""Several datasets in one medical model: the ISIC 2017 reader, the sources YAMLs (derm, fundus) and the
partial labels that keep an image out of the heads its source does not label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.errors import InputError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "medical"
needs = {
    name: pytest.mark.skipif(not (DATA / name).is_dir(), reason=f"needs ../shared/data/medical/{name}")
    for name in ("isic2017", "ph2", "drive", "stare", "hrf")
}


def _write_isic(root: Path, n_train=6, n_val=4, with_masks=False) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for subset, n in (("train", n_train), ("val", n_val)):
        (root / subset / "images").mkdir(parents=True)
        rows, meta = ["image_id,melanoma"], ["image_id,age_approximate,sex"]
        for i in range(n):
            key = f"ISIC_{subset}{i:03d}"
            cv2.imwrite(str(root / subset / "images" / f"{key}.jpg"), rng.integers(0, 255, (64, 64, 3), np.uint8))
            rows.append(f"{key},{float(i % 2)}")
            meta.append(f"{key},{30 + i},{'female' if i % 2 else 'unknown'}")
            if with_masks:
                (root / subset / "masks").mkdir(exist_ok=True)
                m = np.zeros((64, 64), np.uint8)
                m[16:48, 16:48] = 255
                cv2.imwrite(str(root / subset / "masks" / f"{key}_segmentation.png"), m)
        (root / subset / "labels.csv").write_text("\n".join(rows) + "\n")
        (root / subset / "metadata.csv").write_text("\n".join(meta) + "\n")
    y = root / "isic.yaml"
    y.write_text("format: isic2017\npath: .\nclasses: [background, lesion]\ninput: {mode: resize, size: [64, 64]}\n")
    return y


def test_isic_reader_on_a_generated_copy(tmp_path):
    from polyhead.apps.medical.data import MedicalDataset, load_spec

    spec = load_spec(_write_isic(tmp_path, with_masks=True))
    assert spec.diagnosis == ["not_melanoma", "melanoma"]
    train, val = MedicalDataset(spec, "train"), MedicalDataset(spec, "val")
    assert len(train.items) == 6 and len(val.items) == 4  # the official folders
    assert {it.subset for it in val.items} == {"val"}
    it = train.items[1]
    assert it.label == "melanoma" and it.meta == {"age": 31.0, "sex": "female"} and it.mask is not None
    assert train.items[0].meta["sex"] is None  # 'unknown'
    img, mask, _, label = train.load_raw(1)
    assert img.shape == (64, 64, 3) and mask.max() == 1 and label == 1


def test_isic_bad_label_names_the_file_and_line(tmp_path):
    from polyhead.apps.medical.data import list_items, load_spec

    y = _write_isic(tmp_path)
    csv = tmp_path / "val" / "labels.csv"
    csv.write_text(csv.read_text().replace("ISIC_val001,1.0", "ISIC_val001,maybe"))
    with pytest.raises(InputError, match=r"labels\.csv.*line 3: melanoma must be 1\.0 or 0\.0"):
        list_items(load_spec(y))
    (tmp_path / "isic.yaml").write_text((tmp_path / "isic.yaml").read_text() + "split: {val_fraction: 0.2}\n")
    with pytest.raises(InputError, match="official"):
        load_spec(y)


@needs["isic2017"]
def test_isic2017_real_copy_has_the_official_counts():
    from polyhead.apps.medical.data import MedicalDataset, load_spec

    spec = load_spec(REPO / "datasets" / "medical-isic2017.yaml")
    train, val = MedicalDataset(spec, "train"), MedicalDataset(spec, "val")
    assert (len(train.items), len(val.items)) == (2000, 150)
    assert sum(it.label == "melanoma" for it in train.items) == 374
    assert sum(it.label == "melanoma" for it in val.items) == 30
    img, mask, _, _ = val.load_raw(0)
    assert img.shape == (256, 256, 3) and mask is None


@needs["isic2017"]
@needs["ph2"]
def test_derm_yaml_keeps_the_ph2_split_and_isic_official_val():
    from polyhead.apps.medical.data import MedicalDataset, load_spec
    from polyhead.apps.medical.sources import MultiSourceDataset, load_sources_spec

    spec = load_sources_spec(REPO / "datasets" / "medical-derm.yaml")
    ph2 = load_spec(REPO / "datasets" / "medical-ph2.yaml")
    for split in ("train", "val"):
        multi = MultiSourceDataset(spec, split)
        alone = MedicalDataset(ph2, split)
        assert [it.key for it in multi.datasets[0].items] == [it.key for it in alone.items]
    val = MultiSourceDataset(spec, "val")
    assert [len(d.items) for d in val.datasets] == [30, 150]
    assert spec.heads == {
        "diagnosis": ["common_nevus", "atypical_nevus", "melanoma"],
        "melanoma": ["not_melanoma", "melanoma"],
    }
    train = MultiSourceDataset(spec, "train", augment=True)
    assert len(train) == 4 * 120 + 2000  # PH2 repeated 4 times


@needs["drive"]
@needs["stare"]
@needs["hrf"]
def test_fundus_yaml_hold_outs_and_common_scale():
    from polyhead.apps.medical.fov import fov_diameter
    from polyhead.apps.medical.sources import MultiSourceDataset, load_sources_spec

    spec = load_sources_spec(REPO / "datasets" / "medical-fundus.yaml")
    val = MultiSourceDataset(spec, "val")
    drive, stare, hrf = val.datasets
    assert sorted(it.key for it in drive.items) == ["37", "38", "39", "40"]  # as medical-drive.yaml
    assert len(stare.items) == 4 and len(hrf.items) == 9
    train = MultiSourceDataset(spec, "train")
    for tr, va in zip(train.datasets, val.datasets, strict=True):
        assert not {it.key for it in tr.items} & {it.key for it in va.items}
    for ds in (stare, hrf):
        img, mask, fov, _ = ds.load_raw(0)
        assert fov_diameter(fov) == pytest.approx(540, abs=4)
        assert img.shape[:2] == mask.shape == fov.shape
    img, _, fov, _ = drive.load_raw(0)
    assert img.shape[:2] == (584, 565)  # DRIVE's own FOV (~538 px) is within tolerance: not resampled


def _sources_yaml(tmp_path: Path, lesion_yaml: Path, isic: Path, extra: str = "") -> Path:
    y = tmp_path / "derm.yaml"
    y.write_text(
        f"""format: sources
classes: [background, lesion]
labels:
  diagnosis: [benign, malignant]
  melanoma: [not_melanoma, melanoma]
input: {{mode: resize, size: [64, 64]}}
sources:
  lesions:
    data: {lesion_yaml}
    repeat: 2
    labels:
      diagnosis: same
      melanoma: {{benign: not_melanoma, malignant: melanoma}}
  isic:
    data: {isic}
    labels: {{melanoma: same}}
{extra}"""
    )
    return y


def test_an_isic_sample_trains_no_mask_and_no_3_class_loss(tmp_path, lesion_yaml):
    from polyhead.apps.medical.model import build_medical_model
    from polyhead.apps.medical.sources import MultiSourceDataset, load_sources_spec
    from polyhead.train.data import collate_multitask

    spec = load_sources_spec(_sources_yaml(tmp_path, lesion_yaml, _write_isic(tmp_path / "isic")))
    ds = MultiSourceDataset(spec, "train", augment=True)
    n_lesion = 2 * len(ds.datasets[0].items)
    isic = [ds[i] for i in range(n_lesion, len(ds))]
    assert all(s["targets"]["mask"] is None and s["targets"]["diagnosis"] is None for s in isic)
    assert [int(s["targets"]["melanoma"]) for s in isic] == [i % 2 for i in range(len(isic))]
    lesion = ds[0]
    assert lesion["targets"]["mask"] is not None and lesion["targets"]["melanoma"] is not None

    torch.manual_seed(0)
    model = build_medical_model(
        "mobilenetv3_small_100", 2, 2, neck_channels=16, mask_stride=4, image_heads={"melanoma": 2}
    )
    kinds = {t: h.target_kind for t, h in model.heads.items()}
    batch = collate_multitask(isic[:4], kinds)
    assert not batch["present"]["diagnosis"].any() and not batch["present"]["mask"].any()
    losses = model.compute_losses(model(batch["image"]), batch["targets"], batch["present"])
    assert losses["diagnosis"].item() == 0.0 and losses["mask"].item() == 0.0 and losses["melanoma"].item() > 0
    sum(losses.values()).backward()
    grads = [p.grad for p in model.heads["diagnosis"].parameters()]
    assert all(g is None or float(g.abs().sum()) == 0.0 for g in grads)  # the 3-class head learns nothing
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.heads["melanoma"].parameters())


def test_sources_yaml_errors_name_the_file(tmp_path, lesion_yaml):
    from polyhead.apps.medical.sources import load_sources_spec

    isic = _write_isic(tmp_path / "isic")
    y = _sources_yaml(tmp_path, lesion_yaml, isic, "score: [lesions/dice, nothing/here]\n")
    load_sources_spec(y)  # parses; the score names are checked at validation
    good = y.read_text()
    bad = good.replace("melanoma: {benign: not_melanoma, malignant: melanoma}", "melanoma: {benign: nevus}")
    y.write_text(bad)
    with pytest.raises(InputError, match=r"derm\.yaml.*no mapping for source classes \['malignant'\]"):
        load_sources_spec(y)
    y.write_text(bad.replace("melanoma: {benign: nevus}", "melanoma: {benign: nevus, malignant: melanoma}"))
    with pytest.raises(InputError, match=r"\['nevus'\] are not classes of 'melanoma'"):
        load_sources_spec(y)
    y.write_text(good.replace("repeat: 2", "repaet: 2"))
    from polyhead.dataset_yaml import UnknownKeyWarning

    with pytest.warns(UnknownKeyWarning, match=r"unknown key 'sources\.lesions\.repaet' \(did you mean 'repeat'\?\)"):
        load_sources_spec(y)  # the core's rule for unknown keys: a warning naming the nearest, then ignored


def test_train_and_val_on_a_sources_yaml_write_calibration(tmp_path, lesion_yaml):
    import json

    from polyhead.apps.medical.app import MedicalApp

    y = _sources_yaml(tmp_path, lesion_yaml, _write_isic(tmp_path / "isic"))
    out = tmp_path / "run"
    app = MedicalApp()
    rc = app.train(
        data=str(y), epochs=1, batch=4, max_batches=2, encoder="mobilenetv3_small_100", no_pretrained=True,
        neck_channels=16, mask_stride=4, out=str(out),
    )  # fmt: skip
    assert rc == 0
    card = json.loads((out / "best.json").read_text())
    assert card["tasks"] == ["mask", "diagnosis", "melanoma"] and card["labels"] == {
        "melanoma": ["not_melanoma", "melanoma"]
    }
    assert set(card["calibration"]) >= {"diagnosis", "melanoma", "method"}
    assert card["calibration"]["melanoma"]["temperature"] > 0
    assert (out / "best_reliability_melanoma.png").is_file()
    assert {"lesions/dice", "isic/melanoma_macro_auc", "lesions/diagnosis_ece", "score"} <= set(card["metrics"])
    rc = MedicalApp().val(
        data=str(y), weights=str(out / "best.safetensors"), json=str(tmp_path / "v.json"), no_hd95=True
    )
    assert rc == 0
    doc = json.loads((tmp_path / "v.json").read_text())["metrics"]
    cal = doc["calibration"]["melanoma"]
    assert not cal["fitted_here"] and {"ece_before", "ece_after"} <= set(cal)
    assert Path(cal["reliability_png"]).is_file()
    result = MedicalApp().load(str(out / "best.safetensors")).predict_image(np.zeros((64, 64, 3), np.uint8))
    row = MedicalApp().summary_row(result.to_json())
    assert {"diagnosis", "melanoma", "p_melanoma_melanoma", "lesion_area_px"} <= set(row)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "datasets").glob("medical-*.yaml")))
def test_every_medical_yaml_uses_only_known_keys(name):
    import warnings

    from polyhead.apps.medical.training import load_any_spec
    from polyhead.dataset_yaml import UnknownKeyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        try:
            load_any_spec(REPO / "datasets" / name)
        except InputError as e:  # the data may be absent on a clone; a key problem may not
            if "does not exist" not in str(e) and "not found" not in str(e):
                raise
            pytest.skip(f"data absent: {e}")
