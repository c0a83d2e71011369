import pickle

import pytest
import torch

from polyhead.apps.driving.model import build_driving_model
from polyhead.errors import InputError
from polyhead.export import OnnxModel, export_onnx
from polyhead.weights import load_model, load_state, save_weights


def test_safetensors_round_trip_rebuilds_architecture(tmp_path):
    model = build_driving_model().eval()
    path = save_weights(model, tmp_path / "m.safetensors", {"classes": ["car"]})
    loaded, card = load_model(path)
    x = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert card["classes"] == ["car"] and card["model"]["encoder"] == model.config["encoder"]
    for t in a:
        assert torch.allclose(a[t], b[t])


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_checkpoint_refused_and_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(InputError, match="--trust-pickle"):
        load_state(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_missing_card_and_corrupt_weights(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="no model card"):
        load_model(tmp_path / "w.safetensors")
    (tmp_path / "w.json").write_text('{"model": {"encoder": "lcnet_075", "heads": {}}}')
    with pytest.raises(InputError, match="not a readable safetensors"):
        load_model(tmp_path / "w.safetensors")


def test_onnx_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build_driving_model().eval()
    path = export_onnx(model, tmp_path / "m.onnx", (128, 192))
    ort = OnnxModel(path)
    x = torch.randn(2, 3, 128, 192)
    with torch.no_grad():
        ref = model(x)
    got = ort(x)
    assert set(got) == {"det", "drivable", "lane"} and ort.input_size == (128, 192)
    for t in ref:
        assert got[t].shape == ref[t].shape
        assert float((got[t] - ref[t]).abs().max()) < 1e-3, t
    assert list(ort(x, tasks=["lane"])) == ["lane"]
