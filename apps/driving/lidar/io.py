"""Point-cloud readers: KITTI ``.bin`` (float32 x,y,z,reflectance), nuScenes ``.pcd.bin`` (float32 x5),
``.pcd`` / ``.ply`` (open3d), ``.npy`` (N x >=3); a folder or a glob of them in name order.

>>> scan = read_scan("velodyne/000000.bin")     # doctest: +SKIP
>>> scan.points.shape, scan.dropped
((120000, 3), 0)
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import InputError

SUFFIXES = (".pcd.bin", ".bin", ".pcd", ".ply", ".npy")


@dataclass
class Scan:
    points: np.ndarray  # (N, 3) float64, LiDAR frame
    intensity: np.ndarray | None  # (N,) or None
    path: Path
    dropped: int = 0  # points with NaN / inf removed on reading

    @property
    def name(self) -> str:
        n = self.path.name
        for s in SUFFIXES:
            if n.endswith(s):
                return n[: -len(s)]
        return self.path.stem


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), path.suffix.lower())


def read_scan(path: str | Path) -> Scan:
    """Read one scan; raises :class:`InputError` for wrong byte lengths, empty clouds, bad files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    kind = _suffix(path)
    if kind in (".bin", ".pcd.bin"):
        width = 5 if kind == ".pcd.bin" else 4
        size = path.stat().st_size
        if size % (4 * width):
            raise InputError(
                path,
                f"{size} bytes is not a whole number of {width}-float32 points "
                f"({'nuScenes x,y,z,intensity,ring' if width == 5 else 'KITTI x,y,z,reflectance'})",
            )
        data = np.fromfile(str(path), dtype=np.float32).reshape(-1, width)
        xyz, inten = data[:, :3].astype(np.float64), data[:, 3].astype(np.float64)
    elif kind == ".npy":
        try:
            data = np.load(str(path), allow_pickle=False)
        except Exception as e:
            raise InputError(path, f"not a readable .npy array ({type(e).__name__})") from None
        if data.ndim != 2 or data.shape[1] < 3:
            raise InputError(path, f"expected an (N, >=3) array, got shape {data.shape}")
        xyz = data[:, :3].astype(np.float64)
        inten = data[:, 3].astype(np.float64) if data.shape[1] > 3 else None
    elif kind in (".pcd", ".ply"):
        from shared.open3d_loader import open3d

        o3d = open3d()

        pcd = o3d.io.read_point_cloud(str(path))
        xyz, inten = np.asarray(pcd.points, dtype=np.float64), None
    else:
        raise InputError(path, f"unsupported point-cloud type '{kind}' (expected {', '.join(SUFFIXES)})")
    finite = np.isfinite(xyz).all(1) & (np.isfinite(inten) if inten is not None else True)
    dropped = int((~finite).sum())
    xyz = xyz[finite]
    inten = inten[finite] if inten is not None else None
    if len(xyz) == 0:
        raise InputError(path, "point cloud is empty" + (f" ({dropped} non-finite points dropped)" if dropped else ""))
    return Scan(xyz, inten, path, dropped)


def list_scans(source: str | Path) -> list[Path]:
    """Scan files of a file, folder or glob, in name (sequence) order."""
    text = str(source)
    if any(c in text for c in "*?["):
        files = [Path(p) for p in sorted(globlib.glob(text)) if Path(p).is_file()]
    else:
        path = Path(text)
        if not path.exists():
            raise InputError(path, "no such file or folder")
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    scans = [p for p in files if _suffix(p) in SUFFIXES]
    if not scans:
        raise InputError(source, f"no point-cloud files ({', '.join(SUFFIXES)})")
    return scans
