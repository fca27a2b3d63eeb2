"""The motion stage's sizes are pixels of a `ref_width` frame: the same masks at 2x and 3x the size
give the same boxes, scaled (plain motion, the column split, and the track stage's split), and the
old full-frame-pixel behaviour stays one setting away (ref_width: null)."""
import logging
import threading

import cv2
import numpy as np
import pytest

from pipeline.frame import Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.detection.blobs import motion_boxes, scaled_sizes
from stages.motion import MotionParams, MotionStage
from stages.track import TrackParams, TrackStage

H, W = 360, 640


def street_mask() -> np.ndarray:
    """A 640x360 mask (even edges: whole cells at downscale 2): a walker in three fragments (gaps
    of 2 px: merged by merge_gap 2), two people side by side touching by an arm (a column split), a
    speck pair (32 px: under min_area), a far pedestrian (180 px: kept), and salt noise."""
    m = np.zeros((H, W), np.uint8)
    m[100:116, 56:72] = 255          # head
    m[118:180, 50:80] = 255          # body, 2 px below the head
    m[182:230, 52:78] = 255          # legs, 2 px below the body
    m[100:180, 300:330] = 255        # two side by side
    m[102:182, 334:364] = 255
    m[140:150, 330:334] = 255        # the touching arms
    m[40:44, 500:504] = m[40:44, 506:510] = 255   # 2 x 16 px specks 2 px apart
    m[60:78, 560:570] = 255          # far pedestrian, 180 px
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(0, H, 200), rng.integers(0, W, 200)
    keep = (np.abs(ys - 150) > 100) & (np.abs(xs - 500) > 20) & (np.abs(xs - 565) > 20)
    m[ys[keep], xs[keep]] = 255
    return m


def up(mask: np.ndarray, k: int) -> np.ndarray:
    return cv2.resize(mask, (mask.shape[1] * k, mask.shape[0] * k), interpolation=cv2.INTER_NEAREST)


def context(w: int, h: int) -> StageContext:
    return StageContext("cpu", SourceInfo("t", w, h, 30.0, False), threading.Event(), logging.getLogger("t"))


def stage_boxes(mask: np.ndarray, **raw) -> np.ndarray:
    stage = MotionStage(build_or_raise(MotionParams, raw, "motion"))
    stage.setup(context(mask.shape[1], mask.shape[0]))
    f = Frame(0, 0.0, np.zeros((*mask.shape, 3), np.uint8))
    f.mask = mask
    det = stage.process(f).detections
    return det.xyxy[np.lexsort((det.xyxy[:, 1], det.xyxy[:, 0]))]


@pytest.mark.parametrize("max_width", [None, 320, 640])
@pytest.mark.parametrize("split_ratio", [None, 0.3])
@pytest.mark.parametrize("k", [2, 3])
def test_a_mask_k_times_the_size_gives_the_boxes_k_times(k, split_ratio, max_width):
    mask = street_mask()
    small = stage_boxes(mask, split_ratio=split_ratio)
    assert len(small) == (3 if split_ratio is None else 4)   # walker, the pair (split: two), far pedestrian
    big = stage_boxes(up(mask, k), split_ratio=split_ratio, max_width=max_width)
    assert big.shape == small.shape
    np.testing.assert_allclose(big, small * k, atol=2)


def test_ref_width_null_keeps_full_frame_pixels():
    """The old behaviour at 1920 wide: merge_gap 2 full-frame pixels no longer bridges the 6 px gaps
    (the walker is three boxes: body, legs, head); the scaled sizes see one walker as at 640 wide."""
    big = up(street_mask(), 3)
    old = stage_boxes(big, ref_width=None)
    np.testing.assert_array_equal(old, [[150, 354, 240, 540], [156, 546, 234, 690], [168, 300, 216, 348],
                                        [900, 300, 1092, 546], [1680, 180, 1710, 234]])
    np.testing.assert_array_equal(stage_boxes(big)[0], [150, 300, 240, 690])
    np.testing.assert_array_equal(stage_boxes(street_mask(), ref_width=None), stage_boxes(street_mask()))


@pytest.mark.parametrize("width, ref, max_width, want", [
    (640, 640, None, dict(factor=2, min_fragment=16, merge_gap=2, min_area=150, split_min_width=8)),
    (1920, 640, None, dict(factor=2, min_fragment=144, merge_gap=6, min_area=1350, split_min_width=24)),
    (1280, 640, None, dict(factor=2, min_fragment=64, merge_gap=4, min_area=600, split_min_width=16)),
    (320, 640, None, dict(factor=2, min_fragment=4, merge_gap=1, min_area=37.5, split_min_width=4)),
    (1000, 640, None, dict(factor=2, min_fragment=16 * (1000 / 640) ** 2, merge_gap=3.125,
                           min_area=150 * (1000 / 640) ** 2, split_min_width=12.5)),
    (1920, None, None, dict(factor=2, min_fragment=16, merge_gap=2, min_area=150, split_min_width=8)),
    # max_width: downscale, or more so the working mask is at most max_width wide
    (640, 640, 640, dict(factor=2, min_fragment=16, merge_gap=2, min_area=150, split_min_width=8)),
    (1280, 640, 640, dict(factor=2, min_fragment=64, merge_gap=4, min_area=600, split_min_width=16)),
    (1920, 640, 640, dict(factor=3, min_fragment=144, merge_gap=6, min_area=1350, split_min_width=24)),
    (1921, None, 640, dict(factor=4, min_fragment=16, merge_gap=2, min_area=150, split_min_width=8)),
    (1920, 640, 320, dict(factor=6, min_fragment=144, merge_gap=6, min_area=1350, split_min_width=24)),
])
def test_scaled_sizes_table(width, ref, max_width, want):
    got = scaled_sizes(width, ref, 2, max_width, 16, 2.0, 150)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key


def test_scaled_sizes_bad_arguments_and_param_validation():
    with pytest.raises(ValueError, match="width: expected >= 1"):
        scaled_sizes(0, 640)
    with pytest.raises(ValueError, match="ref_width: expected >= 1"):
        scaled_sizes(640, 0)
    with pytest.raises(ValueError, match="max_width: expected >= 1"):
        scaled_sizes(640, 640, max_width=0)
    with pytest.raises(ValueError, match="downscale: expected an integer >= 1"):
        scaled_sizes(640, 640, downscale=0)
    with pytest.raises(ConfigError, match="motion.ref_width: expected 8 <= x, got 4"):
        build_or_raise(MotionParams, {"ref_width": 4}, "motion")
    with pytest.raises(ConfigError, match="motion.max_width: expected 8 <= x, got 0"):
        build_or_raise(MotionParams, {"max_width": 0}, "motion")
    assert scaled_sizes(640, 640, merge_gap=None)["merge_gap"] is None
    assert build_or_raise(MotionParams, {"ref_width": None}, "motion").ref_width is None


def walkers(t: int, k: int) -> np.ndarray:
    """Two 30x80 people (640x360 frame) walking towards each other; they touch (one blob) from
    frame 12 to 19, then part; drawn at k times the size."""
    m = np.zeros((H * k, W * k), np.uint8)
    xa = 100 + 3 * t if t <= 12 else 136
    xb = 202 - 3 * t if t <= 12 else 166
    if t >= 20:
        xa, xb = 136 - 3 * (t - 19), 166 + 3 * (t - 19)
    m[100 * k:180 * k, xa * k:(xa + 30) * k] = 255
    m[104 * k:184 * k, xb * k:(xb + 30) * k] = 255
    return m


def chain(k: int, motion_raw: dict, frames: int = 30) -> list:
    motion = MotionStage(build_or_raise(MotionParams, {"split_ratio": 0.3} | motion_raw))
    track = TrackStage(build_or_raise(TrackParams, {"max_age": 10, "min_hits": 3, "split": True}))
    for s in (motion, track):
        s.setup(context(W * k, H * k))
    out = []
    for t in range(frames):
        f = Frame(t, t / 30.0, np.zeros((H * k, W * k, 3), np.uint8))
        f.mask = walkers(t, k)
        f = track.process(motion.process(f))
        order = np.argsort(f.detections.track_id)
        out.append((f.detections.track_id[order].tolist(), f.detections.xyxy[order]))
    return out


@pytest.mark.parametrize("small_raw, big_raw, atol", [
    ({}, {}, 3.0),     # downscale 2 at both sizes: 2 px cells at 640 (6 px at 3x) against 2 px cells: within 1 px of 640
    ({"downscale": 1}, {"downscale": 1, "max_width": 640}, 1e-3),   # the same cells: exactly 3x (the filter is linear)
])
def test_track_split_at_3x_gives_the_same_tracks_scaled(small_raw, big_raw, atol):
    small, big = chain(1, small_raw), chain(3, big_raw)
    assert all(ids == [1, 2] for ids, _ in small[4:])          # two people throughout, split while touching
    for (ids_a, a), (ids_b, b) in zip(small, big):
        assert ids_a == ids_b
        np.testing.assert_allclose(b, a * 3, atol=atol)
