"""NIfTI volumes: read with clear errors, slice, write predictions back with the input's geometry,
and turn a label volume into a smoothed, simplified surface mesh.

>>> vol = read_volume("case_0000.nii.gz")                         # doctest: +SKIP
>>> write_like("case_pred.nii.gz", labels, vol)                   # doctest: +SKIP
>>> mesh = surface_mesh(labels == 1, spacing=vol.spacing)          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyhead.errors import InputError
from polyhead.io.writers import atomic_path, write_mesh


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
    path = Path(path)
    img, shape = _open_checked(path)
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except Exception as e:
        raise InputError(path, f"voxel data unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Volume(path, data, np.asarray(img.affine, np.float64), zooms, img.header)  # type: ignore[arg-type]


def volume_shape(path: str | Path) -> tuple[int, int, int]:
    """The 3-D shape of a NIfTI from its header alone, with every check of :func:`read_volume` but the
    voxel data (listing the slices of a dataset reads no voxel)."""
    return _open_checked(Path(path))[1]


def _open_checked(path: Path):
    """``(nibabel image, 3-D shape)`` after the header checks and :func:`check_volume_budget`."""
    import nibabel as nib

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
    shape = tuple(int(n) for n in shape)
    check_volume_budget(path, shape, img.get_data_dtype())
    return img, shape


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


MESH_MAX_VOXELS = 16_000_000  # marching-cubes grid (the mask's bounding box); block-averaged above it
MESH_MAX_TRIANGLES = 400_000  # marching-cubes output (decimated to ~20k after): a coarser grid above it


class NoSurface(ValueError):
    """A mask with no surface worth meshing: empty, or in a volume one voxel thick."""


def _mesh_factors(shape: tuple[int, ...], max_voxels: int, start: int = 1) -> tuple[int, ...]:
    """Per-axis block sizes (>= ``start``, never more than a quarter of a short axis) that bring
    ``shape`` within ``max_voxels``."""
    f = max(1, start)
    while True:
        factors = tuple(max(1, min(f, n // 4)) for n in shape)
        blocks = np.prod([-(-n // k) for n, k in zip(shape, factors, strict=True)])
        if blocks <= max_voxels or all(k == max(1, n // 4) for n, k in zip(shape, factors, strict=True)):
            return factors
        f += 1


def _block_mean(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Share of foreground per block of ``factors`` voxels (float32; the last blocks padded with 0)."""
    if all(k == 1 for k in factors):
        return mask.astype(np.float32)
    padded = np.pad(mask, [(0, -n % k) for n, k in zip(mask.shape, factors, strict=True)])
    (a, b, c), (ka, kb, kc) = (n // k for n, k in zip(padded.shape, factors, strict=True)), factors
    return padded.reshape(a, ka, b, kb, c, kc).mean(axis=(1, 3, 5), dtype=np.float32)


def _estimated_triangles(grid: np.ndarray) -> int:
    """Marching-cubes triangles of ``grid`` at level 0.5, estimated from its mixed cubes (~2.5 each)."""
    inside = grid > 0.5
    a, b, c = (n - 1 for n in inside.shape)
    corners = [inside[i : i + a, j : j + b, k : k + c] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    any_in, all_in = np.logical_or.reduce(corners), np.logical_and.reduce(corners)
    return int(2.5 * np.count_nonzero(any_in & ~all_in))


def surface_mesh(
    binary: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    smooth_iterations: int = 10,
    target_triangles: int | None = 20000,
    max_voxels: int = MESH_MAX_VOXELS,
    max_triangles: int = MESH_MAX_TRIANGLES,
    progress: str | None = None,
    note: Callable[[str], None] | None = None,
):
    """Marching cubes (scikit-image) -> Taubin smoothing -> quadric decimation (open3d).

    Returns an ``open3d.geometry.TriangleMesh`` in millimetres (voxel spacing applied), with normals.
    The work is bounded: marching cubes runs on the mask's bounding box, block-averaged when that
    holds more than ``max_voxels`` voxels or gives more than ``max_triangles`` triangles (each
    reduction is reported through ``note``). ``progress`` names a stage-by-stage progress bar.
    Raises :class:`NoSurface` (a ValueError) when the mask is empty or the volume is one voxel thick.
    """
    from skimage.measure import marching_cubes
    from tqdm import tqdm

    from polyhead.open3d_loader import open3d

    binary = np.asarray(binary, bool)
    if binary.ndim != 3:
        raise NoSurface(f"expected a 3-D mask, got shape {binary.shape}")
    thin = [axis for axis, n in enumerate(binary.shape) if n < 2]
    if thin:
        raise NoSurface(
            f"the volume is one voxel thick along axis {thin[0]} (shape {binary.shape}): no surface worth meshing"
        )
    if not binary.any():
        raise NoSurface("the mask is empty: no surface to extract")
    o3d = open3d()
    bar = tqdm(total=4, desc=progress, disable=progress is None, leave=False, dynamic_ncols=True)
    try:
        lo = [int(np.flatnonzero(binary.any(axis=tuple(a for a in range(3) if a != k)))[0]) for k in range(3)]
        hi = [int(np.flatnonzero(binary.any(axis=tuple(a for a in range(3) if a != k)))[-1]) + 1 for k in range(3)]
        box = binary[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]  # marching cubes only where the mask is
        spacing_a = np.asarray(spacing, np.float64)
        factors = _mesh_factors(box.shape, max_voxels)
        bar.set_postfix_str("marching cubes")
        while True:
            grid = np.pad(_block_mean(box, factors), 1)  # closed surfaces at the border
            coarser = _mesh_factors(box.shape, max_voxels, start=max(factors) + 1)
            if _estimated_triangles(grid) <= max_triangles or coarser == factors:
                break
            factors = coarser  # a surface this detailed would only be decimated away
        step = spacing_a * factors
        verts, faces, _, _ = marching_cubes(grid, level=0.5, spacing=tuple(step))
        if note and any(k > 1 for k in factors):
            note(
                f"mask of {box.size} voxels (bounding box {box.shape}) meshed on {'x'.join(map(str, factors))}-voxel "
                f"blocks (budget {max_voxels} voxels, {max_triangles} triangles)"
            )
        # undo the padding; block centres sit (k - 1) / 2 voxels into their block
        verts += (np.asarray(lo) + (np.asarray(factors) - 1) / 2) * spacing_a - step
        bar.update()
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces[:, ::-1]))
        if smooth_iterations:
            bar.set_postfix_str(f"smoothing {len(faces)} triangles")
            mesh = mesh.filter_smooth_taubin(number_of_iterations=smooth_iterations)
        bar.update()
        if target_triangles and len(mesh.triangles) > target_triangles:
            bar.set_postfix_str(f"simplifying to {target_triangles} triangles")
            mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=target_triangles)
        bar.update()
        bar.set_postfix_str("normals")
        mesh.remove_degenerate_triangles()
        mesh.remove_unreferenced_vertices()
        mesh.compute_vertex_normals()
        mesh.paint_uniform_color([0.85, 0.35, 0.3])
        bar.update()
    finally:
        bar.close()
    return mesh


def write_surface(path: str | Path, binary: np.ndarray, spacing=(1.0, 1.0, 1.0), **kwargs) -> Path:
    """``surface_mesh`` (same keyword options) written as .ply / .stl / .obj / .glb."""
    mesh = surface_mesh(binary, spacing, **kwargs)
    mesh.compute_triangle_normals()  # STL needs face normals
    return write_mesh(path, mesh)
