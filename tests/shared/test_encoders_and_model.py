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


def test_full_resolution_level_reads_the_image_and_trains():
    """Stride 1 in ``strides``: the encoder passes the image itself, the smp U-Net adds a narrow full-resolution
    block over it, and a mask head on that level gets pixel-exact logits that a loss step changes."""
    cfg = {
        "encoder": "efficientnet_lite0",
        "neck": "smp_unet",
        "strides": [1, 2, 4, 8, 16, 32],
        "neck_channels": 24,
        "heads": {"mask": {"type": "segment", "num_classes": 2, "in_stride": 1, "mid_channels": 8}},
    }
    model = build_model(cfg)
    assert model.encoder.strides[0] == 1 and model.encoder.channels[0] == 3
    assert model.neck.level_channels[1] == 16 and model.neck.level_channels[2] == 24
    x = torch.randn(2, 3, 64, 96)
    feats = model.forward_features(x)
    assert tuple(feats[1].shape) == (2, 16, 64, 96) and tuple(feats[32].shape) == (2, 24, 2, 3)
    # the full-resolution level sees the pixels beside it: one changed pixel moves its own output far more
    # than outputs 20+ px away (which only the deep, global levels connect it to)
    model.eval()
    with torch.no_grad():
        x2 = x.clone()
        x2[0, :, 30, 40] += 5.0
        diff = (model.forward_features(x2)[1] - model.forward_features(x)[1]).abs()[0].sum(0)
    assert diff[30, 40] > 50 * diff[:, :20].max()
    model.train()
    out = model(x)
    target = torch.randint(0, 2, (2, 64, 96))
    loss = model.compute_losses(out, {"mask": target}, {"mask": torch.ones(2, dtype=torch.bool)})["mask"]
    loss.backward()
    assert model.neck.decoder.blocks[-1].conv1[0].weight.grad.abs().sum() > 0
