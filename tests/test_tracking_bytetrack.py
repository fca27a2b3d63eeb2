"""ByteTracker: low-score detections extend tracks but never start or revive them."""
import numpy as np
import pytest

from stages.tracking.bytetrack import ByteTracker
from stages.tracking.sort import SortTracker

BOX = np.array([100.0, 100.0, 140.0, 200.0])


def at(t, box=BOX, v=3.0):
    return (box + [v * t, 0, v * t, 0])[None]


def none():
    return np.zeros((0, 4))


def test_low_score_detections_carry_a_track_through_a_weak_stretch():
    scores = [0.9] * 6 + [0.3] * 4 + [0.9] * 4
    ids = []
    byte = ByteTracker(min_hits=1, max_age=1)
    sort = SortTracker(min_hits=1, max_age=1)
    sort_ids = []
    for k, s in enumerate(scores):
        ids.append(byte.update(at(k), [s]).track_id.tolist())
        # SORT behind a detector threshold of 0.5 never sees the weak boxes
        sort_ids.append(sort.update(at(k) if s >= 0.5 else none()).track_id.tolist())
    assert ids[1:] == [[1]] * (len(scores) - 1)            # reported all along, one id
    assert sort_ids[-1] == [2]                              # SORT lost it and started over


def test_low_score_detections_never_start_tracks():
    t = ByteTracker(min_hits=0)
    for k in range(5):
        assert len(t.update(at(k), [0.5])) == 0
    assert len(t) == 0
    assert len(t.update(at(5), [0.65])) == 0 and len(t) == 0   # high, but below new_track_threshold 0.7
    assert t.update(at(6), [0.8]).track_id.tolist() == [1]


def test_below_low_threshold_is_ignored():
    t = ByteTracker(min_hits=0, max_age=1)
    t.update(at(0), [0.9])
    assert len(t.update(at(1), [0.05])) == 0


def test_low_score_detections_do_not_revive_lost_tracks():
    t = ByteTracker(min_hits=1, max_age=5)
    for k in range(5):
        t.update(at(k), [0.9])
    t.update(none())                                        # lost for a frame
    assert len(t.update(at(6), [0.3])) == 0                 # a weak box does not bring it back
    assert t.update(at(7), [0.9]).track_id.tolist() == [1]  # a strong one does


def test_unconfirmed_tracks_die_at_the_first_miss():
    t = ByteTracker(min_hits=3, max_age=30)
    for _ in range(4):
        t.update(none())
    t.update(at(0), [0.9])
    assert len(t) == 1
    t.update(none())
    assert len(t) == 0


def test_defaults_and_bad_thresholds():
    t = ByteTracker()
    assert (t.max_age, t.high_threshold, t.low_threshold, t.low_iou_threshold, t.new_track_threshold) == (30, 0.6, 0.1, 0.5, 0.7)
    with pytest.raises(ValueError, match="low_threshold: expected <= high_threshold"):
        ByteTracker(high_threshold=0.3, low_threshold=0.4)
    with pytest.raises(ValueError, match="high_threshold: expected 0 < x <= 1"):
        ByteTracker(high_threshold=1.5)


def test_reset_and_no_scores():
    t = ByteTracker(min_hits=0)
    assert t.update(at(0)).track_id.tolist() == [1]          # no scores: every box is high
    t.reset()
    assert len(t) == 0 and t.update(at(0, box=BOX + 400)).track_id.tolist() == [1]
