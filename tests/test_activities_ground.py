"""Ground-plane calibration for the activity features: the homography kernel (known answers, bad
points), ground speeds of a synthetic walker seen by a tilted high camera (true speed within a few
%), and the stage: a slow walk towards the camera is walking with `ground`, loitering without."""
import logging
import threading
from collections import Counter

import numpy as np
import pytest

from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.activities.features import INDEX, FeatureExtractor
from stages.activities.ground import ground_homography, to_ground
from stages.activity import ActivityParams, ActivityStage

W, H, F = 640, 360, 0.9 * 640
CAM_H, TILT = 10.0, np.radians(35)   # a CCTV camera 10 m up, looking 35 degrees down
WORLD = [[-3.0, 8.0], [3.0, 8.0], [3.0, 25.0], [-3.0, 25.0]]


def project(X, Y, Z=0.0):
    """Image point of world (X across, Y ahead on the ground, Z up) metres."""
    p = np.array([X, Y, Z - CAM_H])
    z = p @ np.array([0.0, np.cos(TILT), -np.sin(TILT)])
    return np.array([W / 2 + F * X / z, H / 2 - F * (p @ np.array([0.0, np.sin(TILT), np.cos(TILT)])) / z])


IMAGE = [project(X, Y).tolist() for X, Y in WORLD]


def walker_box(t, speed, start=(1.0, 25.0), heading=(0.0, -1.0), height=1.7, rng=None, jitter=0.0):
    X, Y = start[0] + speed * t * heading[0], start[1] + speed * t * heading[1]
    foot, head = project(X, Y), project(X, Y, height)
    h = foot[1] - head[1]
    noise = rng.standard_normal(2) * jitter * h if rng is not None else np.zeros(2)
    return [foot[0] - 0.2 * h, head[1] + noise[0], foot[0] + 0.2 * h, foot[1] + 0.3 * noise[1]]


def test_homography_maps_the_calibration_points_and_the_camera_model():
    hm = ground_homography(IMAGE, WORLD)
    assert np.allclose(to_ground(hm, IMAGE), WORLD, atol=1e-6)
    pts = [(-5.0, 12.0), (2.5, 40.0), (0.0, 6.0)]
    assert np.allclose(to_ground(hm, [project(*p) for p in pts]), pts, atol=1e-4)
    horizon = H / 2 - F * np.tan(TILT)   # row -223: rows above it are sky, not ground
    far = to_ground(hm, [[320, horizon - 10], [320, horizon + 1], [320, 0]])   # +1: ~8 km, past MAX_RANGE
    assert np.isnan(far[:2]).all() and far[2, 1] == pytest.approx(CAM_H / np.tan(TILT - np.arctan(H / 2 / F)))


@pytest.mark.parametrize("image, world, message", [
    (IMAGE[:3], WORLD, "image: expected 4 [x, y] points"),
    (IMAGE, WORLD + [[0, 0]], "world: expected 4 [x, y] points"),
    ([[0, 0], [10, 0], [20, 0], [0, 10]], WORLD, "image: expected 4 points with no three on one line"),
    (IMAGE, [[0, 0], [1, 1], [2, 2], [0, 5]], "world: expected 4 points with no three on one line"),
    (IMAGE, [WORLD[0], WORLD[2], WORLD[1], WORLD[3]], "image, world: the four point pairs"),
    (IMAGE, [[0, 0], [1, 0], [1, "a"], [0, 1]], "world: expected 4 [x, y] points of numbers"),
])
def test_bad_points_raise_naming_the_key(image, world, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ground_homography(image, world)


def features(speed, homography, heading=(0.0, -1.0), start=(1.0, 25.0), n=120):
    fe = FeatureExtractor(homography=homography)
    for k in range(n):
        out = fe.update(k / 30, [1], [walker_box(k / 30, speed, start, heading)], None, None, F)
    return {name: float(out[0, INDEX[name]]) for name in INDEX}


@pytest.mark.parametrize("speed, heading, start", [(1.4, (0.0, -1.0), (1.0, 25.0)),    # towards the camera
                                                   (1.1, (0.0, 1.0), (-1.0, 15.0)),    # away from it
                                                   (1.3, (1.0, 0.0), (-3.0, 15.0))])   # across the view
def test_ground_speeds_are_the_true_speed_in_body_heights(speed, heading, start):
    hm = ground_homography(IMAGE, WORLD)
    g = features(speed, hm, heading, start)
    true = speed / 1.7
    for name in ("speed", "speed_med", "disp_long", "path_long"):
        assert g[name] == pytest.approx(true, rel=0.03), name
    along = "speed_y" if heading[0] == 0 else "speed_x"
    assert g[along] == pytest.approx(true, rel=0.03) and g["straight"] > 0.99
    assert g["approach_speed"] == 0 and g["speed_3d"] == g["speed"]
    # 4 s of a straight walk: the RMS distance from the mean over the 3 s window is 3 s * v / sqrt(12)
    assert g["extent_long"] == pytest.approx(3.0 * true / np.sqrt(12), rel=0.05)
    if heading[0] == 0:  # in depth the image shows much less than the true speed
        img = features(speed, None, heading, start)
        assert img["speed"] < 0.7 * true


def test_person_height_scales_the_ground_speeds():
    hm = ground_homography(IMAGE, WORLD)
    fe = FeatureExtractor(homography=hm, person_height=1.4)
    for k in range(60):
        out = fe.update(k / 30, [1], [walker_box(k / 30, 1.4)], None, None, F)
    assert out[0, INDEX["speed_med"]] == pytest.approx(1.0, rel=0.03)
    with pytest.raises(ValueError, match="person_height"):
        FeatureExtractor(homography=hm, person_height=0)


def context():
    return StageContext("cpu", SourceInfo("test", W, H, 30.0, False), threading.Event(), logging.getLogger("t"))


def labels(params, speed, jitter=0.04, n=120):
    stage = ActivityStage(build_or_raise(ActivityParams, params))
    stage.setup(context())
    rng = np.random.default_rng(1)
    seen = Counter()
    for k in range(n):
        f = Frame(k, k / 30, np.zeros((H, W, 3), np.uint8))
        f.detections = Detections(np.asarray([walker_box(k / 30, speed, rng=rng, jitter=jitter)], np.float32),
                                  np.ones(1), np.zeros(1), np.asarray([1]), names=("person",))
        if k >= 30:
            seen[stage.process(f).activities.get(1)] += 1
        else:
            stage.process(f)
    stage.close()
    return seen


def test_stage_slow_walk_towards_the_camera_is_walking_only_with_ground():
    ground = {"ground": {"image": IMAGE, "world": WORLD}}
    assert labels(ground, 1.1) == {"walking": 90}
    # without: the image speed is below walk_speed and the box's jittery growth is discounted
    assert labels({}, 1.1)["walking"] == 0
    assert labels(ground, 0.0) == {"standing": 90}   # the jitter does not make a standing person move


@pytest.mark.parametrize("ground, message", [
    ({"image": IMAGE[:3], "world": WORLD}, "stages[0].ground.image: expected 4 [x, y] points"),
    ({"image": IMAGE}, "stages[0].ground.world: expected 4 [x, y] points"),
    ({"image": IMAGE, "world": "here"}, "stages[0].ground.world: expected a list"),
    ({"image": IMAGE, "world": WORLD, "wrold": 1}, "stages[0].ground.wrold: unknown key"),
])
def test_stage_bad_ground_params_name_the_key(ground, message):
    with pytest.raises(ConfigError) as info:
        build_or_raise(ActivityParams, {"ground": ground}, "stages[0]")
    assert len(info.value.errors) == 1 and info.value.errors[0].startswith(message)


def test_jitter_of_a_far_standing_person_is_discounted(monkeypatch):
    import stages.activities.ground as ground_module

    hm = ground_homography(IMAGE, WORLD)

    def still(noise):
        monkeypatch.setattr(ground_module, "GROUND_NOISE", noise)
        fe, rng, ar = FeatureExtractor(homography=hm), np.random.default_rng(0), np.zeros(4)
        for k in range(120):   # a detector's jitter: 2 % of the box height, correlated over frames (AR 0.8)
            box = np.asarray(walker_box(k / 30, 0.0, start=(0.0, 30.0)))
            ar = 0.8 * ar + 0.6 * rng.standard_normal(4)
            out = fe.update(k / 30, [1], [box + ar * 0.02 * (box[3] - box[1])], None, None, F)
        return {name: float(out[0, INDEX[name]]) for name in ("speed", "speed_med", "path_long")}

    noise = ground_module.GROUND_NOISE
    raw, kept = still(0.0), still(noise)
    assert raw["path_long"] > 0.3   # 30 m away the jitter alone walks 0.4 bh/s in 0.2 s steps (loitering)
    assert kept["path_long"] < 0.14 and kept["speed"] <= raw["speed"] and kept["speed_med"] <= raw["speed_med"]
