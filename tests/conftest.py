"""Fixtures: generated data, tiny random weights, and the optional real data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from polyhead import offline

offline.apply()  # the test suite is an entry point: nothing it loads may reach the network

os.environ.setdefault("OMP_NUM_THREADS", "2")
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TINY_SIZE = (128, 192)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (it ships beside the repo, not in it)")
    return p


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """Generated road scenes in the BDD100K layout with partial labels; returns the YAML."""
    from polyhead.apps.driving.synthetic import write_bdd_dataset

    return write_bdd_dataset(tmp_path_factory.mktemp("bdd"), n_train=8, n_val=3, size=(180, 320))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A random-init driving model saved as safetensors + card at a small input size."""
    from polyhead.apps.driving.model import CLASSES, build_driving_model
    from polyhead.weights import save_weights

    model = build_driving_model()
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(model, path, {"app": "driving", "classes": CLASSES, "input_size": list(TINY_SIZE)})
    return path


@pytest.fixture()
def road_images(tmp_path) -> Path:
    """A folder of three generated road images."""
    from polyhead.apps.driving.synthetic import road_scene
    from polyhead.io import write_image

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for i in range(3):
        write_image(folder / f"road{i}.jpg", road_scene(rng, (180, 320)).image)
    return folder


@pytest.fixture(scope="session")
def tiny_medical_weights(tmp_path_factory) -> Path:
    """A random-init medical patch model (sliding windows) with a diagnosis head."""
    from tests.medical.conftest import save_tiny

    return save_tiny(tmp_path_factory.mktemp("mwm") / "patch.safetensors", mode="patch", size=(256, 256))
