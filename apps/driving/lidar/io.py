"""Point-cloud readers: KITTI ``.bin`` (float32 x,y,z,reflectance), nuScenes ``.pcd.bin`` (float32 x5),
``.pcd`` / ``.ply`` (open3d), ``.npy`` (N x >=3); a folder or a glob of them in name order.

>>> scan = read_scan("velodyne/000000.bin")     # doctest: +SKIP
>>> scan.points.shape, scan.dropped             # doctest: +SKIP
((120000, 3), 0)
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyhead.errors import InputError

SUFFIXES = (".pcd.bin", ".bin", ".pcd", ".ply", ".npy")
MAX_POINTS = 50_000_000  # ~1.2 GB as float64 x 3; a spinning LiDAR scan holds ~0.1-0.3 M
_HEADER_LIMIT = 1 << 16  # bytes searched for a PLY / PCD header
_PLY_SIZES = {
    **dict.fromkeys(("char", "int8", "uchar", "uint8"), 1),
    **dict.fromkeys(("short", "int16", "ushort", "uint16"), 2),
    **dict.fromkeys(("int", "int32", "uint", "uint32", "float", "float32"), 4),
    **dict.fromkeys(("double", "float64"), 8),
}


@dataclass
class Scan:
    points: np.ndarray  # (N, 3) float64, LiDAR frame
    intensity: np.ndarray | None  # (N,) or None
    path: Path
    dropped: int = 0  # points with NaN / inf removed on reading

    @property
    def name(self) -> str:
        return scan_name(self.path)


def scan_name(path: Path) -> str:
    """A scan's name: its file name without the point-cloud suffix (``a.pcd.bin`` -> ``a``)."""
    n = path.name
    for s in SUFFIXES:
        if n.endswith(s):
            return n[: -len(s)]
    return path.stem


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
        _check_count(path, size // (4 * width))
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
            data = np.load(str(path), allow_pickle=False, mmap_mode="r")  # shape first, data on use
        except Exception as e:
            raise InputError(path, f"not a readable .npy array ({type(e).__name__})") from None
        if data.ndim != 2 or data.shape[1] < 3:
            raise InputError(path, f"expected an (N, >=3) array, got shape {data.shape}")
        _check_count(path, data.shape[0])
        if data.dtype.kind not in "iuf":
            raise InputError(path, f"expected numeric points, got dtype {data.dtype}")
        xyz = data[:, :3].astype(np.float64)
        inten = data[:, 3].astype(np.float64) if data.shape[1] > 3 else None
    elif kind in (".pcd", ".ply"):
        from polyhead.open3d_loader import open3d

        o3d = open3d()

        (_check_ply_header if kind == ".ply" else _check_pcd_header)(path)
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
    """Scan files of a file, folder or glob, in name (sequence) order. An existing path wins over a
    pattern (``run[2]/`` is a folder); hidden files of a folder or glob (temp files) are not scans."""
    text = str(source)
    path = Path(text)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    elif any(c in text for c in "*?["):
        files = [Path(p) for p in sorted(globlib.glob(text)) if Path(p).is_file() and not Path(p).name.startswith(".")]
    else:
        raise InputError(path, "no such file or folder")
    scans = [p for p in files if _suffix(p) in SUFFIXES]
    if not scans:
        raise InputError(source, f"no point-cloud files ({', '.join(SUFFIXES)})")
    return scans


def _check_count(path: Path, n: int) -> None:
    if n > MAX_POINTS:
        raise InputError(path, f"{n} points is more than the {MAX_POINTS} a scan may hold")


def _header_lines(path: Path, end: bytes, fmt: str) -> tuple[list[str], int]:
    """The text lines of a header that ends with the line ``end``, and the header's length in bytes."""
    with open(path, "rb") as f:
        head = f.read(_HEADER_LIMIT)
    lines, pos = [], 0
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            raise InputError(path, f"no {fmt} header (no '{end.decode()}' line in the first {_HEADER_LIMIT} bytes)")
        line = head[pos:nl].strip()
        pos = nl + 1
        lines.append(line.decode("ascii", errors="replace"))
        if line == end or (end == b"DATA" and line.startswith(b"DATA")):
            return lines, pos


def _check_fits(path: Path, n: int, min_bytes: int, available: int, what: str) -> None:
    """Refuse a header whose point count cannot fit in the file (before any allocation)."""
    _check_count(path, n)
    if min_bytes > available:
        raise InputError(
            path, f"header claims {n} {what} ({min_bytes} bytes at least) but the file holds {available} bytes of data"
        )


def _check_ply_header(path: Path) -> None:
    """PLY: every element's count times its smallest row size must fit in the bytes after the header."""
    lines, start = _header_lines(path, b"end_header", "PLY")
    if not lines or lines[0] != "ply":
        raise InputError(path, "not a PLY file (no 'ply' magic line)")
    fmt, elements = None, []  # [name, count, fixed bytes per row, values per row]
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            try:
                count = int(words[2])
            except ValueError:
                raise InputError(path, f"PLY element count '{words[2]}' is not an integer") from None
            if count < 0:
                raise InputError(path, f"PLY element count {count} is negative")
            elements.append([words[1], count, 0, 0])
        elif words[0] == "property" and elements:
            kind = words[2] if words[1:2] == ["list"] and len(words) >= 5 else words[1] if len(words) >= 3 else ""
            if kind not in _PLY_SIZES:
                raise InputError(path, f"PLY property type '{kind}' is not a PLY type")
            elements[-1][2] += _PLY_SIZES[kind]  # a list holds at least its count
            elements[-1][3] += 1
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(path, f"PLY format '{fmt}' is not ascii or binary")
    vertices = next((e[1] for e in elements if e[0] == "vertex"), 0)
    # ascii: every value takes a digit and a separator at least
    need = sum(e[1] * (e[2] if fmt != "ascii" else 2 * e[3]) for e in elements) - (fmt == "ascii")
    _check_fits(path, vertices, max(need, 0), path.stat().st_size - start, "points")


def _check_pcd_header(path: Path) -> None:
    """PCD: POINTS (or WIDTH x HEIGHT) times the row size must fit in the bytes after the DATA line."""
    lines, start = _header_lines(path, b"DATA", "PCD")
    fields: dict[str, list[str]] = {}
    for line in lines:
        words = line.split()
        if words and not words[0].startswith("#"):
            fields[words[0].upper()] = words[1:]
    try:
        sizes = [int(v) for v in fields.get("SIZE", [])]
        counts = [int(v) for v in fields.get("COUNT", ["1"] * len(sizes))]
        width, height = (int(fields.get(k, ["1"])[0]) for k in ("WIDTH", "HEIGHT"))
        n = int(fields["POINTS"][0]) if "POINTS" in fields else width * height
    except (ValueError, IndexError):
        raise InputError(path, "PCD header has a SIZE, COUNT, WIDTH, HEIGHT or POINTS that is not an integer") from None
    if min([n, width, height, *sizes, *counts], default=0) < 0 or len(counts) != len(sizes):
        raise InputError(path, "PCD header has negative or mismatched SIZE / COUNT / point counts")
    _check_count(path, max(n, width * height))
    data = (fields.get("DATA") or ["?"])[0].lower()
    available = path.stat().st_size - start
    if data == "binary":
        _check_fits(path, n, n * sum(s * c for s, c in zip(sizes, counts, strict=True)), available, "points")
    elif data == "ascii":
        _check_fits(path, n, max(0, 2 * n * sum(counts) - 1), available, "points")
    elif data == "binary_compressed":
        with open(path, "rb") as f:
            f.seek(start)
            sizes_raw = f.read(8)
        if len(sizes_raw) < 8:
            raise InputError(path, "compressed PCD data is cut short (no size words)")
        packed, unpacked = np.frombuffer(sizes_raw, "<u4")
        row = sum(s * c for s, c in zip(sizes, counts, strict=True))
        if unpacked != n * row or packed > available - 8:
            raise InputError(
                path, f"compressed PCD sizes ({packed} packed, {unpacked} unpacked) do not match {n} points in the file"
            )
    else:
        raise InputError(path, f"PCD DATA '{data}' is not ascii, binary or binary_compressed")
