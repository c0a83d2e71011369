"""Hostile CLI inputs (issue 14, item 11): each ends with exit code != 0 and exactly one line on stderr that
names the problem, never a traceback. The table runs the CLI in-process, one row per case."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from polyhead.cli import main

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["--encoder", "mobilenetv3_small_100", "--no-pretrained", "--mask-stride", "4", "--neck-channels", "16"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, Path]:
    """Tiny medical weights, a generated lesion dataset, a good image and a finished 1-epoch run."""
    from polyhead.apps.medical.synthetic import write_folder_dataset
    from polyhead.io import write_image
    from tests.medical.conftest import save_tiny

    root = tmp_path_factory.mktemp("cli_errors")
    e = {"root": root, "weights": save_tiny(root / "w" / "tiny.safetensors")}
    e["yaml"] = write_folder_dataset(root / "lesions", n=8, size=(64, 96))
    e["image"] = write_image(root / "ok.png", np.full((64, 96, 3), 120, np.uint8))
    e["run"] = root / "run"
    args = ["medical", "train", "--data", str(e["yaml"]), *TRAIN, "--epochs", "1", "--batch", "4"]
    assert main([*args, "--max-batches", "1", "--out", str(e["run"])]) == 0
    return e


# ---------------------------------------------------------------- hostile files, made on demand
def _weights_variant(e: dict, name: str, card_edit=None, state_edit=None) -> Path:
    src = e["weights"]
    dst = e["root"] / "variants" / f"{name}.safetensors"
    dst.parent.mkdir(exist_ok=True)
    state = load_file(str(src))
    if state_edit:
        state_edit(state)
    save_file(state, str(dst))
    card = json.loads(src.with_suffix(".json").read_text())
    if card_edit:
        card_edit(card)
    dst.with_suffix(".json").write_text(json.dumps(card))
    return dst


def _first(state: dict, cond: Callable[[torch.Tensor], bool]) -> str:
    return next(k for k, v in state.items() if cond(v))


def _wrong_shape(state: dict) -> None:
    k = _first(state, lambda v: v.ndim == 4)
    state[k] = torch.zeros(*state[k].shape[:-1], state[k].shape[-1] + 2)


def _nan(state: dict) -> None:
    k = _first(state, lambda v: v.is_floating_point() and v.numel() > 4)
    state[k] = state[k].clone()
    state[k].view(-1)[3] = float("nan")


def _yaml(e: dict, name: str, text: str) -> Path:
    p = e["root"] / "lesions" / f"{name}.yaml"
    base = "format: folders\npath: .\nimages: images\nmasks: masks\nlabels: labels.csv\n"
    p.write_text(base + text)
    return p


def _nifti(e: dict, name: str, data: np.ndarray) -> Path:
    import nibabel as nib

    p = e["root"] / "nii" / f"{name}.nii.gz"
    p.parent.mkdir(exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    return p


def _nifti_header_only(e: dict, shape: tuple[int, ...]) -> Path:
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.uint8)
    p = e["root"] / "nii" / "huge.nii.gz"
    p.parent.mkdir(exist_ok=True)
    raw = hdr.binaryblock + b"\0" * (352 - len(hdr.binaryblock)) + b"\0" * 1000
    p.write_bytes(gzip.compress(raw))
    return p


def _png_header(e: dict, w: int, h: int, name: str = "huge.png") -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    p = e["root"] / name
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return p


def _file(e: dict, name: str, data: bytes) -> Path:
    p = e["root"] / name
    p.write_bytes(data)
    return p


def _cut_short_checkpoint(e: dict) -> Path:
    run = e["root"] / "cut"
    shutil.copytree(e["run"], run, dirs_exist_ok=True)
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    return run


def _with_card(e: dict, weights: Path) -> Path:
    shutil.copyfile(e["weights"].with_suffix(".json"), weights.with_suffix(".json"))
    return weights


def _cut_weights(e: dict) -> Path:
    p = e["root"] / "variants" / "cut.safetensors"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(e["weights"].read_bytes()[: e["weights"].stat().st_size // 2])
    shutil.copyfile(e["weights"].with_suffix(".json"), p.with_suffix(".json"))
    return p


def _sparse(e: dict, name: str, size: int) -> Path:
    p = e["root"] / name
    with open(p, "wb") as f:
        f.truncate(size)
    return p


W, Y, IMG = "{weights}", "{yaml}", "{image}"
PREDICT = ["medical", "predict", IMG, "--weights", W, "--out", "{root}/out"]
TRAIN_ARGS = ["medical", "train", "--data", Y, *TRAIN, "--out", "{root}/train_out"]


def _predict_with(weights: Callable[[dict], Path]) -> Callable[[dict], list[str]]:
    return lambda e: [
        "medical",
        "predict",
        str(e["image"]),
        "--weights",
        str(weights(e)),
        "--out",
        str(e["root"] / "o"),
    ]


def _predict_source(source: Callable[[dict], Path]) -> Callable[[dict], list[str]]:
    return lambda e: [
        "medical",
        "predict",
        str(source(e)),
        "--weights",
        str(e["weights"]),
        "--out",
        str(e["root"] / "o"),
    ]


def _train_on(text: str) -> Callable[[dict], list[str]]:
    name = f"y{abs(hash(text)) % 10**8}"
    return lambda e: ["medical", "train", "--data", str(_yaml(e, name, text)), *TRAIN, "--out", str(e["root"] / "t")]


CASES: list[tuple[str, list[str] | Callable[[dict], list[str]], str]] = [
    # argument validation (argparse layer)
    ("predict --batch 0", [*PREDICT, "--batch", "0"], "--batch must be at least 1"),
    ("train --batch 0", [*TRAIN_ARGS, "--batch", "0"], "--batch must be at least 1"),
    ("train --epochs 0", [*TRAIN_ARGS, "--epochs", "0"], "--epochs must be at least 1"),
    ("train --imgsz 31 31", [*TRAIN_ARGS, "--imgsz", "31", "31"], "multiple of 32"),
    ("train --imgsz 0 64", [*TRAIN_ARGS, "--imgsz", "0", "64"], "multiple of 32"),
    ("train --lr nan", [*TRAIN_ARGS, "--lr", "nan"], "--lr must be a finite number above 0"),
    ("train --lr -1", [*TRAIN_ARGS, "--lr", "-1"], "--lr must be a finite number above 0"),
    ("train --lr inf", [*TRAIN_ARGS, "--lr", "inf"], "--lr must be a finite number above 0"),
    ("train --lr abc", [*TRAIN_ARGS, "--lr", "abc"], "expected a number"),
    ("train --workers -1", [*TRAIN_ARGS, "--workers", "-1"], "--workers must be 0 or more"),
    ("train --seed -3", [*TRAIN_ARGS, "--seed", "-3"], "--seed must be 0 or more"),
    ("train --max-batches 0", [*TRAIN_ARGS, "--max-batches", "0"], "--max-batches must be at least 1"),
    ("train --task-weights mask=nan", [*TRAIN_ARGS, "--task-weights", "mask=nan"], "finite number >= 0"),
    ("train --task-weights mask", [*TRAIN_ARGS, "--task-weights", "mask"], "expects TASK=NUMBER"),
    ("export --imgsz 31 31", ["medical", "export", "--weights", W, "--imgsz", "31", "31"], "multiple of 32"),
    (
        "export --tasks bogus",
        ["medical", "export", "--weights", W, "--out", "{root}/x.onnx", "--tasks", "bogus"],
        "unknown head(s) bogus",
    ),
    # weights and model cards
    (
        "weights: a tensor of the wrong shape",
        _predict_with(lambda e: _weights_variant(e, "s", state_edit=_wrong_shape)),
        "has shape",
    ),
    ("weights: a NaN tensor", _predict_with(lambda e: _weights_variant(e, "n", state_edit=_nan)), "NaN/inf value"),
    (
        "card: unknown encoder",
        _predict_with(lambda e: _weights_variant(e, "e", card_edit=lambda c: c["model"].update(encoder="no_such_net"))),
        "unknown encoder 'no_such_net'",
    ),
    (
        "card: unknown head type",
        _predict_with(
            lambda e: _weights_variant(e, "h", card_edit=lambda c: c["model"]["heads"]["mask"].update(type="x"))
        ),
        "cannot be built",
    ),
    (
        "card: neck_channels of the wrong type",
        _predict_with(lambda e: _weights_variant(e, "t", card_edit=lambda c: c["model"].update(neck_channels="many"))),
        "cannot be built",
    ),
    (
        "card: heads not a mapping",
        _predict_with(lambda e: _weights_variant(e, "m", card_edit=lambda c: c["model"].update(heads=[1, 2]))),
        "'heads' mapping",
    ),
    (
        "card: a huge network (checked before allocating)",
        _predict_with(lambda e: _weights_variant(e, "g", card_edit=lambda c: c["model"].update(neck_channels=100_000))),
        "GB network, above the 2 GB limit",
    ),
    (
        "card: a bigger network than the file holds",
        _predict_with(lambda e: _weights_variant(e, "b", card_edit=lambda c: c["model"].update(neck_channels=200))),
        "the file holds",
    ),
    (
        "weights: junk safetensors",
        _predict_with(lambda e: _with_card(e, _file(e, "junk.safetensors", b"\x10" * 64))),
        "not a readable safetensors",
    ),
    (
        "weights: cut short",
        _predict_with(lambda e: _cut_weights(e)),
        "not a readable safetensors",
    ),
    ("weights: missing file", [*PREDICT[:3], "--weights", "{root}/none.safetensors"], "not found"),
    # dataset YAML
    ("yaml: classes is a string", _train_on("classes: lesion\n"), "got the string 'lesion'"),
    ("yaml: classes is a number", _train_on("classes: 5\n"), "'classes' must be a list of names"),
    ("yaml: one class only", _train_on("classes: [lesion]\n"), "needs the background"),
    ("yaml: duplicate classes", _train_on("classes: [a, a]\n"), "distinct"),
    ("yaml: bad key regex", _train_on("key: '(['\n"), "not a valid regular expression"),
    ("yaml: input.size text", _train_on("input: {size: abc}\n"), "input.size must be [H, W]"),
    ("yaml: input.size 31", _train_on("input: {size: [31, 31]}\n"), "multiples of 32"),
    ("yaml: input not a mapping", _train_on("input: 7\n"), "'input' must be a mapping"),
    ("yaml: split a list", _train_on("split: [1, 2]\n"), "'split' must be a mapping"),
    ("yaml: split.val_fraction 2", _train_on("split: {val_fraction: 2}\n"), "'val_fraction' must be in"),
    ("yaml: slice_axis text", _train_on("slice_axis: x\n"), "'slice_axis' must be a whole number"),
    ("yaml: invert_masks 'no' string", _train_on("invert_masks: 'no'\n"), "'invert_masks' must be true or false"),
    ("yaml: images a list", _train_on("images: [a, b]\n"), "'images' must be a single name"),
    ("yaml: not YAML", _train_on("classes: [a\n"), "not valid YAML"),
    ("yaml: path null", lambda e: ["medical", "train", "--data", str(_yaml_raw(e, "path: null\n")), *TRAIN], "'path'"),
    # resume, output folders
    (
        "train --resume from a cut-short last.pt",
        lambda e: [
            "medical",
            "train",
            "--data",
            str(e["yaml"]),
            *TRAIN,
            "--resume",
            "--out",
            str(_cut_short_checkpoint(e)),
        ],
        "checkpoint is damaged",
    ),
    (
        "train --resume after an architecture change",
        lambda e: [
            "medical",
            "train",
            "--data",
            str(e["yaml"]),
            *TRAIN[:-1],
            "24",
            "--epochs",
            "2",
            "--resume",
            "--out",
            str(e["run"]),
        ],
        "checkpoint does not match",
    ),  # fmt: skip
    (
        "train --out is a file",
        lambda e: ["medical", "train", "--data", str(e["yaml"]), *TRAIN, "--out", str(_file(e, "afile", b"x"))],
        "afile: File exists",
    ),
    (
        "predict --out is a file",
        lambda e: [
            "medical",
            "predict",
            str(e["image"]),
            "--weights",
            str(e["weights"]),
            "--out",
            str(_file(e, "f2", b"x")),
        ],
        "f2",
    ),
    # inputs: every bad item is reported in one line ("skipped <file>: <problem>")
    ("NIfTI: complex voxels", _predict_source(lambda e: _nifti(e, "c", np.zeros((8, 8, 2), np.complex64))), "complex"),
    (
        "NIfTI: RGB voxels",
        _predict_source(lambda e: _nifti(e, "rgb", np.zeros((8, 8, 2), [("R", "u1"), ("G", "u1"), ("B", "u1")]))),
        "RGB",
    ),
    ("NIfTI: 5000x5000 slices", _predict_source(lambda e: _nifti_header_only(e, (5000, 5000, 1))), "MP slices"),
    (
        "image: 30000x30000 PNG header",
        _predict_source(lambda e: _png_header(e, 30000, 30000)),
        "above the 250 MP limit",
    ),
    (
        "image: HDR bytes under .png",
        _predict_source(lambda e: _file(e, "hdr.png", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n")),
        "Radiance HDR images are not supported",
    ),
    ("image: a 3 GB file", _predict_source(lambda e: _sparse(e, "big.jpg", 3 << 30)), "above the 1024 MB limit"),
    ("image: missing", [*PREDICT[:2], "{root}/nope.png", *PREDICT[3:]], "no such file"),
]


def _yaml_raw(e: dict, text: str) -> Path:
    p = e["root"] / "lesions" / "raw.yaml"
    p.write_text(text)
    return p


def _argv(case, e: dict) -> list[str]:
    argv = case(e) if callable(case) else case
    return [a.format(**{k: str(v) for k, v in e.items()}) for a in argv]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_gives_one_line(env, capsys, argv, message):
    args = _argv(argv, env)
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]


def test_genuine_bug_still_shows_its_traceback(monkeypatch):
    from polyhead.cli import expected_error

    assert expected_error(KeyError("x")) is None and expected_error(TypeError("x")) is None
    assert expected_error(OSError(28, "No space left on device", "/d/last.pt")) == "/d/last.pt: No space left on device"


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs root and unshare for a tmpfs")
def test_full_disk_is_one_line(env, tmp_path):
    """Training into a 300 KB tmpfs (a private mount namespace: nothing outside the test sees it)."""
    full = tmp_path / "full"
    full.mkdir()
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip("no mount namespaces here")
    cmd = [sys.executable, "-m", "polyhead", "medical", "train", "--data", str(env["yaml"]), *TRAIN, "--epochs", "1"]
    cmd += ["--max-batches", "1", "--out", str(full / "run")]
    script = f"mount -t tmpfs -o size=300k tmpfs {full} && exec {' '.join(cmd)}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and "\r" not in ln and "epoch" not in ln]
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert lines[-1].startswith("error:") and "No space left on device" in lines[-1], done.stderr
    assert len([ln for ln in lines if ln.startswith("error")]) == 1
