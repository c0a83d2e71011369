import cv2
import numpy as np
import torch

from polyhead.apps.driving.postprocess import fit_lanes, postprocess
from polyhead.preprocess import Letterbox


def _two_lanes(h=200, w=300, dashed_right=True):
    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (40, h - 1), (130, 60), 1, 4)
    for y in range(h - 1, 60, -30):  # dashes of a right lane
        y2 = max(60, y - 15 if dashed_right else y - 30)
        x = lambda yy: int(260 - (h - 1 - yy) * 90 / (h - 61))  # noqa: E731
        cv2.line(m, (x(y), y), (x(y2), y2), 1, 4)
    return m


def test_fit_lanes_splits_and_orders_lanes():
    lanes = fit_lanes(_two_lanes())
    assert len(lanes) == 2
    (left, _), (right, _) = lanes
    assert left[0, 0] < right[0, 0]  # sorted left to right at the bottom
    assert abs(left[0, 0] - 40) < 4 and abs(left[-1, 0] - 130) < 6  # follows the drawn line
    assert left[0, 1] > left[-1, 1]  # ordered bottom to top
    assert abs(right[0, 0] - 260) < 6


def test_fit_lanes_ignores_specks_and_empty_masks():
    assert fit_lanes(np.zeros((100, 100), np.uint8)) == []
    m = np.zeros((100, 100), np.uint8)
    m[50:52, 50:53] = 1
    assert fit_lanes(m) == []


def test_postprocess_maps_to_original_pixels():
    orig = (360, 480)
    lb = Letterbox.fit(orig, (384, 640))
    lane_in = np.zeros((384, 640), np.uint8)
    x0, y0, x1, y1 = lb.inner
    cv2.line(lane_in, (x0 + 50, y1 - 1), (x0 + 200, y0 + 100), 1, 5)
    lane_logits = torch.from_numpy(np.stack([1 - lane_in, lane_in]).astype(np.float32))[None] * 10
    da = torch.zeros(1, 2, 384, 640)
    da[0, 1, 200:, :] = 5
    det = torch.zeros(1, 7, 4)
    det[0, :4, 0] = torch.tensor([320.0, 192.0, 100.0, 50.0])  # cx cy w h in input pixels
    det[0, 4, 0] = 0.9  # class 0 prob
    (r,) = postprocess({"det": det, "drivable": da, "lane": lane_logits}, [lb], ["car", "ped", "cyc"])
    assert r.drivable.shape == orig and r.lane_mask.shape == orig
    expected = lb.to_original_boxes(np.array([[270, 167, 370, 217]]))[0]
    assert np.allclose(r.boxes[0], expected, atol=1) and r.names[r.classes[0]] == "car"
    assert len(r.lanes) == 1
    p = r.lanes[0].points
    assert abs(p[0, 0] - 50 / lb.scale) < 4 and p[0, 1] > p[-1, 1]
    # the fitted polynomial, in original pixels, passes through the points
    assert np.allclose(np.polyval(r.lanes[0].coeffs, p[:, 1]), p[:, 0], atol=1.0)
    doc = r.to_json()
    assert doc["objects"][0]["class"] == "car" and 0.3 < doc["drivable_share"] < 0.6
    assert r.plot(np.zeros((*orig, 3), np.uint8)).shape == (*orig, 3)
