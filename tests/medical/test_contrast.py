"""``input.contrast: clahe``: parsed from the YAML, applied to training samples and by the Predictor (so val and
predict see what training saw), written to the card, read back at load; bad values name the file."""

import json
from pathlib import Path

import numpy as np
import pytest

from polyhead.apps.medical import postprocess
from polyhead.apps.medical.data import MedicalDataset, load_spec
from polyhead.apps.medical.sources import load_sources_spec
from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.preprocess import apply_contrast, local_contrast


def test_local_contrast_spreads_a_dull_image_and_keeps_hue():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(110, 6, (128, 128, 1)) * np.array([1.0, 0.6, 0.3]), 0, 255).astype(np.uint8)
    out = local_contrast(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[..., 0].astype(float).std() > 1.5 * img[..., 0].astype(float).std()  # local contrast up
    assert (out[..., 0] >= out[..., 1]).mean() > 0.95 and (out[..., 1] >= out[..., 2]).mean() > 0.95  # still orange
    assert apply_contrast(img, None) is img
    with pytest.raises(ValueError, match="unknown input contrast"):
        apply_contrast(img, "gamma")


def _with_contrast(yaml_path: Path, tmp_path: Path, value: str) -> Path:
    text = yaml_path.read_text().replace("input: {mode: resize", f"input: {{contrast: {value}, mode: resize")
    assert "contrast" in text, "the generated YAML names its input mode"
    out = tmp_path / f"contrast_{value}.yaml"
    out.write_text(text.replace("path: .", f"path: {yaml_path.parent}"))
    return out


def test_yaml_contrast_is_checked(lesion_yaml, tmp_path):
    assert load_spec(_with_contrast(lesion_yaml, tmp_path, "clahe")).input_contrast == "clahe"
    assert load_spec(lesion_yaml).input_contrast is None
    with pytest.raises(InputError, match="input.contrast") as e:
        load_spec(_with_contrast(lesion_yaml, tmp_path, "sharpen"))
    assert "contrast_sharpen.yaml" in str(e.value)


def test_sources_must_agree_on_contrast(lesion_yaml, tmp_path):
    plain, clahe = lesion_yaml, _with_contrast(lesion_yaml, tmp_path, "clahe")
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        f"format: sources\nclasses: [background, lesion]\nsources:\n  a: {{data: {plain}}}\n  b: {{data: {clahe}}}\n"
    )
    with pytest.raises(InputError, match="differ in input.contrast"):
        load_sources_spec(mixed)
    forced = tmp_path / "forced.yaml"
    forced.write_text(mixed.read_text().replace("sources:\n", "input: {contrast: clahe}\nsources:\n"))
    assert {s.spec.input_contrast for s in load_sources_spec(forced).sources} == {"clahe"}


def test_training_samples_and_predictor_apply_it(lesion_yaml, tmp_path, monkeypatch):
    spec = load_spec(_with_contrast(lesion_yaml, tmp_path, "clahe"))
    ds = MedicalDataset(spec, "train")
    raw = ds.load_raw(0)[0]
    assert not np.array_equal(local_contrast(raw), raw)  # the generated lesions are not already equalised
    sample = ds[0]["image"]  # no augmentation: resized, equalised, normalised
    seen = []
    real = postprocess.apply_contrast
    monkeypatch.setattr(postprocess, "apply_contrast", lambda im, c: seen.append(c) or real(im, c))

    class Echo:  # a model that returns its input's mean as the mask logits
        tasks = active_tasks = ["mask"]

        def __call__(self, x, tasks=None):
            import torch

            return {"mask": torch.stack([-x.mean(1), x.mean(1)], 1)}

    pred = postprocess.Predictor(Echo(), spec.classes, mode="resize", size=spec.input_size, contrast="clahe")
    pred.outputs(raw)
    assert seen == ["clahe"] and sample.shape[-2:] == tuple(spec.input_size)


def test_card_carries_contrast_and_predict_reads_it(lesion_yaml, tmp_path):
    from polyhead.apps.medical.app import MedicalApp

    data, out = _with_contrast(lesion_yaml, tmp_path, "clahe"), tmp_path / "run"
    small = ["--encoder", "mobilenetv3_small_100", "--no-pretrained", "--epochs", "1", "--max-batches", "1"]
    assert main(["medical", "train", "--data", str(data), *small, "--mask-stride", "4", "--out", str(out)]) == 0
    card = json.loads((out / "best.json").read_text())
    assert card["input"]["contrast"] == "clahe"
    app = MedicalApp().load(out / "best.safetensors")
    assert app.predictor.contrast == "clahe"
