"""Blobs split and fragments joined by the tracks' predictions (stages/tracking/split.py), the
tracker's peek, and the track stage's `split` option end to end on synthetic masks."""
import logging
import threading

import numpy as np
import pytest

from pipeline.frame import Frame
from pipeline.params import build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.motion import MotionParams, MotionStage
from stages.track import TrackParams, TrackStage
from stages.tracking.sort import SortTracker
from stages.tracking.split import box_fill, snap_to_blob, split_by_tracks

H, W = 360, 640


def two_touching():
    """Two people as rectangles that touch at column 130: one blob [100,50,160,135]."""
    m = np.zeros((H, W), np.uint8)
    m[50:130, 100:130] = 255
    m[55:135, 130:160] = 255
    return m


def test_touching_rectangles_split_where_they_touch():
    mask = two_touching()
    blob = np.array([[100, 50, 160, 135]], np.float32)
    pred = np.array([[98, 52, 128, 128], [133, 57, 163, 133]], np.float64)   # predictions a few px off
    boxes, origin = split_by_tracks(blob, pred, hits=[10, 10], mask=mask)
    np.testing.assert_array_equal(boxes, [[100, 50, 130, 135], [130, 50, 160, 135]])
    np.testing.assert_array_equal(origin, [0, 0])


@pytest.mark.parametrize("name, dets, pred, want_boxes, want_origin", [
    # torso and legs (gap 5 px) inside one track's box: one box
    ("fragments joined", [[100, 50, 130, 90], [101, 95, 129, 135]], [[100, 50, 130, 135]],
     [[100, 50, 130, 135]], [0]),
    # side by side inside one (wide, merged) track box: two people, not joined
    ("side by side kept", [[100, 50, 130, 135], [140, 50, 170, 135]], [[100, 50, 170, 135]],
     [[100, 50, 130, 135], [140, 50, 170, 135]], [0, 1]),
    # a blob holding torso and legs tracks of one person (same columns): not split
    ("same columns not split", [[100, 50, 130, 135]], [[100, 50, 130, 92], [100, 93, 130, 135]],
     [[100, 50, 130, 135]], [0]),
    # one track per blob: nothing to do
    ("one track each", [[0, 0, 30, 80], [200, 0, 230, 80]], [[2, 1, 31, 80], [199, 0, 229, 81]],
     [[0, 0, 30, 80], [200, 0, 230, 80]], [0, 1]),
    # a track that holds too little of itself in the blob is not in it
    ("cover", [[100, 50, 160, 135]], [[100, 50, 130, 135], [145, 50, 175, 135]],
     [[100, 50, 160, 135]], [0]),
    ("no tracks", [[0, 0, 10, 10]], np.zeros((0, 4)), [[0, 0, 10, 10]], [0]),
    ("no detections", np.zeros((0, 4)), [[0, 0, 10, 10]], np.zeros((0, 4)), []),
])
def test_split_and_join_table(name, dets, pred, want_boxes, want_origin):
    boxes, origin = split_by_tracks(np.asarray(dets, np.float32), np.asarray(pred, np.float64))
    np.testing.assert_array_equal(boxes, np.asarray(want_boxes, np.float32).reshape(-1, 4), err_msg=name)
    np.testing.assert_array_equal(origin, want_origin, err_msg=name)


def test_wider_track_of_a_merged_blob_is_left_out():
    # a track born on the merged blob (60 px wide) and two person tracks inside it
    blob = np.array([[100, 50, 160, 135]], np.float32)
    pred = np.array([[100, 50, 160, 135], [100, 50, 130, 135], [130, 50, 160, 135]], np.float64)
    boxes, origin = split_by_tracks(blob, pred, hits=[50, 5, 5])
    np.testing.assert_array_equal(boxes, [[100, 50, 130, 135], [130, 50, 160, 135]])


def test_min_fill_keeps_a_blob_whole_when_a_track_box_is_empty():
    mask = np.zeros((H, W), np.uint8)
    mask[50:135, 100:130] = 255          # only the left person has foreground
    blob = np.array([[100, 50, 160, 135]], np.float32)
    pred = np.array([[100, 50, 130, 135], [130, 50, 160, 135]], np.float64)
    assert len(split_by_tracks(blob, pred, mask=mask)[0]) == 1
    assert len(split_by_tracks(blob, pred, mask=mask, min_fill=0)[0]) == 2
    np.testing.assert_allclose(box_fill(mask, pred), [1.0, 0.0])


def test_snap_moves_outermost_boxes_and_keeps_sizes():
    out = snap_to_blob(np.array([0, 0, 100, 100.0]), np.array([[5, 0, 35, 100], [60, 0, 90, 100.0]]), 0.2)
    np.testing.assert_array_equal(out, [[0, 0, 30, 100], [70, 0, 100, 100]])


@pytest.mark.parametrize("kw", [dict(cover=1.5), dict(same=-0.1), dict(snap=2.0), dict(min_fill=1.1)])
def test_bad_arguments_raise(kw):
    with pytest.raises(ValueError, match="expected"):
        split_by_tracks(np.zeros((1, 4)), np.zeros((1, 4)), **kw)


def test_peek_predicts_without_changing_the_tracker():
    a, b = SortTracker(max_age=3, min_hits=1), SortTracker(max_age=3, min_hits=1)
    for t in range(6):
        box = [[10 + 3 * t, 20, 40 + 3 * t, 100], [300 - 2 * t, 20, 330 - 2 * t, 100]]
        a.update(box)
        b.update(box)
    pred, ids, hits, since = a.peek()
    np.testing.assert_allclose(pred, [[28, 20, 58, 100], [288, 20, 318, 100]], atol=0.5)
    assert ids.tolist() == [1, 2] and hits.tolist() == [5, 5] and since.tolist() == [1, 1]
    np.testing.assert_array_equal(a.table, b.table)
    assert a.peek(3)[3].tolist() == [3, 3]
    out_a, out_b = a.update([[28, 20, 58, 100]]), b.update([[28, 20, 58, 100]])
    np.testing.assert_array_equal(out_a.xyxy, out_b.xyxy)


def context():
    return StageContext("cpu", SourceInfo("test", W, H, 30.0, False), threading.Event(), logging.getLogger("test"))


def walkers(t: int) -> np.ndarray:
    """Two 30x80 people walking towards each other at 3 px/frame; they touch (one blob) from frame
    12 to 19, then walk on side by side apart again."""
    m = np.zeros((H, W), np.uint8)
    xa = 100 + 3 * t if t <= 12 else 136
    xb = 202 - 3 * t if t <= 12 else 166
    if t >= 20:
        xa, xb = 136 - 3 * (t - 19), 166 + 3 * (t - 19)
    m[100:180, xa:xa + 30] = 255
    m[104:184, xb:xb + 30] = 255
    return m


def run_chain(split: bool, frames: int = 30):
    motion = MotionStage(build_or_raise(MotionParams, {}))
    track = TrackStage(build_or_raise(TrackParams, {"max_age": 10, "min_hits": 3, "split": split}))
    motion.setup(context())
    track.setup(context())
    out = []
    for t in range(frames):
        f = Frame(t, t / 30.0, np.zeros((H, W, 3), np.uint8))
        f.mask = walkers(t)
        f = track.process(motion.process(f))
        out.append((len(track.last_detections), sorted(f.detections.track_id.tolist())))
    return out, track


def test_track_stage_keeps_two_people_through_a_touch_only_with_split():
    off, _ = run_chain(False)
    on, stage = run_chain(True)
    touching = range(12, 20)
    assert all(off[t][0] == 1 for t in touching)               # the blob: one box
    assert all(on[t][0] == 2 for t in touching)                # split: two boxes
    assert all(on[t][1] == [1, 2] for t in range(4, 30))       # the same two ids throughout
    assert stage.summary()["split_frames"] == len(touching)
    assert stage.optional_reads == {"mask"}


def test_split_changes_nothing_for_people_apart():
    def apart(t):
        m = np.zeros((H, W), np.uint8)
        m[100:180, 50 + 2 * t:80 + 2 * t] = 255
        m[120:200, 400 - 2 * t:430 - 2 * t] = 255
        return m
    results = []
    for split in (False, True):
        track = TrackStage(build_or_raise(TrackParams, {"max_age": 10, "split": split}))
        motion = MotionStage(build_or_raise(MotionParams, {}))
        track.setup(context())
        motion.setup(context())
        rows = []
        for t in range(20):
            f = Frame(t, t / 30.0, np.zeros((H, W, 3), np.uint8))
            f.mask = apart(t)
            f = track.process(motion.process(f))
            rows.append((f.detections.xyxy.copy(), f.detections.track_id.copy(), f.detections.data["fill"].copy()))
        results.append(rows)
    for (a_box, a_id, a_fill), (b_box, b_id, b_fill) in zip(*results):
        np.testing.assert_array_equal(a_box, b_box)
        np.testing.assert_array_equal(a_id, b_id)
        np.testing.assert_array_equal(a_fill, b_fill)



def test_box_fill_on_a_device_mask_equals_the_host_mask(device):
    import torch

    mask = two_touching()
    boxes = np.array([[100, 50, 160, 135], [90, 40, 131, 60], [600, 300, 700, 400], [5, 5, 5, 9]], np.float64)
    host = box_fill(mask, boxes)
    np.testing.assert_allclose(box_fill(torch.from_numpy(mask).to(device), boxes), host)
    np.testing.assert_allclose(host[[2, 3]], [0.0, 0.0])
    np.testing.assert_allclose(host[[0, 1]], [(80 * 30 + 80 * 30) / (60 * 85), (10 * 30 + 5 * 1) / (41 * 20)])
