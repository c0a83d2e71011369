"""Volume meshes (issue 14 §3 items 2 and 12): class names from the card never leave the output
folder, and meshing is bounded (one-voxel-thick volumes, voxel and triangle budgets, progress)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from polyhead.apps.medical.synthetic import write_nifti
from polyhead.apps.medical.volume import NoSurface, surface_mesh
from polyhead.apps.medical.volume_predict import mesh_names, predict_volume
from polyhead.cli import main

HOSTILE = [
    "background",
    "../../x",
    "a/b",
    "a_b",
    "..",
    "",
    "L" * 400,
    "L" * 401,
    "naïve/élève",
    "/etc/cron.d/evil",
    "..\\..\\win",
    ".hidden",
    "pred",
]


class StripesApp:
    """Stands in for the medical app: every slice is vertical stripes, one per class of ``classes``."""

    def __init__(self, classes: list[str]):
        self.predictor = SimpleNamespace(classes=classes, diagnosis=None)

    def predict_image(self, rgb: np.ndarray) -> SimpleNamespace:
        h, w = rgb.shape[:2]
        stripes = (np.arange(w) * len(self.predictor.classes) // w).astype(np.uint8)
        return SimpleNamespace(mask=np.repeat(stripes[None], h, 0), diagnosis=None)


def files_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, fs in os.walk(root) for f in fs}


def dirs_under(root: Path) -> set[Path]:
    return {Path(d) for d, _, _ in os.walk(root)}


def test_hostile_class_names_stay_inside_the_out_folder(tmp_path):
    src = write_nifti(tmp_path / "in" / "case.nii.gz", np.random.default_rng(0).random((16, 52, 4)).astype(np.float32))
    out = tmp_path / "deep" / "er" / "out"
    before, dirs = files_under(tmp_path), dirs_under(tmp_path)
    written, _ = predict_volume(StripesApp(HOSTILE), src, out, "case", mesh="ply")
    new = files_under(tmp_path) - before
    assert new and all(p.parent == out for p in new), sorted(map(str, new))  # nothing elsewhere
    assert dirs_under(tmp_path) - dirs == {out, out.parent, out.parent.parent}  # no folder made from a name
    meshes = sorted(p.name for p in out.glob("*.ply"))
    assert len(meshes) == len(HOSTILE) - 1  # one mesh per foreground class, none overwrote another
    assert all(not n.startswith(".") and len(n) < 255 and n.isascii() for n in meshes)
    doc = json.loads((out / "case.json").read_text())
    assert sorted(c["mesh"] for c in doc["classes"].values()) == meshes
    assert (out / "case_pred.nii.gz").is_file() and "case_pred.ply" not in meshes
    assert set(written) == new


def test_mesh_names_are_sanitised_and_unique():
    names = mesh_names("case", HOSTILE)
    assert len(set(n.casefold() for n in names.values())) == len(HOSTILE) - 1
    for n in names.values():
        assert n.startswith("case_") and "/" not in n and "\\" not in n and ".." not in n and len(n) <= 120


def test_cli_card_with_a_path_as_class_name_writes_inside_out(tmp_path, capsys):
    from polyhead.apps.medical.model import build_medical_model
    from polyhead.weights import save_weights

    model = build_medical_model("mobilenetv3_small_100", 2, 2, neck_channels=16, mask_stride=4)
    card = {
        "app": "medical",
        "classes": ["background", "../../../../escaped/x"],
        "diagnosis_classes": ["benign", "malignant"],
        "input": {"mode": "resize", "size": [64, 64]},
        "input_size": [64, 64],
    }
    weights = save_weights(model, tmp_path / "w" / "hostile.safetensors", card)
    src = write_nifti(tmp_path / "in" / "case.nii.gz", np.random.default_rng(1).random((24, 24, 4)).astype(np.float32))
    out = tmp_path / "a" / "b" / "c" / "out"
    before, dirs = files_under(tmp_path), dirs_under(tmp_path)
    code = main(
        [
            "medical",
            "predict",
            str(src),
            "--weights",
            str(weights),
            "--out",
            str(out),
            "--threshold",
            "0",
            "--mesh",
            "ply",
        ]
    )
    assert code == 0, capsys.readouterr().err
    new = files_under(tmp_path) - before
    assert {p.parent for p in new} == {out} and (out / "case_escaped_x.ply").is_file()
    assert dirs_under(tmp_path) - dirs == {out, *list(out.parents)[:3]}  # out/ and a/b/c made, nothing else


def test_one_voxel_thick_volume_gets_a_note_not_a_mesh(tmp_path, capsys):
    src = write_nifti(tmp_path / "flat.nii.gz", np.random.default_rng(2).random((400, 400, 1)).astype(np.float32))
    t0 = time.perf_counter()
    written, slices = predict_volume(StripesApp(["background", "lesion"]), src, tmp_path / "out", "flat", mesh="stl")
    assert time.perf_counter() - t0 < 20 and slices == 1
    out = capsys.readouterr().out
    assert f"note: {src}: no mesh for class 'flat_lesion': the volume is one voxel thick along axis 2" in out
    doc = json.loads((tmp_path / "out" / "flat.json").read_text())
    assert doc["classes"]["lesion"]["mesh"] is None and "one voxel thick" in doc["classes"]["lesion"]["mesh_skipped"]
    assert [p.name for p in written] == ["flat_pred.nii.gz", "flat.json"]
    with pytest.raises(NoSurface, match="one voxel thick along axis 0"):
        surface_mesh(np.ones((1, 50, 50), bool))


def ball(shape=(60, 60, 30), radius=20.0, spacing=(1.0, 1.0, 2.0)) -> np.ndarray:
    grid = np.indices(shape).astype(np.float64)
    centre = (np.asarray(shape) - 1) / 2
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    return d2 < radius**2


def test_voxel_budget_meshes_a_coarser_grid_in_the_same_place(capsys):
    mask, spacing = ball(), (1.0, 1.0, 2.0)
    notes: list[str] = []
    fine = surface_mesh(mask, spacing, target_triangles=None)
    coarse = surface_mesh(mask, spacing, target_triangles=None, max_voxels=5000, note=notes.append, progress="ball")
    assert len(notes) == 1 and "blocks" in notes[0] and "budget 5000 voxels" in notes[0]
    assert len(coarse.triangles) < len(fine.triangles) / 4
    for m in (fine, coarse):  # same object, same millimetres: ~40 mm across, centred on the volume
        box = m.get_axis_aligned_bounding_box()
        assert np.allclose(box.get_extent(), 40, atol=3.5), box.get_extent()
        assert np.allclose(box.get_center(), [29.5, 29.5, 29.0], atol=1.5), box.get_center()
    err = capsys.readouterr().err
    assert "ball" in err and "marching cubes" in err and "simplifying" not in err  # a staged progress bar


def test_triangle_budget_bounds_a_noisy_mask():
    noisy = np.random.default_rng(3).random((120, 120, 60)) < 0.5  # the worst case: surface everywhere
    notes: list[str] = []
    t0 = time.perf_counter()
    mesh = surface_mesh(noisy, max_triangles=20_000, note=notes.append)
    assert time.perf_counter() - t0 < 30
    assert notes and "blocks" in notes[0]
    assert 0 < len(mesh.triangles) <= 20_000
