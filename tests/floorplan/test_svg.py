"""CubiCasa5K layout: SVG polygons rasterised into the same masks; malformed SVGs name file and element."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.apps.floorplan.data import PlanItem, cubicasa_room_class, parse_cubicasa_svg, read_plan
from polyhead.apps.floorplan.synthetic import synthetic_plan
from polyhead.errors import InputError
from polyhead.io import write_image

NAMES = {1: "Closet", 2: "Bath", 3: "LivingRoom", 4: "Bedroom", 5: "Entry", 6: "Outdoor"}


def _rect(x0, y0, x1, y1) -> str:
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def cubicasa_svg(plan) -> str:
    """A CubiCasa-style model.svg of a generated plan: Space polygons, Wall groups with nested openings."""
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" version="1.1"><g id="Model" class="Model"><g class="Floor">']
    for k, room in enumerate(plan.rooms):
        ys, xs = np.nonzero(plan.room == room.type_id)
        x0, y0, x1, y1 = room.cell
        inner = (plan.room[y0:y1, x0:x1] == room.type_id).nonzero()
        ry0, ry1, rx0, rx1 = inner[0].min() + y0, inner[0].max() + y0 + 1, inner[1].min() + x0, inner[1].max() + x0 + 1
        parts.append(
            f'<g id="space{k}" class="Space {NAMES[room.type_id]}"><polygon points="{_rect(rx0, ry0, rx1, ry1)}"/></g>'
        )
    h, w = plan.boundary.shape
    ys, xs = np.nonzero(plan.boundary == 1)
    for y in range(h):  # walls as horizontal pixel runs: exact, if verbose
        row = np.nonzero(plan.boundary[y] == 1)[0]
        if len(row):
            breaks = np.split(row, np.nonzero(np.diff(row) > 1)[0] + 1)
            for run in breaks:
                parts.append(f'<g class="Wall"><polygon points="{_rect(run[0], y, run[-1] + 1, y + 1)}"/></g>')
    for kind, rects in (("Door", plan.doors), ("Window", plan.windows)):
        for x0, y0, x1, y1 in rects:
            parts.append(f'<g class="Wall"><polygon points="{_rect(x0, y0, x1, y1)}"/>')
            parts.append(f'<g class="{kind} Swing"><polygon points="{_rect(x0, y0, x1, y1)}"/></g></g>')
    parts.append("</g></g></svg>")
    return "\n".join(parts)


def test_svg_rasterises_like_the_plan(tmp_path):
    plan = synthetic_plan(np.random.default_rng(4), (200, 200))
    folder = tmp_path / "cubicasa" / "high_quality" / "1234"
    folder.mkdir(parents=True)
    (folder / "model.svg").write_text(cubicasa_svg(plan))
    write_image(folder / "F1_scaled.png", plan.image)
    rgb, boundary, room = read_plan(
        PlanItem("1234", folder / "F1_scaled.png", "cubicasa", {"svg": folder / "model.svg"})
    )
    assert rgb.shape[:2] == boundary.shape == room.shape == (200, 200)
    for cls in (1, 2):
        inter = ((boundary == cls) & (plan.boundary == cls)).sum()
        union = ((boundary == cls) | (plan.boundary == cls)).sum()
        assert inter / union > 0.9, f"boundary class {cls}"
    agree = (room == plan.room)[plan.room > 0].mean()
    assert agree > 0.95


def test_room_names():
    assert [cubicasa_room_class(n) for n in ("Bedroom", "LivingRoom", "Bath", "Outdoor", "Entry", "Undefined")] == [
        4,
        3,
        2,
        6,
        5,
        0,
    ]


def test_broken_svg_names_file(tmp_path):
    svg = tmp_path / "model.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><g class="Wall"><polygon points="0,0 1,1')
    with pytest.raises(InputError, match="model.svg"):
        parse_cubicasa_svg(svg)


def test_bad_polygon_names_element(tmp_path):
    svg = tmp_path / "model.svg"
    svg.write_text('<svg><g id="w7" class="Wall External"><polygon points="0,0 10,abc 5,5"/></g></svg>')
    with pytest.raises(InputError) as err:
        parse_cubicasa_svg(svg)
    assert "model.svg" in str(err.value) and 'class="Wall External" id="w7"' in str(err.value)
    svg.write_text('<svg><g id="s1" class="Space Bedroom"></g></svg>')
    with pytest.raises(InputError, match="Space Bedroom.*no <polygon>"):
        parse_cubicasa_svg(svg)
