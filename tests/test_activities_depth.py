"""Motion in depth: Theil-Sen slopes against scipy's, the foot's confirmation of a scale change, and
depth_features on an exact approach with outliers."""
import numpy as np
import pytest

from stages.activities.depth import depth_features, ground_confirmed, theil_sen


def test_theil_sen_matches_scipy_and_ignores_outliers():
    from scipy.stats import theilslopes

    rng = np.random.default_rng(3)
    t = -np.arange(40)[::-1] / 10.0  # seconds, oldest first (any order works)
    v = 0.7 * t + rng.normal(0, 0.05, 40)
    v[5:13] += 3.0  # a fifth of the samples far off (a box cut short for a while)
    w = np.ones((1, 40), bool)
    w[0, 30] = False
    slope, count = theil_sen(w, t, v[None, :, None], min_lag=1e-9)
    keep = w[0]
    assert slope[0, 0] == pytest.approx(theilslopes(v[keep], t[keep])[0], abs=1e-9)
    assert slope[0, 0] == pytest.approx(0.7, abs=0.05) and count[0] == 39 * 38 // 2
    lagged, n_lag = theil_sen(w, t, v[None, :, None], min_lag=0.5)  # pairs at least 0.5 s apart
    assert lagged[0, 0] == pytest.approx(0.7, abs=0.05) and 0 < n_lag[0] < count[0]
    none, zero = theil_sen(np.zeros((1, 40), bool), t, v[None, :, None], 0.5)
    assert none[0, 0] == 0.0 and zero[0] == 0


@pytest.mark.parametrize("depth_rate, foot_rate, expected", [
    (0.10, 0.10, 0.10),     # grows, foot down fast enough: all of it
    (0.10, 0.015, 0.05),    # foot down at half the least rate (depth.FOOT_PER_SCALE 0.3): half of it
    (0.10, 0.0, 0.0),       # grows with the foot still: the top edge (an arm, a sign)
    (0.10, -0.05, 0.0),     # grows while the foot goes up: not motion on the ground
    (-0.10, -0.20, -0.10),  # shrinks, foot up: walking away
    (-0.10, 0.20, 0.0),
])
def test_ground_confirmed(depth_rate, foot_rate, expected):
    assert ground_confirmed(np.array([depth_rate]), np.array([foot_rate]))[0] == pytest.approx(expected)



def test_depth_features_of_an_approach_with_a_cut_box():
    """Log height and foot row of a body approaching at a known rate, with its box cut to half
    height for a fifth of the window (occluded legs): the rates stay those of the clean series."""
    t = -np.arange(16)[::-1] * 0.2          # one sample per 0.2 s over 3 s
    rate = 0.12                              # d log(h) / dt, 1/s
    log_h = np.log(200.0) + rate * t
    foot = 3.0 + 0.8 * rate * t              # camera 0.8 body heights up: foot moves 0.8 bh per log unit
    log_h[4:7] -= np.log(2.0)
    w = np.ones((1, 16), bool)
    out = depth_features(w, t, log_h[None], foot[None], np.array([5.0]))[0]
    assert out[0] == pytest.approx(rate, rel=0.02) and out[1] == pytest.approx(0.8 * rate, rel=0.02)
    assert out[2] == pytest.approx(rate * 5.0, rel=0.02)
    assert 0 <= out[3] < 0.05
    few = depth_features(np.eye(1, 16, dtype=bool), t, log_h[None], foot[None], np.array([5.0]))[0]
    assert few[2] == 0 and few[3] == pytest.approx(5.0)  # one sample: no rate, the noise says so


def test_masked_median_matches_numpy():
    from stages.activities.depth import masked_median

    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 9, 2))
    ok = rng.random((5, 9)) < 0.6
    ok[3] = False
    got = masked_median(v, ok)
    for r in range(5):
        want = np.median(v[r][ok[r]], axis=0) if ok[r].any() else np.zeros(2)
        np.testing.assert_allclose(got[r], want)
    assert masked_median(np.zeros((2, 0)), np.zeros((2, 0), bool)).tolist() == [0.0, 0.0]
