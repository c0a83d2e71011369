"""The generator's masks are exact, and survive the R3D file layout unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.apps.floorplan.data import list_items, load_spec, read_r3d
from polyhead.apps.floorplan.synthetic import synthetic_plan, write_r3d_dataset


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_masks_match_geometry(seed):
    plan = synthetic_plan(np.random.default_rng(seed), (320, 288))
    assert plan.image.shape == (320, 288, 3) and plan.image.dtype == np.uint8
    assert set(np.unique(plan.boundary)) == {0, 1, 2}
    assert not (plan.room[plan.boundary > 0]).any(), "room pixels never lie on walls or openings"
    for room in plan.rooms:  # each room fills its cell between the walls, with its own type
        x0, y0, x1, y1 = room.cell
        cell_room = plan.room[y0:y1, x0:x1]
        cell_free = plan.boundary[y0:y1, x0:x1] == 0
        assert (cell_room[cell_free] == room.type_id).all()
        assert room.area_px == int(cell_free.sum()) > 0
    for x0, y0, x1, y1 in plan.doors + plan.windows:
        assert (plan.boundary[y0:y1, x0:x1] == 2).mean() > 0.9
    grey = plan.image.astype(float).mean(2)
    assert grey[plan.boundary == 1].mean() < grey[plan.room > 0].mean() - 20, "walls are drawn darker than floors"


def test_r3d_round_trip(tmp_path):
    yaml_path = write_r3d_dataset(tmp_path, n=3, size=(160, 160), seed=5)
    items = list_items(load_spec(yaml_path), "all")
    assert len(items) == 3
    rng = np.random.default_rng(5)
    for item in items:
        plan = synthetic_plan(rng, (160, 160))
        _, b, r = read_r3d(item)
        assert np.array_equal(b, plan.boundary) and np.array_equal(r, plan.room)
