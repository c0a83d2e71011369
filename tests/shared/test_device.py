"""--device on a CPU-only machine: parsing, the one-line errors, the CUDA decisions with a faked GPU."""

import pytest
import torch

from polyhead import device as dev
from polyhead.cli import main
from polyhead.errors import InputError


@pytest.fixture(autouse=True)
def _restore_default():
    yield
    dev.select("cpu")


def fake_gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.mark.parametrize(
    "text, expected",
    [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps"), (None, "cpu"), ("", "cpu")],
)
def test_parse(text, expected):
    assert str(dev.parse_device(text)) == expected


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cpu:1", "cuda:-1", "tpu:0", "cuda:0:1"])
def test_parse_refuses_in_one_line(text):
    with pytest.raises(InputError, match=r"--device .*expected one of cpu, cuda, cuda:N, mps") as e:
        dev.parse_device(text)
    assert "\n" not in str(e.value)


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    fake_gpus(monkeypatch, 0)
    with pytest.raises(InputError, match=r"no CUDA GPU visible \(torch.cuda.is_available\(\) is False\)"):
        dev.select("cuda")
    assert dev.current() == torch.device("cpu")  # nothing changed


def test_missing_gpu_index(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert dev.select("cuda:1") == torch.device("cuda", 1) and dev.current() == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"GPU 2 does not exist \(2 visible: cuda:0..cuda:1\)"):
        dev.select("cuda:2")


@pytest.mark.parametrize(
    "argv",
    [
        ["driving", "predict", "x.jpg", "--device", "cuda"],
        ["driving", "train", "--data", "d.yaml", "--device", "cuda"],
        ["driving", "val", "--data", "d.yaml", "--device", "cuda:0"],
        ["demo", "--device", "cuda"],
        ["bench", "driving", "--device", "cuda"],
    ],
)
def test_cli_refuses_cuda_on_a_cpu_machine(argv, capsys, monkeypatch):
    fake_gpus(monkeypatch, 0)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --device {argv[-1]}: no CUDA GPU visible (torch.cuda.is_available() is False)"]


def test_cli_refuses_a_bad_device_name(capsys):
    assert main(["medical", "predict", "x.png", "--device", "gpu0"]) == 2
    assert "--device gpu0: expected one of cpu, cuda, cuda:N, mps" in capsys.readouterr().err


def test_amp_only_on_cuda():
    assert dev.use_amp(torch.device("cuda", 0)) and dev.use_amp(torch.device("cuda"))
    assert not dev.use_amp(torch.device("cpu")) and not dev.use_amp(torch.device("mps"))


def test_distributed_backend_and_rank_device():
    assert dev.distributed_setup(torch.device("cuda"), local_rank=3) == ("nccl", torch.device("cuda", 3))
    assert dev.distributed_setup(torch.device("cuda", 0), local_rank=1) == ("nccl", torch.device("cuda", 1))
    assert dev.distributed_setup(torch.device("cpu"), local_rank=1) == ("gloo", torch.device("cpu"))


def test_onnx_providers(capsys):
    gpu_ort = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    cuda1 = torch.device("cuda", 1)
    assert dev.onnx_providers(cuda1, gpu_ort) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert dev.onnx_provider_options(cuda1, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        {"device_id": 1},
        {},
    ]
    assert dev.onnx_providers(torch.device("cpu"), gpu_ort) == ["CPUExecutionProvider"]
    assert capsys.readouterr().err == ""
    assert dev.onnx_providers(torch.device("cuda"), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    err = capsys.readouterr().err
    assert "no CUDAExecutionProvider (install onnxruntime-gpu)" in err and err.count("\n") == 1


def test_onnx_model_asks_for_the_cuda_provider(tmp_path, monkeypatch):
    """An OnnxModel on a (faked) CUDA device hands ONNX Runtime the CUDA provider first when it has it."""
    import onnxruntime as ort

    from polyhead.export import OnnxModel, export_module

    path = export_module(torch.nn.Conv2d(3, 2, 1), tmp_path / "m.onnx", torch.zeros(1, 3, 8, 8), ["out"])
    seen = []
    real = ort.InferenceSession

    def session(p, opts, providers=None, provider_options=None):
        seen.append((providers, provider_options))
        return real(p, opts, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    fake_gpus(monkeypatch, 1)
    OnnxModel(path, device="cuda")
    assert seen[0] == (["CUDAExecutionProvider", "CPUExecutionProvider"], [{"device_id": 0}, {}])
    OnnxModel(path)  # the default device: the CPU
    assert seen[-1][0] == ["CPUExecutionProvider"]


def test_trainer_device_and_amp_decision(monkeypatch, tmp_path):
    """The Trainer uses --device (cpu here: no AMP, a disabled GradScaler); 'cuda' without a GPU is refused."""
    from polyhead.model import build_model
    from polyhead.train.trainer import TrainConfig, Trainer

    model = build_model({"encoder": "resnet18", "heads": {"cls": {"type": "classify", "num_outputs": 2}}})
    t = Trainer(model, [], lambda m: {}, TrainConfig(out_dir=tmp_path, epochs=1, ema=False, device="cpu"))
    assert t.device == torch.device("cpu") and not t.amp and not t.scaler.is_enabled()
    assert next(t.model.parameters()).device.type == "cpu"
    fake_gpus(monkeypatch, 0)
    with pytest.raises(InputError, match="no CUDA GPU visible"):
        Trainer(model, [], lambda m: {}, TrainConfig(out_dir=tmp_path, epochs=1, ema=False, device="cuda"))


def test_scale_grad_scales_only_the_gradient():
    from polyhead.train.trainer import _ScaleGrad

    x = torch.tensor(2.0, requires_grad=True)
    y = _ScaleGrad.apply(x * 3, 1024.0)
    assert y.item() == 6.0
    y.backward()
    assert x.grad.item() == 3 * 1024


def test_place_hooks_move_inputs_and_hand_back_cpu_outputs():
    """Off the CPU the model takes CPU inputs and, in eval mode, returns CPU outputs (meta device as a
    stand-in for a GPU); in train mode outputs stay where the model is."""
    model = torch.nn.Linear(2, 2)
    assert dev.place(model, torch.device("cpu")) is model and not model._forward_pre_hooks
    meta = dev.place(torch.nn.Linear(2, 2), torch.device("meta"))
    (moved,) = dev._inputs_to_model_device(meta, (torch.zeros(1, 2),))
    assert moved.device.type == "meta"
    out = {"a": torch.zeros(1, device="meta")}
    meta.train()
    assert dev._outputs_to_cpu_in_eval(meta, (), out)["a"].device.type == "meta"
    assert len(meta._forward_pre_hooks) == 1 and len(meta._forward_hooks) == 1
    dev.place(meta, torch.device("meta"))  # idempotent
    assert len(meta._forward_pre_hooks) == 1
    cpu_out = dev._outputs_to_cpu_in_eval(torch.nn.Linear(2, 2).eval(), (), {"a": [torch.zeros(1)]})
    assert cpu_out["a"][0].device.type == "cpu"
