"""The motion stage and its blob kernel on synthetic masks with known boxes: exact boxes, fragments
merged, specks dropped, the device path equal to the host path."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from pipeline.frame import Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.detection.blobs import fragments, merge_boxes, motion_boxes, shrink, shrink_tensor
from stages.motion import MotionParams, MotionStage

H, W = 360, 640


def scene() -> tuple[np.ndarray, list[list[float]]]:
    """A 640x360 mask: a walker in three fragments (head, body, legs, gaps of 4-6 px), a car, a
    small far pedestrian, and salt noise; with the boxes a motion detector should report."""
    m = np.zeros((H, W), np.uint8)
    m[100:116, 56:72] = 255     # head
    m[120:180, 50:80] = 255     # body (gap 4 px below the head)
    m[186:230, 52:78] = 255     # legs (gap 6 px)
    m[200:260, 300:420] = 255   # car
    m[40:60, 500:510] = 255     # far pedestrian, 200 px
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, H, 300), rng.integers(0, W, 300)
    far = (np.abs(ys[:, None] - np.array([150, 230, 50])) > 40).all(1)  # noise away from the objects
    m[ys[far], xs[far]] = 255
    return m, [[50, 100, 80, 230], [300, 200, 420, 260], [500, 40, 510, 60]]


@pytest.mark.parametrize("factor", [1, 2])
def test_known_boxes_fragments_merged_noise_removed(factor):
    mask, want = scene()
    boxes, pixels = motion_boxes(mask, factor=factor, min_fragment=16, merge_gap=8, min_area=150)
    order = np.argsort(boxes[:, 0])
    np.testing.assert_array_equal(boxes[order], np.array(want, np.float32)[np.argsort([b[0] for b in want])])
    assert sorted(pixels.tolist()) == sorted([16 * 16 + 60 * 30 + 44 * 26, 60 * 120, 200])


@pytest.mark.parametrize("params, n_boxes", [
    (dict(merge_gap=None), 5),   # the walker stays three fragments
    (dict(merge_gap=4), 4),      # the head joins (gap 4), the legs stay apart (gap 6)
    (dict(merge_gap=8), 3),
    (dict(min_area=250), 2),     # the far pedestrian (200 px) goes
    (dict(max_area=0.02), 2),    # the car box (7200 px = 3.1% of the frame) goes
])
def test_params_change_what_is_kept(params, n_boxes):
    mask, _ = scene()
    kw = dict(factor=1, min_fragment=16, merge_gap=8, min_area=150) | params
    assert len(motion_boxes(mask, **kw)[0]) == n_boxes


def test_device_mask_equals_host_mask(device):
    mask, _ = scene()
    for factor in (1, 2, 3, 4):
        a = shrink(mask, factor)
        b = shrink(torch.from_numpy(mask).to(device), factor)
        c = shrink(torch.from_numpy(mask > 0).to(device), factor)
        d = shrink_tensor(torch.from_numpy(mask).to(device), factor).cpu().numpy()  # the GPU path, also on a CPU
        assert a.shape == (H // factor, W // factor) and (a == b).all() and (a == c).all() and (a == d).all()
    np.testing.assert_array_equal(motion_boxes(mask)[0], motion_boxes(torch.from_numpy(mask).to(device))[0])


@pytest.mark.parametrize("fill, expected", [(0.25, 1), (0.5, 1), (0.75, 0)])
def test_shrink_fill_fraction(fill, expected):
    m = np.zeros((4, 4), np.uint8)
    m[0:2, 0] = 255  # half of the top-left 2x2 cell
    assert shrink(m, 2, fill)[0, 0] == expected and shrink_tensor(torch.from_numpy(m), 2, fill)[0, 0] == expected


def test_merge_boxes_is_transitive_and_sums_weights():
    boxes = np.array([[0, 0, 10, 10], [30, 0, 40, 10], [15, 0, 25, 10], [100, 100, 110, 110]], np.float32)
    merged, weights = merge_boxes(boxes, np.array([1, 2, 3, 4]), gap=5)
    np.testing.assert_array_equal(merged, [[0, 0, 40, 10], [100, 100, 110, 110]])
    assert weights.tolist() == [6, 4]


def test_fragments_and_bad_arguments():
    m = np.zeros((10, 10), np.uint8)
    m[2:4, 3:7] = 1
    m[8, 8] = 1
    boxes, pixels = fragments(m, min_pixels=2)
    assert boxes.tolist() == [[3, 2, 7, 4]] and pixels.tolist() == [8]
    with pytest.raises(ValueError, match="factor: expected an integer >= 1"):
        shrink(m, 0)
    with pytest.raises(ValueError, match="mask: expected"):
        shrink(np.zeros((2, 2, 3), np.uint8), 1)


def test_stage_writes_detections():
    ctx = StageContext("cpu", SourceInfo("t", W, H, 25, False), threading.Event(), logging.getLogger("t"))
    stage = MotionStage(build_or_raise(MotionParams, {"class_name": "mover", "downscale": 2, "merge_gap": 8}, "motion"))
    stage.setup(ctx)
    assert stage.reads == {"mask"} and stage.writes == {"detections"}
    mask, want = scene()
    frame = Frame(0, 0.0, np.zeros((H, W, 3), np.uint8))
    frame.mask = mask > 0  # bool masks too
    det = stage.process(frame).detections
    assert len(det) == 3 and det.names == ("mover",) and set(det.class_id.tolist()) == {0}
    assert (det.score == 1).all()
    assert sorted(det.data["pixels"].tolist()) == [200, 3200, 7200]
    np.testing.assert_allclose(det.data["fill"], det.data["pixels"] / det.area)
    empty = stage.process(Frame(1, 0.04, np.zeros((H, W, 3), np.uint8))).detections  # no mask yet
    assert len(empty) == 0 and empty.names == ("mover",)
    with pytest.raises(ConfigError, match="motion.downscale: expected 1 <= x <= 16"):
        build_or_raise(MotionParams, {"downscale": 0}, "motion")
