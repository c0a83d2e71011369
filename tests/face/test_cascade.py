"""Cascade nets: output shapes, joint losses, hard-sample mining, pyramid scales, weights round trip."""

import numpy as np
import pytest
import torch

from polyhead.apps.face.cascade import INPUT_SIZES, STAGES, build_net, cascade_loss, hard_mining
from polyhead.apps.face.detect import DetectorConfig, FaceDetector, apply_offsets, pyramid_scales, square


@pytest.mark.parametrize("stage", STAGES)
def test_output_shapes(stage):
    s = INPUT_SIZES[stage]
    out = build_net(stage)(torch.zeros(3, 3, s, s))
    assert [tuple(v.flatten(1).shape) for v in out.values()] == [(3, 2), (3, 4), (3, 10)]


def test_pnet_is_fully_convolutional():
    out = build_net("pnet")(torch.zeros(1, 3, 40, 60))
    assert out["cls"].shape == (1, 2, 15, 25)  # (n - 12) / 2 + 1 windows per axis


def test_hard_mining_keeps_the_hardest_share():
    losses = torch.arange(10, dtype=torch.float32)
    assert float(hard_mining(losses, 0.7)) == pytest.approx(np.mean(np.arange(3, 10)))
    assert float(hard_mining(losses, 0.1)) == 9.0


def test_cascade_loss_masks_and_weights():
    torch.manual_seed(0)
    out = {"cls": torch.randn(6, 2, requires_grad=True), "box": torch.randn(6, 4), "lmk": torch.randn(6, 10)}
    label = torch.tensor([1, 0, -1, 0, 1, -2])
    box = torch.zeros(6, 4)
    lmk = torch.full((6, 10), float("nan"))
    lmk[0] = 0.5
    losses = cascade_loss(out, label, box, lmk, "onet", ratio=1.0)
    ce = torch.nn.functional.cross_entropy(out["cls"][[0, 1, 3, 4]], label[[0, 1, 3, 4]])
    assert float(losses["cls"]) == pytest.approx(float(ce.detach()), rel=1e-5)
    assert float(losses["box"]) == pytest.approx(float((out["box"][[0, 2, 4]] ** 2).sum(1).mean()), rel=1e-5)
    assert float(losses["lmk"]) == pytest.approx(float(((out["lmk"][0] - 0.5) ** 2).sum()), rel=1e-5)
    assert float(losses["total"]) == pytest.approx(float(losses["cls"] + 0.5 * losses["box"] + losses["lmk"]), rel=1e-5)
    losses["total"].backward()
    assert out["cls"].grad is not None
    mined = cascade_loss(out, label, box, lmk, "onet", ratio=0.5)["cls"]
    assert float(mined) >= float(losses["cls"])  # the hardest half has at least the mean loss


def test_pyramid_scales():
    s = pyramid_scales(480, 640, min_size=20, factor=0.709)
    assert s[0] == pytest.approx(0.6) and all(b / a == pytest.approx(0.709) for a, b in zip(s, s[1:], strict=False))
    assert 480 * s[-1] >= 12 > 480 * s[-1] * 0.709
    assert pyramid_scales(10, 10, min_size=20) == []
    with pytest.raises(ValueError):
        pyramid_scales(100, 100, factor=1.2)


def test_box_helpers():
    b = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    assert square(b).tolist() == [[-5.0, 0.0, 15.0, 20.0]]
    assert apply_offsets(b, torch.tensor([[0.1, 0.1, -0.1, 0.0]])).tolist() == [[1.0, 2.0, 9.0, 20.0]]


def test_detector_batches_and_handles_empty_and_tiny():
    torch.manual_seed(0)
    nets = {k: build_net(k) for k in STAGES}
    det = FaceDetector(nets, DetectorConfig(min_size=24, thresholds=(0.99, 0.99, 0.99)))
    rng = np.random.default_rng(0)
    imgs = [
        rng.integers(0, 255, (60, 80, 3), np.uint8),
        rng.integers(0, 255, (50, 40, 3), np.uint8),
        np.zeros((5, 5, 3), np.uint8),
    ]
    res = det.detect(imgs)
    assert len(res) == 3
    for r in res:
        assert r["boxes"].shape[1:] == (4,) and r["points"].shape[1:] == (5, 2) and len(r["scores"]) == len(r["boxes"])
    assert len(res[2]["boxes"]) == 0


def test_crop_pyramid_matches_full_resolution_crops():
    """Crops cut from the 2x reductions stay within a few grey levels of cutting at full resolution."""
    from polyhead.apps.face.detect import CropPyramid, crop_windows

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:240, 0:320]
    smooth = np.sin(xx / 9.0) + np.cos(yy / 13.0) + rng.normal(0, 0.05, (240, 320))  # textured, not flat
    batch = torch.from_numpy(np.stack([smooth, smooth.T[:240, :240].repeat(2, 1)[:, :320], -smooth]) / 2)
    batch = batch.float()[None].repeat(2, 1, 1, 1)
    side = np.exp(rng.uniform(np.log(12), np.log(230), 300))
    cx, cy = rng.uniform(0, 320, 300), rng.uniform(0, 240, 300)
    rois = torch.tensor(
        np.stack([rng.integers(0, 2, 300), cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    ).float()
    for size in (24, 48):
        full, pyr = crop_windows(batch, rois, size), CropPyramid(batch).crop(rois, size)
        assert pyr.shape == full.shape == (300, 3, size, size)
        assert (pyr - full).abs().mean() * 128 < 2.0  # grey levels
    small = rois[(rois[:, 3] - rois[:, 1]) < 2 * 24]  # small windows are cut at full resolution: identical
    assert torch.equal(CropPyramid(batch).crop(small, 24), crop_windows(batch, small, 24))


def test_batched_across_cores_equals_one_at_a_time():
    """The shipped cascade on 4 generated scenes: one batched call (split across cores) finds exactly
    what four single-image calls find."""
    from polyhead.apps.face.app import FaceApp
    from polyhead.apps.face.bench import bench_images

    det = FaceApp().load().detector
    images = bench_images(4, (240, 320))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        batched = det.detect(images)
        assert torch.get_num_threads() == 2  # the workers' one-thread setting does not leak
    finally:
        torch.set_num_threads(threads)
    single = [det.detect([im])[0] for im in images]
    assert sum(len(r["scores"]) for r in single) >= 4  # the portrait is found in each scene
    for b, s in zip(batched, single, strict=True):
        assert b["boxes"].shape == s["boxes"].shape
        np.testing.assert_allclose(b["boxes"], s["boxes"], atol=0.05)
        np.testing.assert_allclose(b["points"], s["points"], atol=0.05)
        np.testing.assert_allclose(b["scores"], s["scores"], atol=1e-4)


def test_chunks_by_pixels_keeps_order_and_budget():
    from polyhead.apps.face.detect import chunks_by_pixels

    sizes = [(288, 384), (288, 384), (40, 50), (40, 50), (40, 50), (12, 16)]
    chunks = chunks_by_pixels(sizes, 65_536)
    assert [i for c in chunks for i in c] == list(range(6))
    assert chunks[:2] == [[0], [1]] and chunks[2] == [2, 3, 4, 5]


def test_final_flip_averages_a_crop_with_its_mirror_and_is_mirror_symmetric():
    """O-Net flip averaging (``final_flip``): on the shipped weights and the example photo, a net output and
    its mirror average to mirror-image rows (points mirrored and left/right swapped, box edges swapped),
    and the faces found stay where they were without it."""
    import cv2

    from polyhead.apps.face.detect import average_mirrored
    from polyhead.apps.face.model import load_face_weights
    from tests.face.test_export import EXAMPLE

    parts, _ = load_face_weights("weights/face.safetensors")
    onet = parts["onet"].eval()
    torch.manual_seed(0)
    crops = torch.rand(4, 3, 48, 48) * 2 - 1
    with torch.inference_mode():
        a = average_mirrored(onet(torch.cat([crops, crops.flip(-1)])))
        b = average_mirrored(onet(torch.cat([crops.flip(-1), crops])))
    swap = [1, 0, 2, 4, 3]
    assert torch.allclose(a["p"], b["p"], atol=1e-6)
    assert torch.allclose(a["lmk"][:, :5], 1 - b["lmk"][:, :5][:, swap], atol=1e-5)
    assert torch.allclose(a["lmk"][:, 5:], b["lmk"][:, 5:][:, swap], atol=1e-5)
    assert torch.allclose(a["box"], torch.stack([-b["box"][:, 2], b["box"][:, 1], -b["box"][:, 0], b["box"][:, 3]], 1))
    img = cv2.cvtColor(cv2.imread(str(EXAMPLE)), cv2.COLOR_BGR2RGB)
    plain = FaceDetector(parts, DetectorConfig(thresholds=(0.6, 0.7, 0.7))).detect([img])[0]
    flip = FaceDetector(parts, DetectorConfig(thresholds=(0.6, 0.7, 0.7), final_flip=True)).detect([img])[0]
    assert len(flip["boxes"]) >= 1 and len(plain["boxes"]) >= 1
    k = int(np.argmax(flip["scores"]))
    d = np.abs(plain["boxes"] - flip["boxes"][k]).max(1)
    j = int(np.argmin(d))
    iod = np.linalg.norm(flip["points"][k, 0] - flip["points"][k, 1])
    assert d[j] < 0.15 * iod  # the same face, refined rather than moved
    assert np.linalg.norm(plain["points"][j] - flip["points"][k], axis=1).max() < 0.15 * iod
