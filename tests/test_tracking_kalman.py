"""The vectorized SORT filter against filterpy's KalmanFilter (the reference), and its helpers."""
import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from stages.tracking import kalman


def _filterpy_track(z):
    """One filterpy filter set up exactly as SORT does."""
    kf = KalmanFilter(dim_x=7, dim_z=4)
    kf.F = np.array([[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0],
                     [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]], float)
    kf.H = np.eye(4, 7)
    kf.R[2:, 2:] *= 10.0
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4] = z.reshape(4, 1)
    return kf


def _random_z(rng, n):
    return np.column_stack([rng.uniform(0, 1920, n), rng.uniform(0, 1080, n),
                            rng.uniform(200, 40000, n), rng.uniform(0.25, 1.5, n)])


def test_sort_matrices_are_filterpys_after_sorts_edits():
    kf = _filterpy_track(np.ones(4))
    np.testing.assert_array_equal(kalman.F, kf.F)
    np.testing.assert_array_equal(kalman.H, kf.H)
    np.testing.assert_array_equal(kalman.R, kf.R)
    np.testing.assert_array_equal(kalman.Q, kf.Q)
    np.testing.assert_array_equal(kalman.P0, kf.P)


@pytest.mark.parametrize("seed,p_update", [(0, 0.7), (1, 0.3), (2, 1.0)])
def test_matches_filterpy_over_long_random_sequence_with_missed_updates(seed, p_update):
    rng = np.random.default_rng(seed)
    n, steps = 6, 1500
    z0 = _random_z(rng, n)
    ref = [_filterpy_track(z) for z in z0]
    x, cov = kalman.initiate(z0)
    worst = 0.0
    for step in range(steps):
        kalman.predict(x, cov)
        for kf in ref:
            kf.predict()
        hit = rng.random(n) < p_update          # some tracks miss their update, some steps all do
        z = x[:, :4] + rng.normal(0, [5, 5, 300, 0.05], (n, 4)) if step % 50 else _random_z(rng, n)
        if hit.any():
            rows_x, rows_c = x[hit], cov[hit]
            kalman.update(rows_x, rows_c, z[hit])
            x[hit], cov[hit] = rows_x, rows_c
        for kf, h, zi in zip(ref, hit, z):
            if h:
                kf.update(zi.reshape(4, 1))
        want_x = np.array([kf.x[:, 0] for kf in ref])
        want_p = np.array([kf.P for kf in ref])
        got_p = kalman.full_covariance(cov)
        worst = max(worst, np.max(np.abs(x - want_x) / (1 + np.abs(want_x))),
                    np.max(np.abs(got_p - want_p) / (1 + np.abs(want_p))))
    assert worst < 1e-9


def test_predict_matrix_is_predict():
    rng = np.random.default_rng(3)
    x, cov = kalman.initiate(_random_z(rng, 5))
    x[:, 4:] = rng.normal(0, 3, (5, 3))
    for _ in range(4):
        kalman.update(x, cov, x[:, :4] + rng.normal(0, 2, (5, 4)))
        kalman.predict(x, cov)
    rows = np.concatenate([x, cov, np.ones((5, 1))], axis=1)
    kalman.predict(x, cov)
    np.testing.assert_allclose(rows @ kalman.predict_matrix(), np.concatenate([x, cov, np.ones((5, 1))], axis=1),
                               rtol=1e-13)


def test_initiate_is_sorts_prior():
    x, cov = kalman.initiate(np.array([[10.0, 20.0, 300.0, 0.5]]))
    np.testing.assert_array_equal(x, [[10, 20, 300, 0.5, 0, 0, 0]])
    np.testing.assert_array_equal(kalman.full_covariance(cov)[0], kalman.P0)


@pytest.mark.parametrize("box,z", [
    ([0, 0, 10, 20], [5, 10, 200, 0.5]),
    ([100.5, 50, 140.5, 60], [120.5, 55, 400, 4.0]),
])
def test_box_conversions_known_values_and_round_trip(box, z):
    np.testing.assert_allclose(kalman.xyxy_to_z(np.array([box])), [z], rtol=1e-12)
    np.testing.assert_allclose(kalman.x_to_xyxy(np.array([z + [1, 2, 3]])), [box], rtol=1e-12, atol=1e-9)
