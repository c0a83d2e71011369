"""`--runtime openvino`: the exported network in OpenVINO gives ONNX Runtime's answers (float32 to 1e-3,
bfloat16 to the same masks and boxes on a real frame), and a missing extra is one line."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
import torch

from polyhead.errors import InputError
from polyhead.export import OnnxModel, export_onnx
from polyhead.weights import load_model
from tests.conftest import TINY_SIZE, shared_data

pytest.importorskip("openvino", reason="the openvino extra is not installed")

from polyhead.openvino_runtime import OpenVinoModel, cpu_has_bf16  # noqa: E402
from polyhead.runtime import load_network  # noqa: E402


@pytest.fixture(scope="module")
def tiny_onnx(tiny_weights: Path, tmp_path_factory) -> Path:
    model, _ = load_model(tiny_weights)
    return export_onnx(model, tmp_path_factory.mktemp("ov") / "tiny.onnx", TINY_SIZE)


def test_float32_matches_onnx_runtime_and_batches(tiny_onnx: Path):
    ov, ort = OpenVinoModel(tiny_onnx, precision="f32"), OnnxModel(tiny_onnx)
    assert ov.tasks == ort.tasks == ["det", "drivable", "lane"] and ov.input_size == TINY_SIZE
    x = torch.randn(2, 3, *TINY_SIZE, generator=torch.Generator().manual_seed(0))
    a, b = ov(x), ort(x)
    for task in ort.tasks:
        assert a[task].shape == b[task].shape and a[task].shape[0] == 2
        assert torch.allclose(a[task], b[task], atol=1e-3, rtol=1e-3), task
    first = ov(x[:1])["det"].clone()
    ov(torch.zeros(1, 3, *TINY_SIZE))
    assert torch.equal(first, ov(x[:1])["det"])  # outputs are copies, not the reused buffers
    assert list(ov(x[:1], ["lane"])) == ["lane"]


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_bfloat16_gives_the_same_masks_and_boxes_on_a_real_frame():
    from polyhead.apps.driving.app import DrivingApp
    from polyhead.io import read_image

    frame = sorted(shared_data("driving", "camvid", "val", "images").glob("*.jpg"))[0]
    rgb = read_image(frame)
    onnx_app, ov_app = DrivingApp().load(runtime="onnx"), DrivingApp().load(runtime="openvino")
    assert ov_app.model.precision == "bf16"
    a, b = onnx_app.predict_image(rgb), ov_app.predict_image(rgb)
    assert (a.drivable == b.drivable).mean() > 0.99
    if len(a.boxes) and len(b.boxes):
        from torchvision.ops import box_iou

        ious = box_iou(torch.as_tensor(a.boxes, dtype=torch.float32), torch.as_tensor(b.boxes, dtype=torch.float32))
        assert ious.max(1).values.min() > 0.8  # every box of one is found by the other


def test_load_network_runs_safetensors_through_the_cached_export(tiny_weights: Path):
    net, card = load_network(tiny_weights, "openvino", input_size=TINY_SIZE)
    assert isinstance(net, OpenVinoModel) and card["app"] == "driving"
    out = net(torch.zeros(1, 3, *TINY_SIZE))
    assert set(out) == {"det", "drivable", "lane"} and all(torch.isfinite(v).all() for v in out.values())


def test_bad_input_is_one_line(tmp_path: Path, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(InputError, match="bad.onnx: not a loadable ONNX model"):
        OpenVinoModel(bad)
    with pytest.raises(InputError, match="--precision must be one of"):
        OpenVinoModel(tiny_onnx, precision="int4")
    with pytest.raises(InputError, match="takes 192x128 input, got 70x50"):
        OpenVinoModel(tiny_onnx)(torch.zeros(1, 3, 50, 70))
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("no openvino")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(InputError, match=r"pip install 'polyhead\[openvino\]'") as e:
        load_network(tiny_onnx, "openvino")
    assert "\n" not in str(e.value)
