"""Issue 14: memory guards that sniff the real format, NaN-safe pixel scaling and JSON, volume budgets,
dataset-YAML typos and seeded training that repeats exactly."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyhead.errors import InputError
from polyhead.io import read_image
from polyhead.io.readers import MAX_PIXELS, check_pixels, sniff_format, to_rgb8
from polyhead.io.writers import write_json


# ---------------------------------------------------------------- images: real format, byte cap, pixel cap
def test_hdr_bytes_under_an_image_suffix_are_refused_before_decoding(tmp_path):
    small = cv2.imencode(".hdr", np.ones((4, 4, 3), np.float32))[1].tobytes()
    for name, data in {"a.png": small, "b.jpg": b"#?RADIANCE\n\n-Y 10000 +X 10000\n" + b"\0" * 64}.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=f"{name}: Radiance HDR images are not supported"):
            read_image(tmp_path / name)


def test_unknown_bytes_and_file_size_cap(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="unknown format"):
        read_image(tmp_path / "x.png")
    big = tmp_path / "big.tif"
    with open(big, "wb") as f:  # sparse: nothing is written or read
        f.truncate(3 << 30)
    with pytest.raises(InputError, match="big.tif: file is 3072 MB, above the 1024 MB limit"):
        read_image(big)


def test_png_named_jpg_and_webp_named_png_are_sized_and_read(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    (tmp_path / "p.jpg").write_bytes(cv2.imencode(".png", img)[1].tobytes())
    (tmp_path / "w.png").write_bytes(cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes())
    assert (read_image(tmp_path / "p.jpg") == img[:, :, ::-1]).all()
    assert read_image(tmp_path / "w.png").shape == (30, 40, 3)
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "WEBP" and sniff_format(b"\x89PNG\r\n\x1a\n") == "PNG"


def test_check_pixels_for_video_frames():
    check_pixels("v.mp4", 1920, 1080)
    with pytest.raises(InputError, match="v.mp4: frame is 20000x20000 .* above the 250 MP limit"):
        check_pixels("v.mp4", 20000, 20000)
    with pytest.raises(InputError, match="empty"):
        check_pixels("v.mp4", 0, 10)
    assert MAX_PIXELS == 250_000_000


# ---------------------------------------------------------------- NaN in pixels and in JSON
def test_float_tiff_with_a_nan_patch_is_not_black(tmp_path):
    a = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    a[10:20, 10:20] = np.nan
    a[30, 30] = np.inf
    cv2.imwrite(str(tmp_path / "nan.tif"), a)
    rgb = read_image(tmp_path / "nan.tif")
    assert rgb.shape == (64, 64, 3) and rgb.max() == 255  # scaled by the finite range
    assert (rgb[10:20, 10:20] == 0).all() and (rgb[30, 30] == 0).all()
    assert rgb[63, 62, 0] > 250 and abs(int(rgb[32, 0, 0]) - 128) <= 2


@pytest.mark.parametrize(
    "img, expect",
    [
        (np.array([[0.0, 0.5, 1.0, np.nan]], np.float32), [0, 128, 255, 0]),
        (np.array([[0.0, 100.0, 255.0, np.nan]], np.float64), [0, 100, 255, 0]),
        (np.array([[-1000.0, 0.0, 1000.0, -np.inf]], np.float32), [0, 128, 255, 0]),  # wide range: stretched
        (np.array([[np.nan, np.nan]], np.float32), [0, 0]),
        (np.array([[0, 4000]], np.int32), [0, 255]),
        (np.array([[False, True]]), [0, 255]),
    ],
)
def test_to_rgb8_scales_by_the_finite_range(img, expect):
    out = to_rgb8(img)
    assert out.dtype == np.uint8 and out.shape == (*img.shape, 3)
    assert out[0, :, 0].tolist() == expect


def test_write_json_never_writes_nan(tmp_path):
    doc = {"diagnosis": {"melanoma": float("nan"), "nevus": np.float32(0.25)}, "areas": np.array([1.0, np.inf])}
    with pytest.warns(UserWarning, match=r"non-finite value\(s\) written as null at diagnosis.melanoma, areas\[1\]"):
        path = write_json(tmp_path / "r.json", doc)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert back == {"diagnosis": {"melanoma": None, "nevus": 0.25}, "areas": [1.0, None]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_json(tmp_path / "ok.json", {"a": 1.5, "b": [np.int64(2)]})  # finite: no warning


# ---------------------------------------------------------------- NaN weights
def test_nan_weights_are_refused_naming_the_tensor(tmp_path):
    import torch
    from safetensors.torch import save_file

    from polyhead.weights import check_finite, load_state

    save_file({"a": torch.ones(3), "b.weight": torch.tensor([1.0, float("nan")])}, str(tmp_path / "w.safetensors"))
    with pytest.raises(InputError, match=r"w.safetensors: tensor 'b.weight' holds 1 NaN/inf value\(s\)"):
        load_state(tmp_path / "w.safetensors")
    ok = {"i": torch.tensor([1, 2]), "f": torch.zeros(2)}
    assert check_finite(ok, "x") is ok


# ---------------------------------------------------------------- volumes
def test_volume_budget_from_the_header():
    from polyhead.apps.medical.volume import check_volume_budget

    check_volume_budget("v.nii", (512, 512, 300), np.dtype(np.int16))
    for shape, dtype, message in [
        ((5000, 5000, 1), np.uint8, "MP slices"),
        ((1, 6000, 6000), np.uint8, "MP slices"),
        ((600, 600, 600), np.uint8, "too large"),
        ((4, 0, 4), np.uint8, "empty"),
        ((4, 4, 4), np.complex64, "complex"),
        ((4, 4, 4), np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]), "RGB"),
    ]:
        with pytest.raises(InputError, match=message):
            check_volume_budget("v.nii", shape, np.dtype(dtype))


# ---------------------------------------------------------------- dataset YAML
def test_yaml_typos_name_the_nearest_key(tmp_path):
    from polyhead.apps.medical.data import load_spec

    (tmp_path / "images").mkdir()
    p = tmp_path / "d.yaml"
    p.write_text("path: .\nclasses: [background, lesion]\nkeep_larget: true\n")
    with pytest.warns(UserWarning, match=r"d.yaml: unknown key 'keep_larget' \(did you mean 'keep_largest'\?\)"):
        assert load_spec(p).classes == ["background", "lesion"]  # a warning: the rest of the file still loads
    p.write_text("path: .\nzzz: 1\n")
    with pytest.warns(UserWarning, match="unknown key 'zzz' \\(known keys: classes, diagnosis"):
        load_spec(p)
    p.write_text("path: .\nclasses: [background, lesion]\nkey: '^(\\d+)_'\nsplit: {val: [1, '2']}\n")
    spec = load_spec(p)
    assert spec.classes == ["background", "lesion"] and spec.key == "^(\\d+)_" and spec.split == {"val": [1, "2"]}


def test_epochs_below_one_are_refused_by_the_trainer():
    from polyhead.train.trainer import TrainConfig, check_config

    for bad in (
        TrainConfig(epochs=0),
        TrainConfig(batch_size=0),
        TrainConfig(lr=float("nan")),
        TrainConfig(workers=-1),
    ):
        with pytest.raises(InputError):
            check_config(bad)
    check_config(TrainConfig(epochs=1))


# ---------------------------------------------------------------- seeded training repeats exactly
def _metrics(out: Path) -> list[dict]:
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in rows]


@pytest.mark.parametrize("workers", [0, 2])
def test_two_seeded_runs_give_identical_metrics(tmp_path, workers):
    """Seeded model initialisation (before the app builds it) and seeded albumentations pipelines: without
    either, two runs with the same --seed differ from the first batch on."""
    from polyhead.apps.medical.synthetic import write_folder_dataset
    from polyhead.cli import main

    yaml = write_folder_dataset(tmp_path / "d", n=8, size=(64, 96))
    args = ["medical", "train", "--data", str(yaml), "--encoder", "mobilenetv3_small_100", "--no-pretrained"]
    args += ["--mask-stride", "4", "--neck-channels", "16", "--epochs", "2", "--batch", "2", "--max-batches", "2"]
    args += ["--workers", str(workers)]
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1))[: 3 if workers == 0 else 2]:
        assert main([*args, "--seed", str(seed), "--out", str(tmp_path / name)]) == 0
        runs[name] = _metrics(tmp_path / name)
    assert runs["a"] == runs["b"]
    if "c" in runs:
        assert runs["a"][0]["train/loss"] != runs["c"][0]["train/loss"]  # the seed matters


def test_video_with_frames_above_the_pixel_cap_is_refused(tmp_path, monkeypatch):
    from polyhead.io import VideoReader, VideoWriter, readers

    path = tmp_path / "wide.mp4"
    with VideoWriter(path, fps=5) as w:
        for _ in range(3):
            w.write(np.zeros((64, 96, 3), np.uint8))
    assert len(list(VideoReader(path))) == 3
    monkeypatch.setattr(readers, "VIDEO_MAX_PIXELS", 64 * 96 - 1)
    with pytest.raises(InputError, match=r"wide.mp4: frame is 96x64 .* above the 0 MP limit"):
        VideoReader(path)


def test_float16_weights_pass_the_size_check_and_a_bigger_card_does_not(tmp_path):
    """The size check counts tensor values, not bytes: the shipped medical weights are stored as float16."""
    import torch
    from safetensors.torch import save_file

    from polyhead.model import build_model
    from polyhead.weights import load_model

    cfg = {
        "encoder": "mobilenetv3_small_100",
        "neck_channels": 16,
        "heads": {"m": {"type": "segment", "num_classes": 2}},
    }
    model = build_model(cfg)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "h.safetensors"))
    (tmp_path / "h.json").write_text(json.dumps({"model": model.config}))
    loaded, _ = load_model(tmp_path / "h.safetensors")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    (tmp_path / "h.json").write_text(json.dumps({"model": {**model.config, "neck_channels": 64}}))
    with pytest.raises(InputError, match="needs .* tensor values, the file holds"):
        load_model(tmp_path / "h.safetensors")


def test_a_nan_score_never_blocks_a_later_best():
    from polyhead.train.trainer import Trainer

    t = Trainer.__new__(Trainer)  # only the selection rule: no model needed
    t.cfg, t.best = type("C", (), {"mode": "max"})(), None
    assert t.improves(float("nan"))  # the first epoch always gives a best file
    t.best = float("nan")
    assert t.improves(0.1) and not t.improves(None)
    t.best = 0.5
    assert not t.improves(float("nan")) and not t.improves(0.4) and t.improves(0.6)


def test_reading_an_image_leaves_pillows_bomb_limit_for_the_mask_readers(tmp_path):
    """read_image lifts PIL's decompression-bomb limit only while it sizes a file: a 30000x30000 mask read
    afterwards by the medical mask reader is still refused by PIL instead of being decoded (900 MP)."""
    from PIL import Image

    from polyhead.apps.medical.data import read_mask
    from tests.shared.test_fuzz_readers import image_header

    limit = Image.MAX_IMAGE_PIXELS
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    (tmp_path / "huge.png").write_bytes(image_header("png", 30000, 30000))
    read_image(tmp_path / "a.png")
    with pytest.raises(InputError, match="above the 250 MP limit"):
        read_image(tmp_path / "huge.png")
    assert Image.MAX_IMAGE_PIXELS == limit and limit is not None
    with pytest.raises(InputError, match="huge.png: cannot read mask"):
        read_mask(tmp_path / "huge.png", 2)


def test_overlapping_readers_in_threads_restore_pillows_bomb_limit():
    """Demo users read images at the same time: however their lifted-limit windows overlap, PIL's limit is
    back once they are all done (a plain save/restore could leave it off for good)."""
    import threading
    import time

    from PIL import Image

    from polyhead.io.readers import _pillow_unbounded

    limit = Image.MAX_IMAGE_PIXELS
    start = threading.Barrier(8)

    def reader(k: int) -> None:
        start.wait()
        for i in range(30):
            with _pillow_unbounded():
                time.sleep(0.0005 * ((k + i) % 3))

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Image.MAX_IMAGE_PIXELS == limit and limit is not None
