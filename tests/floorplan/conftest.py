"""Floor-plan fixtures: generated plans and tiny random weights (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY = (128, 128)


@pytest.fixture(scope="session")
def tiny_fp_weights(tmp_path_factory) -> Path:
    """A random-init floor-plan model (lcnet_100, narrow decoder) saved with its card at 128x128."""
    from polyhead.apps.floorplan.model import BOUNDARY_CLASSES, ROOM_CLASSES, build_floorplan_model
    from polyhead.weights import save_weights

    model = build_floorplan_model("lcnet_100", neck_channels=24, mid_channels=16)
    path = tmp_path_factory.mktemp("fpw") / "tiny.safetensors"
    card = {"app": "floorplan", "boundary_classes": BOUNDARY_CLASSES, "room_classes": ROOM_CLASSES}
    return save_weights(model, path, {**card, "input_size": list(TINY)})


@pytest.fixture()
def plan_folder(tmp_path) -> Path:
    """Two generated plans, a blank page and a corrupt file."""
    from polyhead.apps.floorplan.synthetic import synthetic_plan
    from polyhead.io import write_image

    folder = tmp_path / "plans"
    rng = np.random.default_rng(3)
    for i in range(2):
        write_image(folder / f"plan{i}.jpg", synthetic_plan(rng, (200, 240)).image)
    write_image(folder / "blank.png", np.full((150, 150, 3), 250, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder
