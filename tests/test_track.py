"""The `track` stage: params, the output Detections, frame gaps from Frame.index, resets."""
import logging
import threading

import numpy as np
import pytest

from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.registry import stage_registry
from pipeline.stage import SourceInfo, StageContext
from stages.track import TrackParams, TrackStage
from stages.tracking.sort import SortTracker

IMAGE = np.zeros((8, 8, 3), np.uint8)
BOX = np.array([100.0, 100.0, 140.0, 200.0], np.float32)


def context():
    return StageContext("cpu", SourceInfo("test", 640, 480, 30.0, False), threading.Event(), logging.getLogger("test"))


def stage(**params):
    s = TrackStage(build_or_raise(TrackParams, params))
    s.setup(context())
    return s


def dets(t, n=2, v=3.0, scores=None, classes=None):
    boxes = np.stack([BOX + [v * t + 200 * i, 0, v * t + 200 * i, 0] for i in range(n)])
    scores = np.linspace(0.9, 0.8, n) if scores is None else scores
    classes = np.arange(n) if classes is None else classes
    return Detections(boxes, scores, classes, data={"feature": np.arange(n) * 10.0}, names=("person", "car"))


def frame(index, d):
    f = Frame(index, index / 30.0, IMAGE)
    f.detections = d
    return f


def test_registered_and_declares_its_fields():
    assert stage_registry().get("track") is TrackStage
    assert TrackStage.reads == {"detections"} and TrackStage.writes == {"tracks"}


@pytest.mark.parametrize("raw,error", [
    ({"algorithm": "deepsort"}, "algorithm: expected one of 'sort', 'bytetrack'"),
    ({"iou_threshold": 1.5}, "iou_threshold: expected 0 < x <= 1, got 1.5"),
    ({"max_age": -1}, "max_age: expected 0 <= x"),
    ({"low_threshold": 0.8}, "low_threshold: expected <= high_threshold (0.6), got 0.8"),
    ({"max_ag": 3}, "max_ag: unknown key (did you mean 'max_age'?)"),
])
def test_bad_params_are_named(raw, error):
    with pytest.raises(ConfigError) as info:
        build_or_raise(TrackParams, raw)
    assert error in str(info.value)


def test_max_age_defaults_per_algorithm():
    assert stage().tracker.max_age == 1
    assert stage(algorithm="bytetrack").tracker.max_age == 30
    assert stage(algorithm="bytetrack", max_age=4).tracker.max_age == 4


def test_output_rows_keep_their_detection():
    s = stage(min_hits=0)
    id_of = {}
    for t in range(5):
        d = dets(t)[np.array([1, 0])]                   # the detector's order changes; ids do not
        out = s.process(frame(t, d)).detections
        assert out is not d and d.track_id is None       # a new object; the input is untouched
        idx = out.data["det_index"]
        np.testing.assert_array_equal(out.score, d.score[idx])
        np.testing.assert_array_equal(out.class_id, d.class_id[idx])
        np.testing.assert_array_equal(out.data["feature"], d.data["feature"][idx])
        assert out.names == ("person", "car")
        assert np.abs(out.xyxy - d.xyxy[idx]).max() < 3.0   # the filter's box, near the detection
        for tid, feature in zip(out.track_id.tolist(), out.data["feature"].tolist()):
            assert id_of.setdefault(feature, tid) == tid
    assert sorted(id_of.values()) == [1, 2]


def test_box_detection_reports_the_detection_box():
    s = stage(min_hits=0, box="detection")
    for t in range(3):
        d = dets(t)
        out = s.process(frame(t, d)).detections
        np.testing.assert_array_equal(out.xyxy, d.xyxy[out.data["det_index"]])


def test_keep_untracked_passes_on_the_rest_with_id_minus_one():
    s = stage(min_hits=3)
    s.process(frame(0, Detections.empty()))              # leave the start-up frames behind
    for t in range(1, 5):
        s.process(frame(t, dets(t, n=1)))
    out = s.process(frame(5, dets(5, n=2))).detections   # a new object appears
    assert len(out) == 1
    s2 = stage(min_hits=3, keep_untracked=True)
    s2.process(frame(0, Detections.empty()))
    for t in range(1, 5):
        s2.process(frame(t, dets(t, n=1)))
    out = s2.process(frame(5, dets(5, n=2))).detections
    assert sorted(out.track_id.tolist()) == [-1, 1]
    assert sorted(out.data["det_index"].tolist()) == [0, 1]


def test_no_detections_and_none():
    s = stage()
    for t, d in enumerate([None, Detections.empty(), dets(2)]):
        out = s.process(frame(t, d)).detections
        assert out.track_id is not None and out.data["det_index"].dtype == np.int64


def test_index_jumps_become_frame_gaps():
    s = stage(min_hits=0, max_age=5)
    ref = SortTracker(min_hits=0, max_age=5)
    for index, gap in [(0, 1), (1, 1), (2, 1), (5, 3), (6, 1), (10, 4)]:
        d = dets(index, n=1, v=12.0)
        out = s.process(frame(index, d)).detections
        want = ref.update(d.xyxy, d.score, d.class_id, frame_gap=gap)
        np.testing.assert_allclose(out.xyxy, want.xyxy.astype(np.float32))
        assert out.track_id.tolist() == want.track_id.tolist() == [1]
    assert s.summary()["dropped_frames"] == 5


def test_index_going_back_resets_the_tracker():
    s = stage(min_hits=0)
    for t in range(3):
        s.process(frame(t, dets(t, n=1, v=0)))
    s.process(frame(3, Detections.empty()))
    out = s.process(frame(0, dets(0, n=2, v=0))).detections
    assert sorted(out.track_id.tolist()) == [1, 2] and s.summary()["resets"] == 1


def test_per_class_and_bytetrack_through_the_stage():
    s = stage(min_hits=0, per_class=True)
    s.process(frame(0, dets(0, n=1, classes=[0])))
    assert s.process(frame(1, dets(1, n=1, classes=[1]))).detections.track_id.tolist() == [2]
    b = stage(algorithm="bytetrack", min_hits=0)
    ids = [b.process(frame(t, dets(t, n=1, scores=[0.9 if t < 3 else 0.3]))).detections.track_id.tolist()
           for t in range(6)]
    assert ids == [[1]] * 6
