import gzip

import numpy as np
import pytest

from polyhead.apps.medical.synthetic import blob_volume, write_nifti
from polyhead.apps.medical.volume import read_volume, surface_mesh, write_like, write_surface
from polyhead.errors import InputError


def test_prediction_keeps_affine_and_spacing(tmp_path):
    image, labels = blob_volume(np.random.default_rng(0), (32, 32, 10))
    src = read_volume(write_nifti(tmp_path / "in.nii.gz", image, spacing=(0.7, 0.7, 2.5)))
    out = read_volume(write_like(tmp_path / "out.nii.gz", labels, src))
    assert np.allclose(out.affine, src.affine) and out.spacing == pytest.approx((0.7, 0.7, 2.5))
    assert (out.data == labels).all()
    assert not list(tmp_path.glob(".*part*"))


def test_4d_and_broken_volumes_are_clear_errors(tmp_path):
    write_nifti(tmp_path / "four.nii.gz", np.zeros((4, 4, 4, 3), np.float32), spacing=(1, 1, 1, 1))
    with pytest.raises(InputError, match=r"four\.nii\.gz.*3-D volume, got 4-D"):
        read_volume(tmp_path / "four.nii.gz")
    (tmp_path / "bad.nii").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match=r"bad\.nii.*NIfTI header"):
        read_volume(tmp_path / "bad.nii")
    good = write_nifti(tmp_path / "cut.nii.gz", np.ones((16, 16, 16), np.float32))
    raw = gzip.decompress(good.read_bytes())
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])  # header fine, voxels missing
    with pytest.raises(InputError, match=r"cut\.nii"):
        read_volume(tmp_path / "cut.nii")


def test_surface_mesh_of_a_blob_is_closed_and_in_millimetres(tmp_path):
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    _, labels = blob_volume(np.random.default_rng(1), (40, 40, 20), radius=10)
    mesh = surface_mesh(labels > 0, spacing=(1.0, 1.0, 2.0), target_triangles=2000)
    assert 0 < len(mesh.triangles) <= 2000
    extent = mesh.get_axis_aligned_bounding_box().get_extent()
    assert 14 < extent[0] < 24  # ~2 x radius 10 mm along the first axis
    for suffix in ("ply", "stl"):
        path = write_surface(tmp_path / f"blob.{suffix}", labels > 0, (1.0, 1.0, 2.0))
        assert len(o3d.io.read_triangle_mesh(str(path)).triangles) > 100
    with pytest.raises(ValueError, match="empty"):
        surface_mesh(np.zeros((8, 8, 8), bool))
