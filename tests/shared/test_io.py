import cv2
import numpy as np
import pytest

from polyhead.errors import InputError
from polyhead.io import (
    VideoReader,
    VideoWriter,
    atomic_path,
    read_image,
    resolve_source,
    write_image,
    write_json,
)


def test_resolve_source_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        resolve_source(tmp_path / "missing.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: folder holds no supported files"):
        resolve_source(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        resolve_source(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="matches no supported files"):
        resolve_source(str(tmp_path / "*.png"))


def test_resolve_folder_glob_and_camera(tmp_path):
    for n in ("b.png", "a.jpg", "c.mp4", "skip.txt"):
        (tmp_path / n).write_bytes(b"x")
    items = resolve_source(tmp_path)
    assert [(i.path.name, i.kind) for i in items] == [("a.jpg", "image"), ("b.png", "image"), ("c.mp4", "video")]
    assert [i.path.name for i in resolve_source(str(tmp_path / "*.png"))] == ["b.png"]
    assert resolve_source("0")[0].kind == "camera"


def test_read_image_converts_every_layout(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red
    write_image(tmp_path / "rgb.png", rgb)
    assert read_image(tmp_path / "rgb.png")[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((20, 30), 77, np.uint8))
    assert read_image(tmp_path / "gray.png").shape == (20, 30, 3)
    cv2.imwrite(
        str(tmp_path / "rgba.png"), np.dstack([np.zeros((20, 30, 3), np.uint8), np.full((20, 30), 255, np.uint8)])
    )
    assert read_image(tmp_path / "rgba.png").shape == (20, 30, 3)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((20, 30), 65535, np.uint16))
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and deep.max() == 255


def test_read_image_bad_files(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="zero.jpg: zero-byte file"):
        read_image(tmp_path / "zero.jpg")
    (tmp_path / "junk.png").write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputError, match="junk.png: not a readable image"):
        read_image(tmp_path / "junk.png")
    ok, buf = cv2.imencode(".jpg", np.zeros((50, 50, 3), np.uint8))
    (tmp_path / "trunc.jpg").write_bytes(buf.tobytes()[:40])
    with pytest.raises(InputError, match="trunc.jpg"):
        read_image(tmp_path / "trunc.jpg")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text().startswith("{")  # old content intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_video_round_trip_keeps_fps_and_size(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=12.5) as w:
        for i in range(8):
            w.write(np.full((64, 96, 3), i * 30, np.uint8))
    r = VideoReader(path)
    assert (r.width, r.height) == (96, 64) and abs(r.fps - 12.5) < 0.01
    frames = list(r)
    assert len(frames) == 8 and frames[0].shape == (64, 96, 3)


def test_video_writer_abort_leaves_no_file(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(ValueError), VideoWriter(path, fps=10) as w:
        w.write(np.zeros((64, 96, 3), np.uint8))
        w.write(np.zeros((32, 32, 3), np.uint8))  # size change: error
    assert list(tmp_path.iterdir()) == []


def test_corrupt_video_is_one_clear_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(InputError, match="bad.mp4"):
        VideoReader(tmp_path / "bad.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte"):
        VideoReader(tmp_path / "empty.mp4")


def _png_header(path, width, height):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # a header that promises 1.2 GB of pixels, followed by a few bytes of image data
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)))


def test_decompression_bomb_header_is_refused_without_decoding(tmp_path):
    _png_header(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(InputError, match=r"bomb.png: image is 20000x20000 \(400 MP\), above the 250 MP limit"):
        read_image(tmp_path / "bomb.png")


def test_huge_image_is_decoded_smaller_with_a_warning(tmp_path):
    ok, buf = cv2.imencode(".jpg", np.zeros((8000, 8000, 3), np.uint8))
    (tmp_path / "big.jpg").write_bytes(buf.tobytes())
    with pytest.warns(UserWarning, match="decoded at 1/2 size"):
        img = read_image(tmp_path / "big.jpg")
    assert img.shape == (4000, 4000, 3)
