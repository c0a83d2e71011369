"""NIfTI volumes: read with clear errors, slice, write predictions back with the input's geometry,
and turn a label volume into a smoothed, simplified surface mesh.

>>> vol = read_volume("case_0000.nii.gz")                         # doctest: +SKIP
>>> write_like("case_pred.nii.gz", labels, vol)                   # doctest: +SKIP
>>> mesh = surface_mesh(labels == 1, spacing=vol.spacing)          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import InputError
from shared.io.writers import atomic_path, write_mesh


@dataclass
class Volume:
    """A 3-D array with its affine (voxel -> world mm) and voxel spacing."""

    path: Path
    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    header: object = None


def is_nifti(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def read_volume(path: str | Path) -> Volume:
    """Read a 3-D NIfTI; 4-D volumes, broken headers and unreadable data raise InputError."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "volume not found")
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as e:  # nibabel raises many types for bad headers (ImageFileError, ValueError, EOFError...)
        detail = str(e).splitlines()[0].replace(str(path), "").strip(" :")[:80] if str(e) else ""
        reason = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
        raise InputError(path, f"not a readable NIfTI header ({reason})") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(path, f"expected a 3-D volume, got {len(img.shape)}-D shape {tuple(img.shape)}")
    check_volume_budget(path, tuple(int(n) for n in shape), img.get_data_dtype())
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except Exception as e:
        raise InputError(path, f"voxel data unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Volume(path, data, np.asarray(img.affine, np.float64), zooms, img.header)  # type: ignore[arg-type]


MAX_VOXELS = 512**3  # whole volume: ~134 M voxels (float32 working copy: 512 MB)
MAX_SLICE_PIXELS = 4096 * 4096  # one slice: what the model and the mesh see at once


def check_volume_budget(path: str | Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse from the header (before reading a voxel) an empty volume, one above :data:`MAX_VOXELS`, a slice
    above :data:`MAX_SLICE_PIXELS` in any orientation, and voxels that are not one real number (complex, RGB)."""
    dtype = np.dtype(dtype)
    if dtype.fields is not None or dtype.kind == "V":
        raise InputError(path, f"voxels are {dtype.names or dtype} (RGB or a record), expected one number per voxel")
    if dtype.kind == "c":
        raise InputError(path, f"voxels are complex ({dtype}), expected one real number per voxel")
    if dtype.kind not in "biuf":
        raise InputError(path, f"voxel type {dtype} is not a number")
    if min(shape) < 1:
        raise InputError(path, f"volume shape {shape} is empty")
    voxels = int(np.prod(np.asarray(shape, dtype=np.float64)))
    if voxels > MAX_VOXELS:
        raise InputError(path, f"volume shape {shape} is too large ({voxels / 1e6:.0f} M voxels, limit 512^3)")
    biggest = max(shape[0] * shape[1], shape[0] * shape[2], shape[1] * shape[2])
    if biggest > MAX_SLICE_PIXELS:
        raise InputError(
            path,
            f"volume shape {shape} has {biggest / 1e6:.0f} MP slices, above the {MAX_SLICE_PIXELS / 1e6:.0f} MP limit",
        )


def volume_to_uint8(data: np.ndarray) -> np.ndarray:
    """Per-volume 0.5-99.5 percentile window -> 0..255 (how the model sees every slice)."""
    lo, hi = np.percentile(data, (0.5, 99.5))
    return np.clip((data.astype(np.float32) - lo) / max(float(hi - lo), 1e-6) * 255, 0, 255).astype(np.uint8)


def take_slice(data: np.ndarray, index: int, axis: int) -> np.ndarray:
    return np.take(data, index, axis=axis)


def stack_slices(slices: list[np.ndarray], axis: int) -> np.ndarray:
    return np.stack(slices, axis=axis)


def write_like(path: str | Path, labels: np.ndarray, like: Volume) -> Path:
    """Write a label volume as NIfTI with the affine and spacing of ``like`` (atomically)."""
    import nibabel as nib

    header = like.header.copy() if like.header is not None else None
    img = nib.Nifti1Image(labels.astype(np.uint8), like.affine, header)
    img.header.set_data_dtype(np.uint8)
    img.header.set_zooms(like.spacing)
    path = Path(path)
    suffix = ".nii.gz" if str(path).endswith(".nii.gz") else ".nii"
    with atomic_path(path) as tmp:
        real = tmp.with_name(tmp.name + suffix)  # nibabel picks compression from the name
        nib.save(img, str(real))
        real.replace(tmp)
    return path


def surface_mesh(
    binary: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    smooth_iterations: int = 10,
    target_triangles: int | None = 20000,
):
    """Marching cubes (scikit-image) -> Taubin smoothing -> quadric decimation (open3d).

    Returns an ``open3d.geometry.TriangleMesh`` in millimetres (voxel spacing applied), with normals.
    Raises ValueError when the mask is empty.
    """
    from shared.open3d_loader import open3d

    o3d = open3d()
    from skimage.measure import marching_cubes

    binary = np.asarray(binary, bool)
    if not binary.any():
        raise ValueError("the mask is empty: no surface to extract")
    padded = np.pad(binary, 1).astype(np.float32)  # closed surfaces at the volume border
    verts, faces, _, _ = marching_cubes(padded, level=0.5, spacing=spacing)
    verts -= np.asarray(spacing)  # undo the padding offset
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces[:, ::-1]))
    if smooth_iterations:
        mesh = mesh.filter_smooth_taubin(number_of_iterations=smooth_iterations)
    if target_triangles and len(mesh.triangles) > target_triangles:
        mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=target_triangles)
    mesh.remove_degenerate_triangles()
    mesh.remove_unreferenced_vertices()
    mesh.compute_vertex_normals()
    mesh.paint_uniform_color([0.85, 0.35, 0.3])
    return mesh


def write_surface(path: str | Path, binary: np.ndarray, spacing=(1.0, 1.0, 1.0), **kwargs) -> Path:
    """``surface_mesh`` written as .ply / .stl / .obj / .glb."""
    mesh = surface_mesh(binary, spacing, **kwargs)
    mesh.compute_triangle_normals()  # STL needs face normals
    return write_mesh(path, mesh)
