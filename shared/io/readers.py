"""Sources: an image, a folder, a glob, a video file or a camera index -> frames with their names.

>>> for frame in iter_frames("street.jpg"):          # doctest: +SKIP
...     print(frame.name, frame.image.shape)        # RGB uint8, (h, w, 3)
"""

from __future__ import annotations

import glob as globlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shared.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
MAX_PIXELS = 250_000_000  # refused above this (a decompression bomb or a scan no model needs)
DOWNSCALE_PIXELS = 40_000_000  # decoded at a reduced size above this, with a warning
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


@dataclass
class Frame:
    """One RGB uint8 image and where it came from."""

    image: np.ndarray
    name: str  # file stem, or "<video stem>_<frame index>"
    path: Path | None = None
    index: int = 0  # frame index within a video (0 for images)
    fps: float | None = None  # set for video frames


@dataclass
class SourceItem:
    """One file (image or video) or a camera of a resolved source."""

    path: Path | None
    kind: str  # "image" | "video" | "camera"
    camera: int | None = None

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else f"camera{self.camera}"


def resolve_source(source: str | Path | int, suffixes: set[str] | None = None) -> list[SourceItem]:
    """List the items of a source; raise :class:`InputError` if it is missing, empty or unsupported.

    Files of a folder or glob are sorted by name; files with other suffixes in a folder are ignored.
    """
    allowed = suffixes or (IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return [SourceItem(None, "camera", int(source))]
    text = str(source)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        items = [_item(p) for p in files if p.suffix.lower() in allowed]
        if not items:
            raise InputError(text, "the pattern matches no supported files")
        return items
    path = Path(text)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        items = [_item(p) for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in allowed]
        if not items:
            raise InputError(path, f"folder holds no supported files ({', '.join(sorted(allowed))})")
        return items
    if path.suffix.lower() not in allowed:
        raise InputError(path, f"unsupported file type '{path.suffix}' (expected one of {', '.join(sorted(allowed))})")
    return [_item(path)]


def _item(path: Path) -> SourceItem:
    return SourceItem(path, "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image")


def read_image(path: str | Path) -> np.ndarray:
    """Read any common image as RGB uint8 (grayscale, RGBA, palette and 16-bit are converted;
    EXIF orientation is applied). Raises :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    if path.stat().st_size == 0:
        raise InputError(path, "zero-byte file")
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    size = _header_size(path)
    if size is not None:
        w, h = size
        if w * h > MAX_PIXELS:
            raise InputError(
                path, f"image is {w}x{h} ({w * h / 1e6:.0f} MP), above the {MAX_PIXELS / 1e6:.0f} MP limit"
            )
        if w * h > DOWNSCALE_PIXELS:  # decode at 1/2, 1/4 or 1/8 to bound memory
            factor = next(f for f in (2, 4, 8) if w * h / f**2 <= DOWNSCALE_PIXELS or f == 8)
            flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[
                factor
            ]
            warnings.warn(f"{path}: {w}x{h} image decoded at 1/{factor} size to bound memory", stacklevel=2)
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, flags)
    if img is None:
        img = _read_with_pillow(path)
    if img is None:
        raise InputError(path, "not a readable image (corrupt or unsupported format)")
    return to_rgb8(img, bgr=True)


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding the pixels, if Pillow can tell."""
    try:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # we apply our own limits
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


def _read_with_pillow(path: Path) -> np.ndarray | None:
    """GIF and a few formats OpenCV builds may lack."""
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[:, :, ::-1].copy()
    except Exception:
        return None


def to_rgb8(img: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any 2-D or 3-D uint8/uint16/float image -> (h, w, 3) RGB uint8."""
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if bgr else img


class VideoReader:
    """Frames of a video file (or a camera) as RGB uint8, with fps, size and frame count.

    Raises :class:`InputError` if the file cannot be opened or yields no frame.
    """

    def __init__(self, source: str | Path | int):
        self.source = source
        self.name = f"camera{source}" if isinstance(source, int) else Path(source).stem
        if not isinstance(source, int):
            p = Path(source)
            if not p.is_file():
                raise InputError(p, "no such file")
            if p.stat().st_size == 0:
                raise InputError(p, "zero-byte file")
        self._cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not self._cap.isOpened():
            raise InputError(source, "cannot open video (corrupt or unsupported codec)")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(source, "video has no decodable frames")
        self._first = first
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        self.height, self.width = first.shape[:2]
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[np.ndarray]:
        frame = self._first
        try:
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = self._cap.read()
                if not ok:
                    break
        finally:
            self._cap.release()

    def __len__(self) -> int:
        return self.frame_count or 0


def iter_frames(source: str | Path | int) -> Iterator[Frame]:
    """Every frame of a source; a bad image raises :class:`InputError` when reached.

    For batch jobs that must skip bad items, iterate :func:`resolve_source` and read each item.
    """
    for item in resolve_source(source):
        yield from iter_item(item)


def iter_item(item: SourceItem) -> Iterator[Frame]:
    """Frames of one resolved item."""
    if item.kind == "image":
        yield Frame(read_image(item.path), item.name, item.path)
        return
    reader = VideoReader(item.camera if item.kind == "camera" else item.path)
    for i, rgb in enumerate(reader):
        yield Frame(rgb, f"{reader.name}_{i:06d}", item.path, i, reader.fps)
