"""Atomic writers: every file appears whole or not at all (temp file in the same folder + rename)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()

#: every temporary file of :func:`atomic_path` starts with this (``.gitignore`` lists it)
TEMP_PREFIX = ".polyhead-tmp-"
_HOST = hashlib.sha1(socket.gethostname().encode(errors="replace")).hexdigest()[:6]
_TEMP_RE = re.compile(r"\.polyhead-tmp-([0-9a-f]{6})-([0-9]{1,10})-([0-9a-f]{8})-.+\Z", re.DOTALL)
#: a temp file older than this is stale even if a process with its pid is alive (pid reuse)
STALE_AFTER_S = 24 * 3600.0


def temp_name(name: str) -> str:
    """A temp-file name for the final name ``name``: prefix, host tag, pid, random tag, then ``name``
    (so the suffix, which encoders use to pick a format, is kept; long names are cut from the front).

    >>> temp_name("a.jpg").startswith(TEMP_PREFIX) and temp_name("a.jpg").endswith("-a.jpg")
    True
    """
    head = f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}-"
    room = 250 - len(head.encode())
    tail = name
    while len(tail.encode(errors="surrogateescape")) > room:
        tail = tail[1:]
    return head + tail


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched. The temp file is
    named by :func:`temp_name` (unique per process and call), so concurrent writers of one ``path``
    never share a temp file: the last rename wins and no reader ever sees a half-written ``path``.

    >>> with atomic_path("/tmp/polyhead_doc.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / temp_name(path.name)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    try:
        yield tmp
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_stale_temp(path: str | Path, now: float | None = None) -> bool:
    """True for a file named by :func:`temp_name` whose writer is gone: its pid is dead on this host,
    or it is older than :data:`STALE_AFTER_S`. Directories, symlinks and other names are never stale."""
    path = Path(path)
    m = _TEMP_RE.match(path.name)
    if m is None:
        return False
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if (now if now is not None else time.time()) - st.st_mtime > STALE_AFTER_S:
        return True
    host, pid = m.group(1), int(m.group(2))
    return host == _HOST and pid != os.getpid() and not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a real pid: leave the file to the age rule
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError as e:  # pragma: no cover - e.g. pid out of range
        return e.errno != errno.ESRCH
    return True


def sweep_temp_files(folder: str | Path) -> list[Path]:
    """Remove the stale temp files (:func:`is_stale_temp`) directly inside ``folder``; never recurses,
    never touches a directory, a symlink or a file of another name. Returns what was removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and is_stale_temp(entry.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented, strictly valid JSON (numpy scalars and arrays are converted).

    NaN and +-inf are not JSON: each becomes ``null`` and one warning names the file and the first
    keys concerned, so a result is never silently written with a number it does not have.
    """
    bad: list[str] = []
    clean = _finite_or_null(obj, "", bad)
    if bad:
        import warnings

        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(f"{path}: non-finite value(s) written as null at {', '.join(bad[:3])}{more}", stacklevel=2)
    return write_bytes(path, json.dumps(clean, indent=2, default=_jsonable, allow_nan=False).encode())


def _finite_or_null(o, where: str, bad: list[str]):
    """``o`` with every NaN / inf float (also numpy scalars and arrays) replaced by None; paths go to ``bad``."""
    if isinstance(o, np.ndarray):
        o = o.tolist()
    elif isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float):
        if o != o or o in (float("inf"), float("-inf")):
            bad.append(where or "the top level")
            return None
        return o
    if isinstance(o, dict):
        return {k: _finite_or_null(v, f"{where}.{k}" if where else str(k), bad) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite_or_null(v, f"{where}[{i}]", bad) for i, v in enumerate(o)]
    return o


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_image(path: str | Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB (or single-channel) uint8/uint16 image; format from the suffix."""
    path = Path(path)
    img = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix or ".png", img, params)
    if not ok:
        raise OSError(f"{path}: could not encode image")
    return write_bytes(path, buf.tobytes())


class VideoWriter:
    """H.264 MP4 (yuv420p, faststart) that browsers and ``gr.Video`` play; atomic on ``close``.

    Frames are RGB uint8 of one size; odd sizes are padded by one pixel (H.264 needs even sizes).

    >>> w = VideoWriter("/tmp/polyhead_doc.mp4", fps=10)
    >>> w.write(np.zeros((64, 64, 3), np.uint8)); w.close()
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 23):
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.crf = crf
        self._ctx = None
        self._tmp: Path | None = None
        self._gen = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if self._gen is None:
            import imageio_ffmpeg

            self._size = (w + w % 2, h + h % 2)
            self._ctx = atomic_path(self.path)
            self._tmp = self._ctx.__enter__()
            self._gen = imageio_ffmpeg.write_frames(
                str(self._tmp),
                self._size,
                fps=self.fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=2,
                quality=None,
                ffmpeg_log_level="error",
                output_params=[
                    "-movflags",
                    "+faststart",
                    "-preset",
                    "veryfast",
                    "-crf",
                    str(self.crf),
                    "-threads",
                    "1",
                ],
            )
            self._gen.send(None)
        if (w + w % 2, h + h % 2) != self._size:
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's {self._size}")
        if (w, h) != self._size:
            rgb = cv2.copyMakeBorder(rgb, 0, self._size[1] - h, 0, self._size[0] - w, cv2.BORDER_REPLICATE)
        self._gen.send(np.ascontiguousarray(rgb))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (nothing is written if no frame came)."""
        if self._gen is None:
            return
        self._gen.close()
        self._gen = None
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the partial file."""
        if self._gen is not None:
            with contextlib.suppress(Exception):
                self._gen.close()
            self._gen = None
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_point_cloud(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write an (N, 3) cloud with optional (N, 3) 0..1 colours as PLY/PCD through open3d."""
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    if colors is not None:
        pcd.colors = o3d.utility.Vector3dVector(np.asarray(colors, np.float64))
    with atomic_path(path) as tmp:
        if not o3d.io.write_point_cloud(str(tmp), pcd):
            raise OSError(f"{path}: open3d could not write the point cloud")
    return Path(path)


def write_mesh(path: str | Path, mesh) -> Path:
    """Write an open3d TriangleMesh (PLY, OBJ, STL, GLB/GLTF by suffix)."""
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    with atomic_path(path) as tmp:
        if not o3d.io.write_triangle_mesh(str(tmp), mesh):
            raise OSError(f"{path}: open3d could not write the mesh")
    return Path(path)
