"""Predict a NIfTI volume slice by slice: a label NIfTI with the input's affine and spacing, a JSON of
volumes per class (mm^3) and the volume-level diagnosis, and optionally a surface mesh.

>>> written, n_slices = predict_volume(app, "case_0000.nii.gz", "runs/medical", "case", mesh="ply")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from polyhead.apps.medical.volume import (
    NoSurface,
    read_volume,
    stack_slices,
    take_slice,
    volume_to_uint8,
    write_like,
    write_surface,
)
from polyhead.errors import InputError
from polyhead.io.writers import write_json
from polyhead.predict import safe_name
from polyhead.results import SCHEMA_VERSION


def segment_volume(app, path: str | Path, axis: int = 2, progress: bool = True):
    """(Volume, labels uint8 of the same shape, mean diagnosis probabilities or None)."""
    vol = read_volume(path)
    if not 0 <= axis <= 2:
        raise InputError(path, f"slice axis must be 0, 1 or 2, got {axis}")
    scaled = volume_to_uint8(vol.data)
    labels, diag = [], []
    for i in tqdm(range(scaled.shape[axis]), desc=f"{Path(path).name} slices", disable=not progress, leave=False):
        s = take_slice(scaled, i, axis)
        result = app.predict_image(np.repeat(s[..., None], 3, -1))
        labels.append(result.mask if result.mask is not None else np.zeros(s.shape, np.uint8))
        if result.diagnosis:
            diag.append(list(result.diagnosis.values()))
    mean_diag = None
    if diag:
        names = app.predictor.diagnosis or [f"class_{i}" for i in range(len(diag[0]))]
        mean_diag = dict(zip(names, np.mean(diag, 0).round(5).tolist(), strict=True))
    return vol, stack_slices(labels, axis), mean_diag


def mesh_names(name: str, classes: list[str]) -> dict[int, str]:
    """File stems ``<name>_<class>`` for every foreground class: each through ``safe_name`` (a class
    named ``../../x`` cannot leave the folder), unique (case-insensitively; a clash gets the class
    index), and never ``<name>_pred`` (the label NIfTI's stem).

    >>> mesh_names("case", ["background", "../../x", "a/b", "a_b", "", "pred", "a_b_3"])
    {1: 'case_x', 2: 'case_a_b', 3: 'case_a_b_3', 4: 'case_item', 5: 'case_pred_5', 6: 'case_a_b_3_6'}
    """
    taken = {f"{name}_pred".casefold()}
    out = {}
    for c, cname in enumerate(classes):
        if c == 0:
            continue
        stem = base = safe_name(f"{name}_{safe_name(str(cname))}")
        k = 0
        while stem.casefold() in taken:
            stem = safe_name(f"{base[:100]}_{c}" + (f"_{k}" if k else ""))
            k += 1
        out[c] = stem
        taken.add(stem.casefold())
    return out


def predict_volume(
    app, path: str | Path, out_dir: str | Path, name: str, axis: int = 2, mesh: str | None = None
) -> tuple[list[Path], int]:
    """Write ``<name>_pred.nii.gz``, optional ``<name>_<class>.<mesh>`` and ``<name>.json`` (last, so an
    existing JSON means the volume is complete). Returns the written files and the slice count.

    Class names come from the model card, so they reach a path only through :func:`mesh_names`
    (sanitised, unique, inside ``out_dir``). Meshing is bounded (see ``surface_mesh``): a volume one
    voxel thick gets no mesh and a one-line note; a large mask is meshed on a coarser grid, noted."""
    out = Path(out_dir)
    vol, labels, diag = segment_volume(app, path, axis)
    voxel_mm3 = float(np.prod(vol.spacing))
    written = [write_like(out / f"{name}_pred.nii.gz", labels, vol)]
    classes = app.predictor.classes
    doc: dict = {
        "source": str(path),
        "schema_version": SCHEMA_VERSION,
        "shape": list(labels.shape),
        "spacing_mm": list(vol.spacing),
        "axis": axis,
        "classes": {},
    }
    files = mesh_names(name, classes)
    for c, cname in enumerate(classes):
        if c == 0:
            continue
        n = int((labels == c).sum())
        doc["classes"][cname] = {"voxels": n, "volume_mm3": round(n * voxel_mm3, 3)}
        if mesh and n:
            try:
                written.append(
                    write_surface(
                        out / f"{files[c]}.{mesh}",
                        labels == c,
                        vol.spacing,
                        progress=f"{Path(path).name} mesh {files[c]}",
                        note=lambda text: tqdm.write(f"note: {path}: {text}"),
                    )
                )
                doc["classes"][cname]["mesh"] = written[-1].name
            except NoSurface as e:
                tqdm.write(f"note: {path}: no mesh for class {files[c]!r}: {e}")
                doc["classes"][cname]["mesh"] = None
                doc["classes"][cname]["mesh_skipped"] = str(e)
    if diag is not None:
        doc["diagnosis"] = {
            "label": max(diag, key=diag.get),
            "probabilities": diag,
            "how": "mean of the slice-level probabilities",
        }
    written.append(write_json(out / f"{name}.json", doc))
    return written, int(labels.shape[axis])
