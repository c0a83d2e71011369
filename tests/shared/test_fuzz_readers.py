"""Fuzzing the readers: every input ends in a result or one InputError naming the file.

40 cases per test in CI, 2,000 with ``POLYHEAD_FUZZ=long`` (see ``tests/fuzzing.py``). The hostile files
of issue 14 are fixed ``@example`` cases that run on every budget.
"""

import json
import resource
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from polyhead.apps.driving.data import DatasetSpec, load_spec, read_boxes
from polyhead.errors import InputError
from polyhead.io import VideoReader, read_image
from polyhead.io.readers import MAX_PIXELS
from tests.fuzzing import fuzz

FUZZ = fuzz(40)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def image_header(fmt: str, w: int, h: int) -> bytes:
    """A well-formed header of ``fmt`` claiming ``w`` x ``h`` pixels, with no (or hardly any) pixel data."""
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b"")
        )
    if fmt == "bmp":
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
        return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + b"\0" * 64
    if fmt == "ppm":
        return f"P6\n{w} {h}\n255\n".encode() + b"\0" * 64
    if fmt == "gif":
        screen = struct.pack("<HHBBB", w, h, 0, 0, 0)
        frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00"
        return b"GIF89a" + screen + frame + b"\x3b"
    if fmt == "jpeg":
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
        return (
            b"\xff\xd8"
            + sof
            + b"\xff\xda"
            + struct.pack(">H", 12)
            + b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
            + b"\0" * 64
            + b"\xff\xd9"
        )
    if fmt == "tiff":
        tags = [
            (256, 4, w),
            (257, 4, h),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 8),
            (277, 3, 1),
            (278, 4, h),
            (279, 4, 64),
        ]
        ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags) + b"\0" * 4
        return b"II*\x00" + struct.pack("<I", 8 + 64) + b"\0" * 64 + ifd
    if fmt == "webp":
        vp8x = (
            b"VP8X"
            + struct.pack("<I", 10)
            + b"\0\0\0\0"
            + (w - 1).to_bytes(3, "little")
            + (h - 1).to_bytes(3, "little")
        )
        return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    raise ValueError(fmt)


#: the hostile images of issue 14 (an HDR under .png, other formats under image names, huge headers)
HOSTILE_IMAGES = {
    "hdr_as_png": (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n" + b"\0" * 64, ".png"),
    "exr_as_png": (b"v/1\x01" + b"\0" * 64, ".png"),
    "bigtiff_as_tif": (b"II+\x00\x08\x00\x00\x00" + b"\0" * 64, ".tif"),
    "pfm_as_jpg": (b"PF\n10000 10000\n-1.0\n" + b"\0" * 64, ".jpg"),
    "png_30000x30000": (image_header("png", 30000, 30000), ".png"),
    "png_2e9_wide": (image_header("png", 2**31 - 1, 1), ".png"),
    "bmp_100000x100000": (image_header("bmp", 100000, 100000), ".bmp"),
    "bmp_negative_height": (image_header("bmp", 20000, -20000), ".bmp"),
    "gif_65535x65535": (image_header("gif", 65535, 65535), ".gif"),
    "jpeg_65535x65535": (image_header("jpeg", 65535, 65535), ".jpg"),
    "tiff_100000x100000": (image_header("tiff", 100000, 100000), ".tif"),
    "ppm_as_png_huge": (image_header("ppm", 100000, 100000), ".png"),
    "webp_16384x16384": (image_header("webp", 16384, 16384), ".webp"),
}


def _valid_png(h=12, w=17) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))[1].tobytes()


def _with_hostile_examples(test):
    for data, suffix in HOSTILE_IMAGES.values():
        test = example(data=data, suffix=suffix)(test)
    return test


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".png", ".jpg", ".bmp", ".gif", ".tif", ".webp"]))
@_with_hostile_examples
def test_read_image_random_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("img") / f"x{suffix}"
    path.write_bytes(data)
    try:
        img = read_image(path)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@FUZZ
@given(cut=st.integers(min_value=0, max_value=400), flip=st.integers(min_value=0, max_value=399))
def test_read_image_truncated_or_corrupted_png(tmp_path_factory, cut, flip):
    raw = bytearray(_valid_png())
    raw[flip % len(raw)] ^= 0xFF
    path = tmp_path_factory.mktemp("png") / "x.png"
    path.write_bytes(bytes(raw[: max(1, len(raw) - cut)]))
    try:
        img = read_image(path)
    except InputError as e:
        assert "x.png" in str(e)
    else:
        assert img.shape[2] == 3


@FUZZ
@given(data=st.binary(max_size=2048))
def test_video_reader_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("vid") / "x.mp4"
    path.write_bytes(data)
    with pytest.raises(InputError, match="x.mp4"):
        VideoReader(path)


@FUZZ
@given(text=st.text(max_size=300))
def test_label_json_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("lbl") / "x.json"
    path.write_text(text)
    try:
        boxes = read_boxes(path, DatasetSpec(root=path.parent), (100, 100))
    except InputError as e:
        assert "x.json" in str(e)
    else:
        assert boxes.shape[1] == 5


@FUZZ
@given(
    objects=st.lists(
        st.fixed_dictionaries(
            {
                "category": st.sampled_from(["car", "pedestrian", "cyclist", "truck", "tree", ""]),
                "box2d": st.fixed_dictionaries(
                    {
                        k: st.one_of(st.floats(allow_nan=True), st.integers(-500, 500), st.text(max_size=3))
                        for k in ("x1", "y1", "x2", "y2")
                    }
                ),
            }
        ),
        max_size=6,
    )
)
def test_label_json_random_boxes(tmp_path_factory, objects):
    path = tmp_path_factory.mktemp("box") / "x.json"
    path.write_text(json.dumps({"frames": [{"objects": objects}]}))
    try:
        boxes = read_boxes(path, DatasetSpec(root=path.parent), (100, 200))
    except InputError as e:
        assert "x.json" in str(e)
    else:  # whatever is accepted is a valid box inside the image
        assert (boxes[:, 3] > boxes[:, 1]).all() and (boxes[:, 4] > boxes[:, 2]).all()
        assert (boxes[:, 1:] >= 0).all() and (boxes[:, [1, 3]] <= 200).all() and (boxes[:, [2, 4]] <= 100).all()


@FUZZ
@given(text=st.text(max_size=200))
def test_dataset_yaml_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "d.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="d.yaml|does not exist"):
        load_spec(path)


@pytest.mark.parametrize("name", sorted(HOSTILE_IMAGES))
def test_hostile_image_headers_are_refused_before_decoding(tmp_path, name):
    data, suffix = HOSTILE_IMAGES[name]
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError) as e:
        read_image(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: nothing big decoded


SIDES = st.one_of(st.integers(1, 2048), st.integers(16_000, 65_535))


@FUZZ
@given(fmt=st.sampled_from(["png", "bmp", "ppm", "gif", "jpeg", "tiff", "webp"]), w=SIDES, h=SIDES)
def test_image_headers_with_random_sizes(tmp_path_factory, fmt, w, h):
    """Well-formed headers of every format claiming any size, with no pixels behind them: refused, never
    decoded at the claimed size (above 250 MP the header alone refuses it)."""
    path = tmp_path_factory.mktemp("hdr") / f"x.{fmt}"
    try:
        path.write_bytes(image_header(fmt, w, h))
    except (OverflowError, struct.error):  # the format cannot hold that size
        return
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 40-250 MP: decoded at a reduced size, with a warning
            img = read_image(path)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        if w * h > MAX_PIXELS:  # refused from the header alone: nothing was allocated for the pixels
            assert "limit" in str(e) or "corrupt" in str(e), str(e)
            assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB
    else:
        assert w * h <= MAX_PIXELS and img.ndim == 3 and img.shape[2] == 3


@FUZZ
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    channels=st.sampled_from([1, 3, 4]),
    dtype=st.sampled_from(["uint8", "uint16", "float32"]),
    fmt=st.sampled_from([".png", ".tif", ".jpg", ".bmp", ".webp"]),
    holes=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_valid_images_of_any_layout_read_as_rgb8(tmp_path_factory, h, w, channels, dtype, fmt, holes, seed):
    """Real images (grey / RGB / RGBA, 8- / 16-bit / float with NaN and inf holes) under each format that
    holds them: always (h, w, 3) uint8, never all black when the finite pixels are not."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    if dtype == "float32":
        if fmt != ".tif":
            return
        img = rng.random(shape).astype(np.float32)
        img[rng.random(shape) < holes * 0.5] = np.nan
        img.flat[0] = np.inf if holes > 0.5 else img.flat[0]
    else:
        if dtype == "uint16" and fmt not in (".png", ".tif"):
            return
        img = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    ok, buf = cv2.imencode(fmt, img)
    if not ok:
        return
    path = tmp_path_factory.mktemp("img") / f"x{fmt}"
    path.write_bytes(buf.tobytes())
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (h, w, 3)
    if dtype == "float32":
        finite = np.isfinite(img) if img.ndim == 2 else np.isfinite(img).all(-1)
        spread = np.ptp(img[np.isfinite(img)]) if np.isfinite(img).any() else 0
        if finite.sum() > 1 and spread > 0.1:
            assert rgb.max() > 0  # a NaN patch no longer blacks out the image
