import pytest
import torch

from polyhead.encoders import STRIDES, create_encoder, list_encoders
from polyhead.errors import InputError
from polyhead.model import build_model


@pytest.mark.parametrize("name", list_encoders())
def test_every_registered_encoder_gives_four_strides(name):
    enc = create_encoder(name).eval()
    with torch.no_grad():
        feats = enc(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == enc.channels
    assert [(64 // s, 96 // s) for s in STRIDES] == [tuple(f.shape[-2:]) for f in feats]


def test_unknown_encoder_names_the_choices():
    with pytest.raises(InputError, match="efficientnet_lite0"):
        create_encoder("vgg_nonexistent")


def test_encoder_loads_only_local_files(tmp_path):
    with pytest.raises(InputError, match="only local files"):
        create_encoder("resnet18", weights=tmp_path / "missing.safetensors")


CFG = {
    "encoder": "mobilenetv3_small_100",
    "neck_channels": 32,
    "heads": {
        "det": {"type": "detect", "num_classes": 2},
        "seg": {"type": "segment", "num_classes": 3},
        "cls": {"type": "classify", "num_outputs": 4},
        "age": {"type": "classify", "num_outputs": 1, "regression": True},
        "kpt": {"type": "keypoints", "num_points": 5},
    },
}


def test_multitask_forward_shapes_and_task_switch():
    model = build_model(CFG).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        out = model(x)
        assert out["det"].shape[:2] == (2, 4 + 2)
        assert out["seg"].shape == (2, 3, 96, 128)
        assert out["cls"].shape == (2, 4) and out["age"].shape == (2, 1)
        assert out["kpt"].shape == (2, 5, 2) and out["kpt"].min() >= 0 and out["kpt"].max() <= 1
        model.active_tasks = ["seg"]
        assert list(model(x)) == ["seg"]
        assert list(model(x, tasks=["cls", "kpt"])) == ["cls", "kpt"]


def _targets(b=2, h=96, w=128):
    return {
        "det": torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.3], [1, 0, 0.3, 0.4, 0.2, 0.2]]),
        "seg": torch.randint(0, 3, (b, h, w)),
        "cls": torch.tensor([1, 3]),
        "age": torch.tensor([[30.0], [50.0]]),
        "kpt": torch.rand(b, 5, 3).round(),
    }


def test_missing_labels_are_masks_not_errors():
    torch.manual_seed(0)
    model = build_model(CFG).train()
    x = torch.randn(2, 3, 96, 128)
    out = model(x)
    none = {t: torch.tensor([False, False]) for t in model.tasks}
    losses = model.compute_losses(out, _targets(), none)
    assert all(float(v.detach()) == 0.0 for v in losses.values())
    sum(losses.values()).backward()  # graph stays connected: no error, zero grads
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0.0 for p in model.parameters())


def test_absent_sample_does_not_change_a_task_loss():
    torch.manual_seed(0)
    model = build_model(CFG).train()
    for m in model.modules():  # batch statistics would couple the samples; freeze them
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.Dropout):
            m.eval()
    x = torch.randn(2, 3, 96, 128)
    first = {t: torch.tensor([True, False]) for t in model.tasks}
    tg = _targets()
    tg["det"] = tg["det"][:1]  # only sample 0 carries boxes
    a = model.compute_losses(model(x), tg, first)
    x2 = x.clone()
    x2[1] = torch.randn(3, 96, 128) * 5  # change only the unlabelled sample
    tg2 = {k: v.clone() for k, v in tg.items()}
    tg2["seg"][1] = 0
    tg2["cls"][1] = 0
    b = model.compute_losses(model(x2), tg2, first)
    for t in ("det", "seg", "cls", "age", "kpt"):
        assert torch.isclose(a[t], b[t], rtol=1e-4), t
    assert all(float(v.detach()) > 0 for v in a.values())


def test_unknown_head_type_is_reported():
    with pytest.raises(ValueError, match="unknown type"):
        build_model({"encoder": "resnet18", "heads": {"x": {"type": "nope"}}})
