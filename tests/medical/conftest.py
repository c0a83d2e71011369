"""Medical fixtures: generated folder / nnU-Net datasets and tiny random weights."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lesion_yaml(tmp_path_factory) -> Path:
    from polyhead.apps.medical.synthetic import write_folder_dataset

    return write_folder_dataset(tmp_path_factory.mktemp("lesions"), n=12, size=(96, 128))


@pytest.fixture(scope="session")
def nnunet_yaml(tmp_path_factory) -> Path:
    from polyhead.apps.medical.synthetic import write_nnunet_dataset

    return write_nnunet_dataset(tmp_path_factory.mktemp("nnunet"), n=3, shape=(40, 40, 12))


def save_tiny(path: Path, mode: str = "resize", size=(64, 96), diagnosis=("benign", "malignant")) -> Path:
    from polyhead.apps.medical.model import build_medical_model
    from polyhead.weights import save_weights

    model = build_medical_model("mobilenetv3_small_100", 2, len(diagnosis), neck_channels=16, mask_stride=4)
    card = {
        "app": "medical",
        "classes": ["background", "lesion"],
        "diagnosis_classes": list(diagnosis),
        "input": {"mode": mode, "size": list(size)},
        "input_size": list(size),
    }
    return save_weights(model, path, card)


@pytest.fixture(scope="session")
def tiny_medical(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("mw") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_patch_medical(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("mwp") / "patch.safetensors", mode="patch", size=(64, 64))
