"""One loader for torch and ONNX Runtime: the cached export gives the same answers as torch."""

import numpy as np
import pytest
import torch

from polyhead.errors import InputError
from polyhead.runtime import load_network
from polyhead.weights import WEIGHTS_DIR

WEIGHTS = WEIGHTS_DIR / "driving.safetensors"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    import polyhead.offline

    monkeypatch.setattr(polyhead.offline, "CACHE_DIR", tmp_path / "cache")


def test_onnx_runtime_matches_torch_and_export_is_cached(tmp_path):
    torch_model, _ = load_network(WEIGHTS, "torch")
    onnx_model, card = load_network(WEIGHTS, "onnx", input_size=(128, 224))
    x = torch.randn(2, 3, 128, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a = torch_model(x)
    b = onnx_model(x)
    assert set(a) == set(b) == set(card["model"]["heads"])
    for task in a:
        assert torch.allclose(a[task], b[task], atol=1e-3, rtol=1e-3), task
    cached = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    load_network(WEIGHTS, "auto", input_size=(128, 224))
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not exported again
    load_network(WEIGHTS, "onnx", input_size=(160, 224))
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 2  # another size, another file


def test_driving_app_gives_the_same_result_in_both_runtimes():
    from polyhead.apps.driving.app import DrivingApp

    rgb = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    a = DrivingApp().load(runtime="torch").predict_image(rgb).to_json()
    b = DrivingApp().load(runtime="onnx").predict_image(rgb).to_json()
    assert abs(a["drivable_share"] - b["drivable_share"]) < 0.01
    assert len(a["objects"]) == len(b["objects"])
    from polyhead.export import OnnxModel

    assert isinstance(DrivingApp().load().model, OnnxModel)  # ONNX Runtime is the default


def test_unknown_runtime_is_one_line():
    with pytest.raises(InputError, match="--runtime must be one of"):
        load_network(WEIGHTS, "tensorrt")
