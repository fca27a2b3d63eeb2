"""Window features: known speeds in body heights per second, scale and frame-rate invariance,
in-box flow statistics (numpy = torch integral images), motion energy."""
import numpy as np
import pytest

from stages.activities.features import FEATURES, INDEX, FeatureExtractor, box_motion_energy, region_flow_stats


def track_features(speed_bh, height=100.0, fps=30.0, seconds=4.0, scale=1.0, x0=50.0, y=300.0):
    """Features after walking at `speed_bh` body heights per second for `seconds`."""
    ex = FeatureExtractor()
    f = None
    for k in range(int(seconds * fps)):
        t = k / fps
        x = x0 + speed_bh * height * t
        b = np.array([[x - 0.2 * height, y - height, x + 0.2 * height, y]]) * scale
        f = ex.update(t, [3], b)
    return f[0]


@pytest.mark.parametrize("speed", [0.0, 0.3, 0.8, 1.7])
def test_speed_in_body_heights_per_second(speed):
    f = track_features(speed)
    for name in ("speed", "speed_med", "speed_x", "disp_long", "path_long"):
        assert f[INDEX[name]] == pytest.approx(speed, abs=1e-3), name
    assert f[INDEX["straight"]] == pytest.approx(1.0 if speed > 0 else 0.0, abs=1e-3)
    assert f[INDEX["fill"]] == pytest.approx(1.0)


def test_scale_and_frame_rate_invariance():
    base = track_features(0.7)
    big = track_features(0.7, height=300.0, scale=1.0)
    fast = track_features(0.7, fps=60.0)
    keep = [INDEX[n] for n in FEATURES if n not in ("energy_top", "energy_bottom", "has_flow")]
    np.testing.assert_allclose(big[keep], base[keep], atol=2e-3)
    np.testing.assert_allclose(fast[keep], base[keep], rtol=0.01, atol=2e-3)  # sampling of the window


def test_loitering_extent_and_straightness():
    ex = FeatureExtractor()
    for k in range(120):  # a circle of radius 0.3 body heights, one turn per 2 s
        t = k / 30
        x, y = 300 + 30 * np.cos(np.pi * t), 300 + 30 * np.sin(np.pi * t)
        f = ex.update(t, [1], [[x - 20, y - 100, x + 20, y]])[0]
    assert f[INDEX["extent_long"]] == pytest.approx(0.3, abs=0.02)
    assert f[INDEX["straight"]] < 0.3  # a straight walk gives 1
    assert f[INDEX["path_long"]] == pytest.approx(0.3 * np.pi, rel=0.1)  # circumference speed


def test_tracks_are_forgotten_and_time_going_back_resets():
    ex = FeatureExtractor(forget_s=0.5)
    ex.update(0.0, [1, 2], [[0, 0, 10, 40], [50, 0, 60, 40]])
    ex.update(1.0, [2], [[50, 0, 60, 40]])
    assert set(ex.slots) == {2}
    ex.update(0.5, [5], [[0, 0, 10, 40]])
    assert set(ex.slots) == {5}
    assert ex.update(0.6, [], []).shape == (0, len(FEATURES))


def test_bad_windows_rejected():
    with pytest.raises(ValueError):
        FeatureExtractor(short_s=2.0, medium_s=1.0)
    with pytest.raises(ValueError):
        FeatureExtractor(capacity=2)


def test_region_flow_stats_known_answer_and_torch_matches(device):
    import torch

    flow = np.zeros((2, 60, 80), np.float32)
    flow[0, 10:20, 10:30] = 2.0    # upper part of the box moves right
    boxes = np.array([[10, 10, 30, 50], [70, 0, 90, 10], [200, 200, 220, 240]], np.float32)
    got = region_flow_stats(flow, boxes)
    top = flow[:, 10:28, 10:30]
    assert got[0, 0] == pytest.approx(float(np.sqrt(top.var(axis=(1, 2)).sum())), rel=1e-5)
    assert got[0, 1] == pytest.approx(0.0)
    assert got[0, 2] == pytest.approx(2.0 * 200 / 800, rel=1e-5) and got[0, 4] == 1
    assert got[2].tolist() == [0, 0, 0, 0, 0]
    t = region_flow_stats(torch.as_tensor(flow, device=device), boxes)
    np.testing.assert_allclose(t[:2], got[:2], atol=1e-4)
    assert t[2].tolist() == [0, 0, 0, 0, 0]


def test_motion_energy_top_only_when_an_arm_moves():
    rng = np.random.default_rng(0)
    prev = rng.integers(0, 255, (100, 100, 3)).astype(np.uint8)
    cur = prev.copy()
    cur[22:30, 40:60] = 255 - cur[22:30, 40:60]  # change in the upper box only
    e = box_motion_energy(prev, cur, np.array([[40, 20, 60, 100]], np.float32))[0]
    assert e[2] == 1 and e[0] > 0.5 and e[1] == 0.0
    assert box_motion_energy(None, cur, np.zeros((1, 4))).tolist() == [[0, 0, 0]]


def test_motion_energy_skips_overlapped_boxes():
    rng = np.random.default_rng(1)
    prev = rng.integers(0, 255, (100, 200, 3)).astype(np.uint8)
    cur = 255 - prev
    boxes = np.array([[10, 10, 40, 90], [30, 10, 60, 90], [120, 10, 150, 90]], np.float32)
    e = box_motion_energy(prev, cur, boxes)
    assert e[:2].tolist() == [[0, 0, 0], [0, 0, 0]] and e[2, 2] == 1 and e[2, 0] > 0


def test_depth_speed_from_a_growing_box():
    """A 1.7 m figure walking towards a camera of focal length f = 500 px at 1.3 m/s: its box
    height is f m / Z; depth_speed must be 1.3 / 1.7 body heights per second."""
    f, m, v = 500.0, 1.7, 1.3
    ex = FeatureExtractor()
    for k in range(45):
        t = k / 30
        h = f * m / (12.0 - v * t)
        out = ex.update(t, [1], [[300 - 0.2 * h, 300 - h, 300 + 0.2 * h, 300]], focal_px=f)[0]
    assert out[INDEX["depth_speed"]] == pytest.approx(v / m, rel=0.03)
    assert out[INDEX["speed_3d"]] == pytest.approx(v / m, rel=0.03)


@pytest.mark.parametrize("v, cam_h", [(1.3, 4.0), (-1.0, 1.4), (0.0, 1.4)])
def test_approach_speed_on_the_ground(v, cam_h):
    """A 1.7 m figure walking straight towards (v > 0) or away from a level camera (focal 500 px,
    cam_h metres up, horizon at row 100): approach_speed = |v| / 1.7 bh/s, depth_rate and foot_rate
    have the motion's sign; a clean track's noise is small (log height is not quite linear in time
    at constant speed)."""
    f, m = 500.0, 1.7
    ex = FeatureExtractor()
    for k in range(100):
        Z = 10.0 - v * k / 30
        h, y = f * m / Z, 100 + f * cam_h / Z
        out = ex.update(k / 30, [1], [[300 - 0.2 * h, y - h, 300 + 0.2 * h, y]], focal_px=f)[0]
    assert out[INDEX["approach_speed"]] == pytest.approx(abs(v) / m, rel=0.03, abs=1e-6)
    assert np.sign(out[INDEX["depth_rate"]]) == np.sign(out[INDEX["foot_rate"]]) == np.sign(v)
    assert out[INDEX["approach_noise"]] < 0.03


def test_motion_energy_hardly_depends_on_resolution():
    """Crops are normalized to features.CROP, so the same scene at 6x the size (a 1080p camera
    instead of 180p; big boxes are subsampled before the area resize) gives about the same energy."""
    import cv2

    rng = np.random.default_rng(2)
    prev = cv2.GaussianBlur(rng.integers(0, 255, (100, 160, 3)).astype(np.uint8), (5, 5), 1.5)
    cur = prev.copy()
    cur[24:34, 40:62] = 255 - cur[24:34, 40:62]  # an arm moves in the first box's top
    cur[70:95, 95:125] = np.roll(cur[70:95, 95:125], 3, axis=1)  # legs move in the second's bottom
    boxes = np.array([[38, 20, 62, 96], [92, 20, 128, 96]], np.float32)
    small = box_motion_energy(prev, cur, boxes)
    big = [cv2.resize(im, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR) for im in (prev, cur)]
    large = box_motion_energy(*big, boxes * 6)
    assert small[0, 0] > 0.5 and small[1, 1] > 0.3 and small[:, 2].tolist() == [1, 1]
    np.testing.assert_allclose(large, small, rtol=0.15, atol=0.05)
