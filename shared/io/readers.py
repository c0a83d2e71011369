"""Sources: an image, a folder, a glob, a video file or a camera index -> frames with their names.

>>> for frame in iter_frames("street.jpg"):          # doctest: +SKIP
...     print(frame.name, frame.image.shape)        # RGB uint8, (h, w, 3)
"""

from __future__ import annotations

import contextlib
import glob as globlib
import os
import re
import struct
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from polyhead.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
MAX_PIXELS = 250_000_000  # refused above this (a decompression bomb or a scan no model needs)
DOWNSCALE_PIXELS = 40_000_000  # decoded at a reduced size above this, with a warning
MAX_FILE_BYTES = 1 << 30  # image files above 1 GiB are refused before a byte is read
VIDEO_MAX_PIXELS = DOWNSCALE_PIXELS  # per video frame (8K is 33 MP): every frame is decoded at full size
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
        """The file name without its suffix (both of ``.nii.gz``), or ``camera<N>``."""
        if self.path is None:
            return f"camera{self.camera}"
        low = self.path.name.lower()
        double = next((s for s in _DOUBLE_SUFFIXES if low.endswith(s) and len(low) > len(s)), None)
        return self.path.name[: -len(double)] if double else self.path.stem

    @property
    def label(self) -> str:
        """How messages name the item: its path, or ``camera <N>``."""
        return str(self.path) if self.path is not None else f"camera {self.camera}"


_DOUBLE_SUFFIXES = (".nii.gz",)


def resolve_source(source: str | Path | int, suffixes: set[str] | None = None) -> list[SourceItem]:
    """List the items of a source; raise :class:`InputError` if it is missing, empty or unsupported.

    An existing file or folder always wins: ``photo[1].jpg``, a folder ``run[2]`` or a folder named
    ``2024`` are taken literally. Otherwise digits are a camera index and ``* ? [`` make a glob, whose
    leading folders are taken literally when they exist (``run[2]/*.jpg``). Files of a folder or glob
    are sorted by name; files with other suffixes in a folder are ignored.
    """
    allowed = suffixes or (IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if isinstance(source, int) and not isinstance(source, bool):
        return [SourceItem(None, "camera", source)]
    text = str(source)
    if not Path(text).exists() and text.isdigit():
        return [SourceItem(None, "camera", int(text))]
    if not Path(text).exists() and any(c in text for c in "*?["):
        matches = globlib.glob(_escape_existing_prefix(text), recursive=True)
        files = sorted(Path(p) for p in matches if Path(p).is_file())
        items = [_item(p) for p in files if p.suffix.lower() in allowed and not _is_temp(p)]
        if not items:
            raise InputError(text, "the pattern matches no supported files")
        return items
    path = Path(text)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        files = sorted(path.iterdir())
        items = [_item(p) for p in files if p.is_file() and p.suffix.lower() in allowed and not _is_temp(p)]
        if not items:
            raise InputError(path, f"folder holds no supported files ({', '.join(sorted(allowed))})")
        return items
    if path.suffix.lower() not in allowed:
        raise InputError(path, f"unsupported file type '{path.suffix}' (expected one of {', '.join(sorted(allowed))})")
    return [_item(path)]


def _escape_existing_prefix(pattern: str) -> str:
    """Escape the longest leading run of path parts that exists literally (``run[2]/*.jpg`` globs
    inside the folder ``run[2]``), so an existing folder name is never read as a pattern."""
    parts = Path(pattern).parts
    for k in range(len(parts) - 1, 0, -1):
        prefix = Path(*parts[:k])
        if prefix.is_dir():
            return str(Path(globlib.escape(str(prefix)), *parts[k:]))
    return pattern


def _is_temp(path: Path) -> bool:
    """A temp file of :func:`polyhead.io.writers.atomic_path` (another run's write in progress)."""
    return path.name.startswith(".polyhead-tmp-")


def _item(path: Path) -> SourceItem:
    return SourceItem(path, "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image")


def read_image(path: str | Path) -> np.ndarray:
    """Read any common image as RGB uint8 (grayscale, RGBA, palette, 16-bit and float are converted;
    EXIF orientation is applied). Raises :class:`InputError` naming the file.

    Memory is bounded before any pixel is decoded: the file size against :data:`MAX_FILE_BYTES`, and the
    width x height from the header of the format the bytes really are (not the suffix) against
    :data:`MAX_PIXELS` (refused) and :data:`DOWNSCALE_PIXELS` (decoded at 1/2, 1/4 or 1/8).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    nbytes = path.stat().st_size
    if nbytes == 0:
        raise InputError(path, "zero-byte file")
    if nbytes > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES / 2**20
        raise InputError(path, f"file is {nbytes / 2**20:.0f} MB, above the {limit:.0f} MB limit for images")
    w, h = _header_size(path)
    check_pixels(path, w, h)
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH  # grey and float stay as they are for to_rgb8
    if w * h > DOWNSCALE_PIXELS:  # decode at 1/2, 1/4 or 1/8 to bound memory
        factor = next(f for f in (2, 4, 8) if w * h / f**2 <= DOWNSCALE_PIXELS or f == 8)
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
        warnings.warn(f"{path}: {w}x{h} image decoded at 1/{factor} size to bound memory", stacklevel=2)
    data = np.fromfile(str(path), dtype=np.uint8)
    level = cv2.utils.logging.getLogLevel()  # a failed decode is reported once, as an InputError, not logged
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        img = cv2.imdecode(data, flags)
        if img is None and w * h <= DOWNSCALE_PIXELS:  # e.g. a 4-channel float TIFF: only "unchanged" reads it
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    finally:
        cv2.utils.logging.setLogLevel(level)
    del data
    if img is None:
        img = _read_with_pillow(path)
    if img is None:
        raise InputError(path, "not a readable image (corrupt or unsupported format)")
    if img.shape[0] * img.shape[1] > max(w * h, 1):  # the decoder disagreed with the header: never go on
        raise InputError(path, f"decoded {img.shape[1]}x{img.shape[0]} pixels but the header says {w}x{h}")
    return to_rgb8(img, bgr=True)


def check_pixels(path: str | Path | int | None, width: int, height: int, limit: int = MAX_PIXELS) -> None:
    """Refuse an image or video frame of ``width`` x ``height`` above ``limit`` pixels (one-line InputError).

    >>> check_pixels("big.mp4", 20000, 20000)
    Traceback (most recent call last):
    polyhead.errors.InputError: big.mp4: frame is 20000x20000 (400 MP), above the 250 MP limit
    """
    if width < 1 or height < 1:
        raise InputError(path, f"image size {width}x{height} is empty")
    if width * height > limit:
        kind = "image" if Path(str(path)).suffix.lower() in IMAGE_SUFFIXES else "frame"
        raise InputError(
            path, f"{kind} is {width}x{height} ({width * height / 1e6:.0f} MP), above the {limit / 1e6:.0f} MP limit"
        )


#: magic bytes -> the format they are (what OpenCV and Pillow both go by, whatever the suffix says)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_OTHER_MAGIC = (  # formats OpenCV decodes but images here never are: refused rather than decoded unsized
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"v/1\x01", "OpenEXR"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"P7", "PAM"),
    (b"PF", "PFM"),
    (b"Pf", "PFM"),
)


def sniff_format(head: bytes) -> str | None:
    """The image format of a file from its first bytes (``"PNG"``, ``"Radiance HDR"``, ...), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if len(head) >= 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return "PPM"
    for magic, name in (*_MAGIC, *_OTHER_MAGIC):
        if head.startswith(magic):
            return name
    return None


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header of the format the bytes are, without decoding the pixels.

    Raises :class:`InputError` when the format is not one this reader sizes (an HDR or EXR under a
    ``.png`` name, unknown bytes) or its header cannot be parsed: nothing unsized is ever decoded.
    """
    with open(path, "rb") as f:
        head = f.read(16)
    fmt = sniff_format(head)
    if fmt is None:
        raise InputError(path, "not a readable image (unknown format: not PNG, JPEG, BMP, GIF, TIFF, WebP or PPM)")
    if fmt not in _PILLOW_SIZED:
        raise InputError(path, f"{fmt} images are not supported (the bytes are {fmt}, whatever the file name says)")
    try:
        with _pillow_unbounded() as Image, Image.open(path, formats=[_PILLOW_SIZED[fmt]]) as im:
            w, h = im.size
    except Exception:  # PIL raises many types on junk headers
        size = _tiff_size(path) if fmt == "TIFF" else None  # layouts Pillow cannot open (3-channel float)
        if size is None:
            raise InputError(path, f"not a readable image (corrupt {fmt} header)") from None
        w, h = size
    return int(w), int(h)


def _tiff_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a TIFF's first image from its first IFD (tags 256 / 257), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            order = "<" if head[:2] == b"II" else ">"
            f.seek(int.from_bytes(head[4:8], "little" if order == "<" else "big"))
            (count,) = struct.unpack(order + "H", f.read(2))
            found = {}
            for _ in range(min(count, 4096)):
                tag, kind, n, raw = struct.unpack(order + "HHI4s", f.read(12))
                if tag in (256, 257) and n == 1 and kind in (3, 4):
                    found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), raw[: 2 if kind == 3 else 4])[0]
        return (found[256], found[257]) if len(found) == 2 else None
    except (OSError, struct.error, ValueError):
        return None


_PILLOW_SIZED = {"PNG": "PNG", "JPEG": "JPEG", "BMP": "BMP", "GIF": "GIF", "TIFF": "TIFF", "WEBP": "WEBP", "PPM": "PPM"}


_UNBOUNDED_LOCK = threading.Lock()
_UNBOUNDED = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _pillow_unbounded():
    """PIL's ``Image`` with its decompression-bomb limit lifted while any reader is inside (we apply our
    own limits first); once the last one leaves, PIL's limit is back for the mask readers and the demo.

    Reference-counted under a lock: with a plain save/restore, two overlapping threads (demo users)
    could restore each other's ``None`` and leave the limit off for the rest of the process.
    """
    from PIL import Image

    with _UNBOUNDED_LOCK:
        if _UNBOUNDED["depth"] == 0:
            _UNBOUNDED["saved"] = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _UNBOUNDED["depth"] += 1
    try:
        yield Image
    finally:
        with _UNBOUNDED_LOCK:
            _UNBOUNDED["depth"] -= 1
            if _UNBOUNDED["depth"] == 0:
                Image.MAX_IMAGE_PIXELS = _UNBOUNDED["saved"]


def _read_with_pillow(path: Path) -> np.ndarray | None:
    """GIF and a few formats OpenCV builds may lack (called only after the size checks)."""
    try:
        from PIL import ImageOps

        with _pillow_unbounded() as Image, Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("F", "I", "I;16", "I;16B", "I;16L"):  # one float / int channel: scaled by to_rgb8
                return np.asarray(im).copy()
            return np.asarray(im.convert("RGB"))[:, :, ::-1].copy()
    except Exception:  # PIL raises many types on junk
        return None


def to_rgb8(img: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any 2-D or 3-D bool/int/uint16/float image -> (h, w, 3) RGB uint8.

    uint16 maps 0..65535 to 0..255. Float and other integer types are scaled by their finite range:
    values already in 0..1 are multiplied by 255, values in 0..255 kept, anything wider is stretched
    from its finite min..max to 0..255. NaN and +-inf never take part in the scaling and become 0.
    """
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = _scale_to_uint8(img)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    if img.shape[2] in (1, 2):  # grey (+ alpha)
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    img = np.ascontiguousarray(img[:, :, :3])
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if bgr else img


def _scale_to_uint8(img: np.ndarray) -> np.ndarray:
    """Float / bool / other integer pixels -> uint8 by the finite range (see :func:`to_rgb8`)."""
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if img.dtype.kind not in "fiu":
        raise TypeError(f"cannot show {img.dtype} pixels as an image")
    x = img.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(img.shape, np.uint8)
    values = x[finite] if not finite.all() else x
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0 and img.dtype.kind == "f":
        x = x * 255.0
    elif lo < 0.0 or hi > 255.0:
        x = (x - lo) * (255.0 / max(hi - lo, 1e-12))
    x = np.where(finite, x, 0.0)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


class VideoReader:
    """Frames of a video file (or a camera) as RGB uint8, with fps, size and frame count.

    Raises :class:`InputError` if the file cannot be opened or yields no frame. A frame that fails
    to decode before the container's frame count is passed by seeking on (one frame at a time, then
    in doubling steps), so a corrupt stretch costs only its own frames; after iteration ``decoded``,
    ``missing`` and :attr:`incomplete` tell whether the whole stream was read.
    File names that OpenCV cannot take (not valid UTF-8, or holding ``%``) are opened through a
    temporary symlink with a plain name; OpenCV would crash on the first and misread the second.
    """

    #: failed frames in a row tried one by one before the reader starts skipping in doubling steps
    LINEAR_RETRIES = 16

    def __init__(self, source: str | Path | int):
        self.source = source
        self.label = f"camera {source}" if isinstance(source, int) else str(source)
        self.name = f"camera{source}" if isinstance(source, int) else Path(source).stem
        self.decoded = 0
        self.missing = 0
        self._gap_inside = False
        if isinstance(source, int):
            self._cap = cv2.VideoCapture(source)
            if not self._cap.isOpened():
                raise InputError(self.label, "cannot open (no such camera, or it is busy)")
        else:
            p = Path(source)
            if not p.is_file():
                raise InputError(p, "no such file")
            if p.stat().st_size == 0:
                raise InputError(p, "zero-byte file")
            self._cap = _open_capture(p)
            if not self._cap.isOpened():
                raise InputError(source, "cannot open video (corrupt or unsupported codec)")
        self._check_frame_size(
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        )
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            problem = "opened but sends no frames" if isinstance(source, int) else "video has no decodable frames"
            raise InputError(self.label, problem)
        self._check_frame_size(first.shape[1], first.shape[0])
        self._first = first
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        self.height, self.width = first.shape[:2]
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not isinstance(source, int) else None

    def _check_frame_size(self, width: int, height: int) -> None:
        """Refuse frames above :data:`VIDEO_MAX_PIXELS` (from the container's claim, before decoding, and
        from the first frame); sizes the container does not state (0) are checked on the frame."""
        if width > 0 and height > 0 and width * height > VIDEO_MAX_PIXELS:
            self._cap.release()
            check_pixels(self.label, width, height, VIDEO_MAX_PIXELS)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, rgb in self.indexed():
            yield rgb

    def indexed(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame index in the file, RGB frame)``; indices skip the frames that could not be decoded."""
        frame, index = self._first, 0
        try:
            while frame is not None:
                self.decoded += 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
                ok, frame = self._cap.read()
                if not ok:
                    frame, index = self._recover(index)
        finally:
            self._cap.release()

    def _recover(self, index: int) -> tuple[np.ndarray | None, int]:
        """After a failed read at ``index``: seek past bad frames to the next decodable one, if any
        is left before the frame count. Returns (frame or None, its index)."""
        if self.frame_count is None:
            return None, index
        failed, step = 0, 1
        bad = index
        while bad < self.frame_count:
            failed += 1
            nxt = min(bad + step, self.frame_count)
            if nxt >= self.frame_count:
                break
            if failed >= self.LINEAR_RETRIES:
                step *= 2
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, nxt)
            ok, frame = self._cap.read()
            if ok and frame is not None:
                self.missing += nxt - index
                self._gap_inside = True
                return frame, nxt
            bad = nxt
        self.missing += self.frame_count - index
        return None, index

    @property
    def incomplete(self) -> bool:
        """True when frames the container announces could not be decoded (a corrupt stretch, or more
        than one frame short at the end; one frame short at the end is within container estimates)."""
        if self.frame_count is None:
            return False
        return self._gap_inside or self.frame_count - self.decoded > 1

    def __len__(self) -> int:
        return self.frame_count or 0


def _open_capture(path: Path) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` on an absolute path (a relative ``name:...`` would be read as an ffmpeg
    protocol); through a temporary ASCII symlink when the name is not valid UTF-8 or holds ``%``."""
    full = os.path.abspath(path)
    try:
        full.encode("utf-8")
        plain = "%" not in full
    except UnicodeEncodeError:
        plain = False
    if plain:
        return cv2.VideoCapture(full)
    folder = tempfile.mkdtemp(prefix="polyhead-video-")
    suffix = re.sub(r"[^A-Za-z0-9.]", "", path.suffix) or ".mp4"
    link = os.path.join(folder, f"video{suffix}")
    try:
        os.symlink(os.fsencode(full), link)
        return cv2.VideoCapture(link)  # the opened stream keeps its own handle on the file
    except OSError as e:
        raise InputError(path, f"cannot open a video with this file name ({e.strerror}); rename it") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(link)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


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
    for i, rgb in reader.indexed():
        yield Frame(rgb, f"{reader.name}_{i:06d}", item.path, i, reader.fps)
