"""KITTI calibration (``calib/NNNNNN.txt``): camera projection and LiDAR <-> rectified camera frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyhead.errors import InputError

REQUIRED = {"P2": 12, "R0_rect": 9, "Tr_velo_to_cam": 12}


@dataclass
class KittiCalib:
    P2: np.ndarray  # (3, 4) left colour camera projection (rectified)
    R0: np.ndarray  # (3, 3) rectification
    Tr: np.ndarray  # (3, 4) LiDAR -> reference camera

    def velo_to_rect(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) LiDAR points -> rectified camera frame (x right, y down, z forward)."""
        return (self.R0 @ (self.Tr[:, :3] @ xyz.T + self.Tr[:, 3:4])).T

    def rect_to_velo(self, xyz: np.ndarray) -> np.ndarray:
        ref = np.linalg.solve(self.R0, xyz.T)
        return (self.Tr[:, :3].T @ (ref - self.Tr[:, 3:4])).T

    def project(self, xyz_velo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LiDAR points -> (N, 2) pixel coordinates in image_2 and (N,) depth (metres, z of the camera)."""
        rect = self.velo_to_rect(xyz_velo)
        hom = np.hstack([rect, np.ones((len(rect), 1))]) @ self.P2.T
        depth = rect[:, 2]
        uv = hom[:, :2] / np.where(np.abs(hom[:, 2:3]) < 1e-9, 1e-9, hom[:, 2:3])
        return uv, depth


def read_kitti_calib(path: str | Path) -> KittiCalib:
    """Parse a KITTI object calibration file; raises :class:`InputError` naming a missing key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "calibration file not found")
    values: dict[str, np.ndarray] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError:
            raise InputError(path, f"key '{key.strip()}' has non-numeric values") from None
    for key, n in REQUIRED.items():
        if key not in values:
            raise InputError(path, f"calibration lacks '{key}'")
        if values[key].size != n:
            raise InputError(path, f"'{key}' has {values[key].size} values, expected {n}")
    return KittiCalib(
        values["P2"].reshape(3, 4), values["R0_rect"].reshape(3, 3), values["Tr_velo_to_cam"].reshape(3, 4)
    )
