"""Fuzzing the app readers: point clouds, medical CSV / masks / NIfTI / dataset YAML, odd image layouts.

Every case ends in a result or one InputError that names the file (no hang, no library traceback).
40 cases per test in CI, 2,000 with ``POLYHEAD_FUZZ=long`` (see ``tests/fuzzing.py``).
"""

import gzip
import io

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from polyhead.errors import InputError
from polyhead.io import read_image
from tests.fuzzing import fuzz

FUZZ = fuzz(40)


def _one_line_naming(e: InputError, name: str) -> None:
    assert name in str(e) and "\n" not in str(e) and "Traceback" not in str(e)


# ---------------------------------------------------------------- point clouds (driving LiDAR)
@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".bin", ".pcd.bin", ".npy", ".pcd", ".ply"]))
def test_point_cloud_random_bytes(tmp_path_factory, data, suffix):
    from polyhead.apps.driving.lidar.io import read_scan

    path = tmp_path_factory.mktemp("pc") / f"scan{suffix}"
    path.write_bytes(data)
    try:
        scan = read_scan(path)
    except InputError as e:
        _one_line_naming(e, "scan")
    else:
        assert scan.points.ndim == 2 and scan.points.shape[1] == 3 and len(scan.points) > 0
        assert np.isfinite(scan.points).all()


@FUZZ
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=64))
def test_point_cloud_nan_inf_and_empty(tmp_path_factory, values):
    from polyhead.apps.driving.lidar.io import read_scan

    n = len(values) // 4 * 4
    path = tmp_path_factory.mktemp("pc") / "scan.bin"
    np.asarray(values[:n], np.float32).tofile(path)
    try:
        scan = read_scan(path)
    except InputError as e:
        _one_line_naming(e, "scan.bin")
        assert "empty" in str(e)
    else:
        assert np.isfinite(scan.points).all() and len(scan.points) + scan.dropped == n // 4


# ---------------------------------------------------------------- medical labels, masks, volumes, YAML
@FUZZ
@given(text=st.text(max_size=300))
def test_medical_labels_csv_random_text(tmp_path_factory, text):
    from polyhead.apps.medical.data import read_labels

    path = tmp_path_factory.mktemp("csv") / "labels.csv"
    path.write_text(text)
    try:
        labels = read_labels(path, ["benign", "malignant"])
    except InputError as e:
        _one_line_naming(e, "labels.csv")
    else:
        assert set(labels.values()) <= {"benign", "malignant"}


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".png", ".gif", ".tif", ".jpg"]))
def test_medical_mask_random_bytes(tmp_path_factory, data, suffix):
    from polyhead.apps.medical.data import read_mask

    path = tmp_path_factory.mktemp("mask") / f"m{suffix}"
    path.write_bytes(data)
    try:
        mask = read_mask(path, 2)
    except InputError as e:
        _one_line_naming(e, f"m{suffix}")
    else:
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}


def _nifti_bytes(shape=(6, 5, 4)) -> bytes:
    import nibabel as nib

    img = nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.float32).reshape(shape), np.eye(4))
    return img.to_bytes()


@FUZZ
@given(
    offset=st.integers(0, 351),
    value=st.integers(0, 255),
    cut=st.integers(0, 600),
    gz=st.booleans(),
)
@example(offset=70, value=32, cut=0, gz=False)  # datatype: complex64
@example(offset=70, value=128, cut=0, gz=True)  # datatype: RGB24
@example(offset=70, value=0, cut=0, gz=False)  # datatype: unknown
@example(offset=43, value=127, cut=0, gz=False)  # dim[1] = 32518: more voxels than the file holds
@example(offset=41, value=8, cut=0, gz=True)  # dim[0] = 2054: a nonsense rank
def test_nifti_with_mutated_header_or_truncated_data(tmp_path_factory, offset, value, cut, gz):
    from polyhead.apps.medical.volume import read_volume

    raw = bytearray(_nifti_bytes())
    raw[offset] = value  # anywhere in the 348-byte header (dims, datatype, vox_offset, magic...)
    raw = bytes(raw[: max(1, len(raw) - cut)])
    name = "vol.nii.gz" if gz else "vol.nii"
    path = tmp_path_factory.mktemp("nii") / name
    path.write_bytes(gzip.compress(raw) if gz else raw)
    try:
        vol = read_volume(path)
    except InputError as e:
        _one_line_naming(e, name)
    else:
        assert vol.data.ndim == 3 and len(vol.spacing) == 3


@FUZZ
@given(text=st.text(max_size=200))
def test_medical_dataset_yaml_random_text(tmp_path_factory, text):
    from polyhead.apps.medical.data import load_spec

    path = tmp_path_factory.mktemp("yaml") / "d.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="d.yaml|does not exist"):
        load_spec(path)


# ---------------------------------------------------------------- image layouts users actually have
def _pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_palette_cmyk_one_pixel_and_exif_rotated_images(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    (tmp_path / "pal.png").write_bytes(_pil_bytes(rgb.convert("P"), "PNG"))
    (tmp_path / "cmyk.jpg").write_bytes(_pil_bytes(rgb.convert("CMYK"), "JPEG"))
    (tmp_path / "one.png").write_bytes(_pil_bytes(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise when displayed
    (tmp_path / "rot.jpg").write_bytes(_pil_bytes(rgb, "JPEG", exif=exif.tobytes()))
    assert read_image(tmp_path / "pal.png").shape == (20, 30, 3)
    assert read_image(tmp_path / "cmyk.jpg").shape == (20, 30, 3)
    assert read_image(tmp_path / "one.png")[0, 0].tolist() == [9, 8, 7]
    assert read_image(tmp_path / "rot.jpg").shape == (30, 20, 3)  # shown upright, as a viewer would
    (tmp_path / "wrong_ext.jpg").write_bytes(_pil_bytes(rgb, "PNG"))  # a PNG named .jpg
    assert read_image(tmp_path / "wrong_ext.jpg").shape == (20, 30, 3)


# ---------------------------------------------------------------- videos cut short, odd sizes
@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory):
    from polyhead.io import VideoWriter

    path = tmp_path_factory.mktemp("vid") / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        for i in range(12):
            w.write(np.full((33, 47, 3), i * 20, np.uint8))  # odd size: padded to even for H.264
    return path


@fuzz(15)
@given(fraction=st.floats(0.0, 0.98))
def test_truncated_mp4_reads_some_frames_or_fails_clearly(tmp_path_factory, small_mp4, fraction):
    from polyhead.io import VideoReader

    raw = small_mp4.read_bytes()
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    try:
        frames = list(VideoReader(path))
    except InputError as e:
        _one_line_naming(e, "cut.mp4")
    else:
        assert len(frames) <= 12 and all(f.shape[2] == 3 for f in frames)


def test_odd_sized_video_round_trips_and_zero_frame_video_is_refused(small_mp4, tmp_path):
    from polyhead.io import VideoReader, VideoWriter

    frames = list(VideoReader(small_mp4))
    assert len(frames) == 12 and frames[0].shape[:2] in ((33, 47), (34, 48))
    with VideoWriter(tmp_path / "none.mp4", fps=10):
        pass  # closed without a frame: no file at all rather than an unplayable one
    assert not (tmp_path / "none.mp4").exists()
    import subprocess

    import imageio_ffmpeg

    zero = tmp_path / "zero.mp4"  # a container with no video frames, as some cameras leave behind
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "lavfi", "-i", "color=s=32x32:d=0.1", "-frames:v", "0"]
    subprocess.run([*cmd, str(zero)], capture_output=True, check=True)
    with pytest.raises(InputError, match="zero.mp4"):
        list(VideoReader(zero))


# ---------------------------------------------------------------- label files of the other apps
@FUZZ
@given(text=st.text(max_size=300))
def test_yolo_box_text_random(tmp_path_factory, text):
    from polyhead.apps.driving.data import DatasetSpec, read_boxes

    path = tmp_path_factory.mktemp("yolo") / "x.txt"
    path.write_text(text)
    try:
        boxes = read_boxes(path, DatasetSpec(root=path.parent, layout="yolo"), (100, 200))
    except InputError as e:
        _one_line_naming(e, "x.txt")
    else:
        assert boxes.shape[1] == 5 and np.isfinite(boxes).all()


SVG_PARTS = st.sampled_from(
    [
        '<svg xmlns="http://www.w3.org/2000/svg">',
        "</svg>",
        '<g class="Wall"><polygon points="0,0 10,0 10,5 0,5"/></g>',
        '<g class="Wall"><polygon points="nan,1 x,2"/></g>',
        '<g class="Space Bedroom"><polygon points="0,0 50,0 50,40 0,40"/></g>',
        '<g class="Door"><polygon points="1,1"/></g>',
        '<g class="Window"><polygon/></g>',
        "<g",
        "&bogus;",
        "",
    ]
)


@FUZZ
@given(parts=st.lists(SVG_PARTS, max_size=6), junk=st.text(max_size=40))
def test_cubicasa_svg_random(tmp_path_factory, parts, junk):
    from polyhead.apps.floorplan.data import rasterise_cubicasa

    path = tmp_path_factory.mktemp("svg") / "model.svg"
    path.write_text("".join(parts) + junk)
    try:
        boundary, rooms = rasterise_cubicasa(path, (60, 80))
    except InputError as e:
        _one_line_naming(e, "model.svg")
    else:
        assert boundary.shape == rooms.shape == (60, 80)


@FUZZ
@given(text=st.text(max_size=300), kind=st.sampled_from(["landmarks", "wider", "retinaface"]))
def test_face_label_lists_random(tmp_path_factory, text, kind):
    from polyhead.apps.face import samples

    path = tmp_path_factory.mktemp("face") / "labels.txt"
    path.write_text(text)
    reader = {
        "landmarks": samples.read_landmark_list,
        "wider": samples.read_wider,
        "retinaface": samples.read_retinaface,
    }[kind]
    try:
        rows = reader(path)
    except InputError as e:
        _one_line_naming(e, "labels.txt")
    else:
        assert isinstance(rows, list)


#: values of every YAML type, for the keys a medical dataset YAML knows
_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 600) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_KNOWN = ["images", "masks", "labels", "fov", "key", "classes", "diagnosis", "input", "split", "slice_axis"]
_KNOWN += ["invert_masks", "keep_largest", "format", "clases", "inptu"]


@FUZZ
@given(values=st.dictionaries(st.sampled_from(_KNOWN), _ANY, max_size=5))
@example(values={"classes": "lesion"})
@example(values={"clases": ["background", "lesion"]})
@example(values={"key": "(["})
@example(values={"input": {"size": "abc"}})
@example(values={"split": [1, 2]})
@example(values={"slice_axis": "x", "invert_masks": "no"})
def test_medical_dataset_yaml_values_of_any_type(tmp_path_factory, values):
    """Known keys with values of the wrong type (and typos of them): a spec of the right types or one line."""
    import yaml

    from polyhead.apps.medical.data import load_spec

    root = tmp_path_factory.mktemp("ytyped")
    (root / "images").mkdir()
    path = root / "d.yaml"
    path.write_text(yaml.safe_dump({"path": ".", **values}))
    try:
        spec = load_spec(path)
    except InputError as e:
        _one_line_naming(e, "d.yaml")
    else:
        assert all(isinstance(c, str) for c in spec.classes) and len(spec.classes) >= 2
        assert isinstance(spec.invert_masks, bool) and spec.slice_axis in (0, 1, 2)
        assert len(spec.input_size) == 2 and all(v % 32 == 0 for v in spec.input_size)
