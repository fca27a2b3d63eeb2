"""SORT's constant-velocity Kalman filter, vectorized over all tracks at once (numpy).

The model is SORT's, with filterpy's `KalmanFilter` equations (predict: x = F x, P = F P F' + Q;
update: K = P H' S^-1, x += K y, Joseph form P = (I-KH) P (I-KH)' + K R K') for N tracks at once.
With SORT's F, H and diagonal Q, R, P0 the 7x7 covariance stays block diagonal: the pairs
(cx, vx), (cy, vy), (s, vs) and r alone never correlate. So each track's filter is exactly four
independent filters with scalar measurements, and the covariance is stored as its 10 non-zero
entries. Tests check this against filterpy's KalmanFilter to 1e-9 over long random
predict/update sequences with missed updates; `full_covariance` rebuilds the 7x7 matrices.

Convention: state x (N,7) float64 = [cx, cy, s, r, vx, vy, vs]: box centre (pixels), scale s = area
(pixels^2), aspect r = w/h, and per-frame velocities of cx, cy, s (r is constant); covariance
cov (N,10) float64 = [var cx, cy, s, r | cov(cx,vx), cov(cy,vy), cov(s,vs) | var vx, vy, vs];
measurement z (N,4) float64 = [cx, cy, s, r]; boxes (N,4) xyxy pixels. predict/update work in place.
"""
from __future__ import annotations

import numpy as np

DIM_X, DIM_Z, DIM_COV = 7, 4, 10

#: SORT's matrices (filterpy's identity defaults, then R[2:,2:] *= 10, P[4:,4:] *= 1000, P *= 10,
#: Q[-1,-1] *= 0.01, Q[4:,4:] *= 0.01), kept here as full matrices for reference and tests.
F = np.eye(DIM_X)
F[0, 4] = F[1, 5] = F[2, 6] = 1.0
H = np.eye(DIM_Z, DIM_X)
R = np.diag([1.0, 1.0, 10.0, 10.0])
Q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 0.0001])
P0 = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])

_R = np.diag(R).copy()                  # measurement noise of cx, cy, s, r
_Q_POS = np.diag(Q)[:4].copy()          # process noise of cx, cy, s, r
_Q_VEL = np.diag(Q)[4:].copy()          # process noise of vx, vy, vs
_COV0 = np.concatenate([np.diag(P0)[:4], np.zeros(3), np.diag(P0)[4:]])
_PAIR = np.array([0, 1, 2, 3, 0, 1, 2])   # state column -> its measured component
_R7 = _R[_PAIR]
#: xyxy @ CORNERS_TO_CENTRE = [cx, cy, w, h]; [cx, cy, w, h] @ _CENTRE_TO_CORNERS = xyxy.
CORNERS_TO_CENTRE = np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])
_CENTRE_TO_CORNERS = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]])


def xyxy_to_z(xyxy) -> np.ndarray:
    """Boxes to measurements. Convention: xyxy (N,4) pixels with positive width and height ->
    z (N,4) float64 [cx, cy, s, r] (callers drop degenerate boxes first)."""
    return size_to_scale(np.asarray(xyxy, np.float64).reshape(-1, 4) @ CORNERS_TO_CENTRE)


def size_to_scale(c: np.ndarray) -> np.ndarray:
    """[cx, cy, w, h] rows (from `xyxy @ CORNERS_TO_CENTRE`) to [cx, cy, s, r], in place; returns c."""
    w = c[:, 2].copy()
    c[:, 2] *= c[:, 3]
    c[:, 3] = w / c[:, 3]
    return c


def x_to_xyxy(x) -> np.ndarray:
    """States to boxes. Convention: x (N,>=4) rows starting [cx, cy, s, r] -> xyxy (N,4) float64;
    w = sqrt(s r), h = s / w (rows with s*r <= 0 give NaN: callers drop those tracks, as SORT)."""
    x = np.asarray(x, np.float64)
    x = x if x.ndim == 2 else x.reshape(1, -1)
    c = np.empty((x.shape[0], 4))
    c[:, :2] = x[:, :2]
    c[:, 2] = np.sqrt(x[:, 2] * x[:, 3])
    c[:, 3] = x[:, 2] / c[:, 2]
    return c @ _CENTRE_TO_CORNERS


def initiate(z) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from measurements. Convention: z (N,4) -> x (N,7) with zero velocity, cov (N,10)
    (the block form of SORT's P0)."""
    z = np.asarray(z, np.float64).reshape(-1, DIM_Z)
    x = np.zeros((z.shape[0], DIM_X))
    x[:, :DIM_Z] = z
    return x, np.tile(_COV0, (z.shape[0], 1))


def predict(x: np.ndarray, cov: np.ndarray) -> None:
    """One frame ahead for every track, in place: x = F x, P = F P F' + Q.

    Convention: x (N,7), cov (N,10) float64 arrays or writable views. Per pair (position p,
    velocity v): var p += 2 cov(p,v) + var v + q_p; cov(p,v) += var v; var v += q_v.
    """
    x[:, :3] += x[:, 4:]
    cov[:, :3] += 2.0 * cov[:, 4:7] + cov[:, 7:]
    cov[:, :4] += _Q_POS
    cov[:, 4:7] += cov[:, 7:]
    cov[:, 7:] += _Q_VEL


def update(x: np.ndarray, cov: np.ndarray, z) -> None:
    """Correct every track with its measurement, in place (the same values as filterpy's update).

    Convention: x (N,7), cov (N,10), z (N,4) float64, rows aligned. Per pair (position p,
    velocity v) with measurement noise r and S = var p + r, the gains are k_p = var p / S and
    k_v = cov(p,v) / S, and the Joseph-form covariance reduces to var p = r k_p, cov(p,v) = r k_v,
    var v -= k_v cov(p,v).
    """
    gain = cov[:, :7] / (cov.take(_PAIR, axis=1) + _R7)  # [k_p for cx, cy, s, r | k_v for vx, vy, vs]
    x += gain * (np.asarray(z, np.float64) - x[:, :4]).take(_PAIR, axis=1)
    cov[:, 7:] -= gain[:, 4:] * cov[:, 4:7]
    cov[:, :7] = gain * _R7


def predict_matrix() -> np.ndarray:
    """The predict step as one linear map on rows [x | cov | 1]: row @ M equals `predict`.

    Convention: (18,18) float64; the last row adds the process noise, the last column keeps 1.
    Lets a caller that keeps tracks as rows of a table predict them all with one matrix product.
    """
    M = np.eye(DIM_X + DIM_COV + 1)
    one = DIM_X + DIM_COV
    for i in range(3):                   # position i, velocity i + 4
        M[4 + i, i] = 1.0                # x_i += v_i
        M[DIM_X + 4 + i, DIM_X + i] = 2.0  # var p += 2 cov(p,v)
        M[DIM_X + 7 + i, DIM_X + i] = 1.0  # ... + var v
        M[DIM_X + 7 + i, DIM_X + 4 + i] = 1.0  # cov(p,v) += var v
        M[one, DIM_X + 7 + i] = _Q_VEL[i]
    M[one, DIM_X:DIM_X + 4] = _Q_POS
    return M


def full_covariance(cov) -> np.ndarray:
    """The 7x7 covariance matrices. Convention: cov (N,10) -> P (N,7,7) float64."""
    cov = np.atleast_2d(np.asarray(cov, np.float64))
    P = np.zeros((cov.shape[0], DIM_X, DIM_X))
    i = np.arange(4)
    P[:, i, i] = cov[:, :4]
    j = np.arange(3)
    P[:, j, j + 4] = P[:, j + 4, j] = cov[:, 4:7]
    P[:, j + 4, j + 4] = cov[:, 7:]
    return P
