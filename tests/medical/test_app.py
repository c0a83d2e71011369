import json
from pathlib import Path

import numpy as np
import pytest

from polyhead.apps.medical.app import MedicalApp
from polyhead.apps.medical.synthetic import blob_volume, lesion_image, write_nifti
from polyhead.cli import main
from polyhead.io import read_image, write_image
from polyhead.io.writers import TEMP_PREFIX


@pytest.fixture()
def lesion_folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    for i in range(2):
        write_image(folder / f"l{i}.jpg", lesion_image(rng, (120, 160))[0])
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_predict_image_gives_mask_regions_and_diagnosis(tiny_medical):
    app = MedicalApp().load(tiny_medical, threshold=0.0)  # every pixel foreground: one region
    result = app.predict_image(lesion_image(np.random.default_rng(1), (100, 130))[0])
    doc = result.to_json()
    assert result.mask.shape == (100, 130)
    assert doc["classes"]["lesion"]["count"] == 1 and doc["classes"]["lesion"]["area_px"] == 13000
    assert set(doc["diagnosis"]["probabilities"]) == {"benign", "malignant"}
    assert sum(doc["diagnosis"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert result.artifacts()["_mask.png"].max() == 255


def test_grey_and_16bit_images_work(tiny_medical):
    app = MedicalApp().load(tiny_medical)
    assert app.predict_image(np.zeros((50, 70), np.uint8)).mask.shape == (50, 70)
    assert app.predict_image(np.full((50, 70), 4000, np.uint16)).mask.shape == (50, 70)


def test_patch_model_runs_sliding_windows_on_large_images(tiny_patch_medical):
    app = MedicalApp().load(tiny_patch_medical, tta=True)
    result = app.predict_image(np.random.default_rng(0).integers(0, 255, (150, 210, 3), dtype=np.uint8))
    assert result.mask.shape == (150, 210)


def test_cli_predict_folder_skips_bad_file_and_writes_masks(tiny_medical, lesion_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["medical", "predict", str(lesion_folder), "--weights", str(tiny_medical), "--out", str(out)])
    assert code == 1  # partial success: one input was bad
    assert "broken.png" in capsys.readouterr().err
    for stem in ("l0", "l1"):
        mask = read_image(out / f"{stem}_mask.png")
        assert mask.shape[:2] == (120, 160)
        doc = json.loads((out / f"{stem}.json").read_text())
        assert {"classes", "diagnosis", "source"} <= set(doc)
    assert not list(out.glob("broken*")) and not list(out.glob(f"{TEMP_PREFIX}*"))


def test_cli_predict_volume_writes_nifti_json_and_mesh(tiny_medical, tmp_path):
    from polyhead.apps.medical.volume import read_volume

    image, _ = blob_volume(np.random.default_rng(0), (32, 32, 6))
    src = write_nifti(tmp_path / "vols" / "case_0000.nii.gz", image, spacing=(0.8, 0.8, 3.0))
    out = tmp_path / "out"
    args = ["medical", "predict", str(src.parent), "--weights", str(tiny_medical), "--out", str(out)]
    assert main([*args, "--threshold", "0", "--mesh", "ply"]) == 0
    pred = read_volume(out / "case_0000_pred.nii.gz")
    assert pred.data.shape == (32, 32, 6) and np.allclose(pred.affine, read_volume(src).affine)
    doc = json.loads((out / "case_0000.json").read_text())
    assert doc["classes"]["lesion"]["volume_mm3"] == pytest.approx(32 * 32 * 6 * 0.8 * 0.8 * 3.0, rel=1e-4)
    assert (out / "case_0000_lesion.ply").stat().st_size > 0
    (tmp_path / "vols" / "broken.nii.gz").write_bytes(b"junk")
    assert main([*args, "--resume"]) == 1  # the broken volume is skipped, the done one not redone
    import csv

    rows = {Path(r["file"]).name: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["case_0000.nii.gz"]["status"] == "ok" and rows["broken.nii.gz"]["status"] == "skipped"


def _small_train(data, epochs: int) -> list[str]:
    """A quick from-scratch run of a small encoder (the ImageNet start is tested in tests/shared)."""
    small = ["--encoder", "mobilenetv3_small_100", "--no-pretrained", "--epochs", str(epochs)]
    return ["medical", "train", "--data", str(data), *small]


def test_train_then_val_on_generated_lesions(lesion_yaml, tmp_path, capsys):
    out = tmp_path / "run"
    args = _small_train(lesion_yaml, epochs=2)
    assert main([*args, "--batch", "4", "--mask-stride", "4", "--neck-channels", "16", "--out", str(out)]) == 0
    card = json.loads((out / "best.json").read_text())
    assert card["tasks"] == ["mask", "diagnosis"] and card["data"]["val_items"] == 4  # 2 per label
    assert {"dice", "diagnosis_accuracy", "score"} <= set(card["metrics"])
    capsys.readouterr()
    assert (
        main(
            [
                "medical",
                "val",
                "--data",
                str(lesion_yaml),
                "--weights",
                str(out / "best.safetensors"),
                "--json",
                str(tmp_path / "v.json"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "v.json").read_text())["metrics"]
    assert "lesion" in metrics["per_class"] and metrics["diagnosis"]["n"] == 4


def test_mask_only_training_drops_the_diagnosis_head(lesion_yaml, tmp_path):
    out = tmp_path / "maskonly"
    args = _small_train(lesion_yaml, epochs=1)
    assert main([*args, "--tasks", "mask", "--mask-stride", "4", "--max-batches", "1", "--out", str(out)]) == 0
    card = json.loads((out / "best.json").read_text())
    assert list(card["model"]["heads"]) == ["mask"] and card["diagnosis_classes"] == []


def test_mask_loss_weights_reach_the_card_and_the_head(lesion_yaml, tmp_path):
    from polyhead.weights import load_model

    out = tmp_path / "lovasz"
    args = [*_small_train(lesion_yaml, epochs=1), "--tasks", "mask", "--max-batches", "1", "--out", str(out)]
    assert main([*args, "--dice-weight", "2.0", "--lovasz-weight", "0.5"]) == 0
    spec = json.loads((out / "best.json").read_text())["model"]["heads"]["mask"]
    assert spec["dice_weight"] == 2.0 and spec["lovasz_weight"] == 0.5
    head = load_model(out / "best.safetensors")[0].heads["mask"]
    weights = {type(fn).__name__: w for w, fn in head.extra_losses}
    assert weights == {"DiceLoss": 2.0, "LovaszLoss": 0.5}


def test_keep_largest_and_min_area_drop_stray_regions():
    from polyhead.apps.medical.postprocess import Predictor

    probs = np.zeros((2, 60, 60), np.float32)
    probs[1, 10:40, 10:40] = 0.9  # the lesion
    probs[1, 50:53, 50:53] = 0.9  # a stray blob
    probs[0] = 1 - probs[1]
    assert Predictor(None, ["bg", "lesion"], keep_largest=True).mask_from_probs(probs).sum() == 900
    assert Predictor(None, ["bg", "lesion"], min_area=10).mask_from_probs(probs).sum() == 900
    assert Predictor(None, ["bg", "lesion"]).mask_from_probs(probs).sum() == 909


def test_demo_volume_example_becomes_a_mesh(tiny_medical, tmp_path):
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    from polyhead.apps.medical.demo import EXAMPLES, volume_to_mesh

    app = MedicalApp().load(tiny_medical)
    mesh_path, doc = volume_to_mesh(app, str(EXAMPLES / "generated_blob_labels.nii.gz"), tmp_path)
    assert mesh_path.endswith(".ply") and doc["how"] == "label volume meshed directly"
    assert doc["foreground_voxels"] > 500 and doc["volume_mm3"] == pytest.approx(doc["foreground_voxels"] * 2.0)
    assert len(o3d.io.read_triangle_mesh(mesh_path).triangles) > 100


def test_export_to_onnx_then_predict_the_same_mask(tiny_medical, tmp_path):
    onnx = tmp_path / "m.onnx"
    assert main(["medical", "export", "--weights", str(tiny_medical), "--out", str(onnx)]) == 0
    rgb = lesion_image(np.random.default_rng(3), (90, 120))[0]
    torch_result = MedicalApp().load(tiny_medical).predict_image(rgb)
    onnx_result = MedicalApp().load(onnx).predict_image(rgb)
    assert (torch_result.mask == onnx_result.mask).mean() > 0.99
    for name, p in torch_result.diagnosis.items():
        assert onnx_result.diagnosis[name] == pytest.approx(p, abs=1e-3)
