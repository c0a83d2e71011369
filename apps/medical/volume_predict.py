"""Predict a NIfTI volume slice by slice: a label NIfTI with the input's affine and spacing, a JSON of
volumes per class (mm^3) and the volume-level diagnosis, and optionally a surface mesh.

>>> written, n_slices = predict_volume(app, "case_0000.nii.gz", "runs/medical", "case", mesh="ply")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from apps.medical.volume import read_volume, stack_slices, take_slice, volume_to_uint8, write_like, write_surface
from shared.errors import InputError
from shared.io.writers import write_json


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


def predict_volume(
    app, path: str | Path, out_dir: str | Path, name: str, axis: int = 2, mesh: str | None = None
) -> tuple[list[Path], int]:
    """Write ``<name>_pred.nii.gz``, optional ``<name>_<class>.<mesh>`` and ``<name>.json`` (last, so an
    existing JSON means the volume is complete). Returns the written files and the slice count."""
    out = Path(out_dir)
    vol, labels, diag = segment_volume(app, path, axis)
    voxel_mm3 = float(np.prod(vol.spacing))
    written = [write_like(out / f"{name}_pred.nii.gz", labels, vol)]
    classes = app.predictor.classes
    doc: dict = {
        "source": str(path),
        "shape": list(labels.shape),
        "spacing_mm": list(vol.spacing),
        "axis": axis,
        "classes": {},
    }
    for c, cname in enumerate(classes):
        if c == 0:
            continue
        n = int((labels == c).sum())
        doc["classes"][cname] = {"voxels": n, "volume_mm3": round(n * voxel_mm3, 3)}
        if mesh and n:
            written.append(write_surface(out / f"{name}_{cname}.{mesh}", labels == c, vol.spacing))
            doc["classes"][cname]["mesh"] = written[-1].name
    if diag is not None:
        doc["diagnosis"] = {
            "label": max(diag, key=diag.get),
            "probabilities": diag,
            "how": "mean of the slice-level probabilities",
        }
    written.append(write_json(out / f"{name}.json", doc))
    return written, int(labels.shape[axis])
