"""Dataset YAML typos and wrong types are one-line errors in every app, not silently ignored."""

import warnings
from pathlib import Path

import pytest

from polyhead.apps.driving.data import load_spec as driving_spec
from polyhead.apps.face.samples import FaceSources
from polyhead.apps.floorplan.data import load_spec as floorplan_spec
from polyhead.dataset_yaml import UnknownKeyWarning
from polyhead.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def _yaml(tmp_path, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (driving_spec, "path: data\nnames: car\n", "must be a list of names"),
        (driving_spec, "path: data\ncategory_map: {Car: [1]}\n", "maps categories to class names"),
        (floorplan_spec, "path: data\nval_count: abc\n", "'val_count' must be a whole number"),
        (floorplan_spec, "path: data\nsize: 3\n", "'size' must be in"),
        (FaceSources.from_yaml, "holdout: lots\n", "'holdout' must be a number"),
    ],
)
def test_typos_and_wrong_types_name_the_problem(tmp_path, reader, text, message):
    with pytest.raises(InputError, match=message) as e:
        reader(_yaml(tmp_path, text))
    assert "\n" not in str(e.value) and "d.yaml" in str(e.value)


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (driving_spec, "path: data\nnmes: [car]\n", "did you mean 'names'"),
        (floorplan_spec, "path: data\nval_cont: 5\n", "did you mean 'val_count'"),
        (FaceSources.from_yaml, "landmark: [x.txt]\n", "did you mean 'landmarks'"),
    ],
)
def test_typos_are_one_line_warnings_naming_the_nearest_key(tmp_path, reader, text, message):
    with pytest.warns(UserWarning, match=message) as caught:
        try:
            reader(_yaml(tmp_path, text))
        except InputError as e:  # the generated folder holds no data; the typo itself is not the error
            assert "unknown key" not in str(e)
    assert "d.yaml" in str(caught[0].message) and "\n" not in str(caught[0].message)


@pytest.mark.parametrize("name", ["driving.yaml", "bdd100k.yaml", "floorplan.yaml", "face.yaml"])
def test_the_shipped_dataset_yamls_use_only_known_keys(name):
    reader = {"driving": driving_spec, "bdd100k": driving_spec, "floorplan": floorplan_spec}.get(
        name.split(".")[0], FaceSources.from_yaml
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)  # an unknown key fails the test
        try:
            reader(REPO / "datasets" / name)
        except InputError as e:  # the data itself may be absent on a clone; a key problem may not
            assert "must be" not in str(e), str(e)
