"""The activity and events stages through setup/process/close, their events and meta in the JSON
lines record, and the accuracy evaluation on a short generated scene (a regression)."""
import logging
import threading

import numpy as np
import pytest

from conftest import ROOT
from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.activity import ActivityParams, ActivityStage
from stages.events import EventsParams, EventsStage


def context(w=640, h=360):
    return StageContext("cpu", SourceInfo("test", w, h, 30.0, False), threading.Event(), logging.getLogger("t"))


def tracked(boxes, ids):
    n = len(ids)
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(n), np.zeros(n), np.asarray(ids),
                      names=("person",))


def run_stage(stage, n, box_at, ids=(1,), image=None):
    stage.setup(context())
    frames = []
    for k in range(n):
        f = Frame(k, k / 30, np.zeros((360, 640, 3), np.uint8) if image is None else image)
        f.detections = tracked([box_at(k, i) for i in ids], list(ids))
        frames.append(stage.process(f))
    stage.close()
    return frames


def test_walk_then_run_labels_and_events():
    stage = ActivityStage(ActivityParams(hysteresis_k=4))

    def box_at(k, _):  # 100 px tall: 0.7 bh/s for 2 s, then 2 bh/s
        t = k / 30
        x = 50 + 70 * t if t < 2 else 190 + 200 * (t - 2)
        return [x - 20, 200, x + 20, 300]

    frames = run_stage(stage, 90, box_at)
    assert 1 not in frames[0].activities  # younger than min_age_s
    assert frames[40].activities[1] == "walking" and frames[-1].activities[1] == "running"
    events = [e for f in frames for e in f.events]
    kinds = [(e["type"], e["activity"]) for e in events]
    assert kinds[:3] == [("activity_start", "walking"), ("activity_end", "walking"), ("activity_start", "running")]
    change = [f.index for f in frames if any(e["type"] == "activity_start" and e["activity"] == "running" for e in f.events)]
    assert 60 < change[0] <= 60 + 15  # hysteresis and the short window delay the change a little


def test_lost_track_ends_its_activity_and_features_are_written():
    from stages.activities.features import FEATURES

    stage = ActivityStage(ActivityParams(forget_s=0.2, write_features=True))
    stage.setup(context())
    events = []
    for k in range(30):
        f = Frame(k, k / 30, np.zeros((360, 640, 3), np.uint8))
        f.detections = tracked([[100, 100, 140, 200]], [5]) if k < 20 else Detections.empty()
        f = stage.process(f)
        events += f.events
        if k == 10:
            assert f.detections.data["activity_features"].shape == (1, len(FEATURES))
            assert f.detections.data["activity_scores"].shape == (1, 5)
            assert f.activities[5] == "standing"
    end = [e for e in events if e["type"] == "activity_end"]
    assert len(end) == 1 and end[0]["reason"] == "lost" and end[0]["activity"] == "standing"
    assert end[0]["index"] in (25, 26)  # last seen at frame 19 (t = 0.633 s), forgotten 0.2 s later
    assert 5 not in stage.seen


def person_box(X, Z, f=576.0, cx=320.0, y_horizon=150.0, cam_h=1.5, m=1.7):
    """Box of an m-metre person at ground point (X, Z) seen by a level camera cam_h above the
    ground (the activity stage's default focal: 0.9 image widths of 640 px)."""
    x, y, h = cx + f * X / Z, y_horizon + f * cam_h / Z, f * m / Z
    return np.array([x - 0.2 * h, y - h, x + 0.2 * h, y])


def jitter(n, seed, sigma=0.02, smooth=0.6):
    """AR(1) detector jitter per box coordinate, in box heights (the evaluation's detector model)."""
    rng = np.random.default_rng(seed)
    out, cur = np.zeros((n, 4)), np.zeros(4)
    for k in range(n):
        cur = smooth * cur + np.sqrt(1 - smooth ** 2) * rng.standard_normal(4)
        out[k] = cur * sigma
    return out


# (name, ground path (t -> X, Z) in metres, box jitter (sigma in heights) or 0, an arm raising the box top)
DEPTH_CASES = [
    # a slow walk (0.8 m/s, 0.47 bh/s) towards the camera, drifting sideways at 0.3 m/s: its image speed
    # (0.2 bh/s) alone is loitering; the earlier rules (max(speed, depth - 0.2)) called it that
    ("towards", lambda t: (-0.5 + 0.3 * t, 11.0 - 0.8 * t), 0.02, False, "walking"),
    ("away", lambda t: (0.5 - 0.3 * t, 7.0 + 0.8 * t), 0.02, False, "walking"),
    ("steady", lambda t: (0.0, 8.0), 0.0, False, "standing"),
    ("jittery detector, standing", lambda t: (0.0, 8.0), 0.03, False, None),
    ("sign raised over the head", lambda t: (0.0, 8.0), 0.02, True, None),
]


@pytest.mark.parametrize("name, path, sigma, arm, expected", DEPTH_CASES, ids=[c[0] for c in DEPTH_CASES])
def test_motion_in_depth_from_the_box_scale(name, path, sigma, arm, expected):
    """Synthetic tracks through the stage for 4 s at 30 fps: motion in depth (the box grows or
    shrinks as the foot moves down or up) is walking; a still person stays below walking whatever
    the detector's jitter or a sign raised above the head (the box's top edge rises by 30 % within
    a second, its foot stays)."""
    n = 120
    noise = jitter(n, seed=len(name), sigma=sigma)

    def box_at(k, _):
        t = k / 30
        b = person_box(*path(t))
        h = b[3] - b[1]
        if arm:
            b[1] -= 0.3 * h * float(np.clip(t - 1.5, 0, 1))
        return b + noise[k] * h

    frames = run_stage(ActivityStage(ActivityParams()), n, box_at)
    late = [f.activities[1] for f in frames[75:]]  # the last 1.5 s
    if expected is not None:
        assert late.count(expected) >= 0.9 * len(late), late
    labels = [f.activities[1] for f in frames[30:]]
    if expected != "walking":
        assert "walking" not in labels and "running" not in labels, labels


@pytest.mark.parametrize("raw, message", [
    ({"classifier": "temporal"}, "weights: required"),
    ({"short_s": 2.0, "medium_s": 1.0}, "short_s <= medium_s"),
    ({"rules": {"walk_speed": 5.0}}, "move_speed < walk_speed < run_speed"),
    ({"rules": {"loiter_s": 9.0}}, "loiter_s"),
    ({"classifier": "clip"}, "expected one of"),
])
def test_bad_params_named(raw, message):
    with pytest.raises(ConfigError, match=message):
        build_or_raise(ActivityParams, raw, "stages[3]")


def test_missing_weights_file_is_a_config_error(tmp_path):
    stage = ActivityStage(ActivityParams(classifier="temporal", weights=str(tmp_path / "none.pt")))
    with pytest.raises(ConfigError, match="file not found"):
        stage.setup(context())


def test_events_stage_counts_in_meta_and_jsonl_record():
    from pipeline.sinks.jsonl import frame_record

    params = build_or_raise(EventsParams, {
        "normalized": True,
        "lines": [{"name": "mid", "p1": [0.5, 0.0], "p2": [0.5, 1.0], "dirs": {"neg_to_pos": "rl", "pos_to_neg": "lr"}}],
        "zones": [{"name": "right", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}]})
    stage = EventsStage(params)
    frames = run_stage(stage, 40, lambda k, _: [200 + 8 * k, 200, 240 + 8 * k, 300])
    last = frames[-1]
    assert last.meta["line_counts"] == {"mid": {"rl": 0, "lr": 1}}
    assert last.meta["zone_counts"] == {"right": 1}
    kinds = [e["type"] for f in frames for e in f.events]
    assert kinds == ["line_cross", "zone_enter"]
    rec = frame_record(frames[-1])
    assert rec["meta"]["line_counts"] == {"mid": {"rl": 0, "lr": 1}} and "event_geometry" not in rec["meta"]
    rec = frame_record(next(f for f in frames if f.events))
    assert rec["events"][0]["type"] == "line_cross" and rec["events"][0]["direction"] == "lr"


@pytest.mark.parametrize("raw, message", [
    ({"lines": [{"name": "a", "p1": [0, 0], "p2": [0, 0]}]}, "p2: expected a point other than p1"),
    ({"lines": [{"name": "a", "p1": [0, 0], "p2": [1, 0], "dirs": {"in": "x"}}]}, "dirs"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [1, 1]]}]}, "at least 3"),
    ({"lines": [{"name": "a", "p1": [0, 0], "p2": [1, 0]}], "zones": [{"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]]}]},
     "duplicate"),
])
def test_events_params_rejected(raw, message):
    with pytest.raises(ConfigError, match=message):
        build_or_raise(EventsParams, raw, "stages[4]")


def test_draw_layers_draw_something():
    from stages.activities.draw import draw_activities, draw_events, draw_lines, draw_zones

    params = build_or_raise(EventsParams, {"lines": [{"name": "l", "p1": [320, 0], "p2": [320, 360]}],
                                           "zones": [{"name": "z", "polygon": [[0, 0], [100, 0], [100, 100]]}]})
    stage = EventsStage(params)
    frames = run_stage(stage, 30, lambda k, _: [280 + 3 * k, 100, 300 + 3 * k, 160])
    f = frames[-1]
    f.activities = {1: "walking"}
    f.events = [{"type": "line_cross", "line": "l", "direction": "in", "track_id": 1}]
    for draw in (draw_zones, draw_lines, draw_activities, draw_events):
        canvas = np.zeros((360, 640, 3), np.uint8)
        draw(canvas, f, {"state": {}, "font_scale": 0.5, "thickness": 2})
        assert canvas.any(), draw.__name__


WEIGHTS = ROOT / "stages" / "activities" / "activity_tcn.pt"


@pytest.mark.parametrize("classifier, least", [("rules", 0.85), ("temporal", 0.95)])
def test_accuracy_on_a_short_generated_scene(classifier, least):
    """Regression: a training seed's scene (150 frames, jittered truth boxes -> track -> activity;
    the flow stage only for the learned model, the rules do not use flow). The bounds are a little
    under what this build gets (rules 0.918, temporal 0.974); a drop means a
    regression."""
    from stages.activities.dataset import SceneSpec, build_stages, run_scene
    from stages.activities.evaluate import Scorer

    if classifier == "temporal" and not WEIGHTS.is_file():
        pytest.skip("stages/activities/activity_tcn.pt not present")
    learned = classifier == "temporal"
    params = ActivityParams(classifier=classifier, weights=str(WEIGHTS) if learned else None, use_flow=learned)
    chain = build_stages("gt", params, seed=4, flow=learned)
    scorer = Scorer(30.0)
    for r in run_scene(SceneSpec(4, n_frames=150), chain):
        scorer.add(r)
    s = scorer.summary()
    assert s["counted"] > 500 and s["coverage"] > 0.5
    assert s["accuracy"] >= least, s


def test_features_come_back_from_a_worker_process():
    """write_features: the stage writes detections.data too, so it declares `tracks` among its
    writes and a worker process (process: true) sends the features back."""
    from pipeline.isolation import ProcessStage
    from stages.activities.features import FEATURES

    assert "tracks" in ActivityStage(ActivityParams(write_features=True)).writes
    assert "tracks" not in ActivityStage(ActivityParams()).writes
    stage = ProcessStage(ActivityStage, ActivityParams(write_features=True), name="activity")
    frames = run_stage(stage, 12, lambda k, _: [100 + 2 * k, 100, 140 + 2 * k, 200], ids=(5,))
    assert frames[10].detections.data["activity_features"].shape == (1, len(FEATURES))
    assert frames[10].activities[5] in ("standing", "walking", "loitering")
