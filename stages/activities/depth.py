"""Motion towards or away from the camera from a tracked box: robust rates and what the foot confirms.

A body of m metres at distance Z is f*m/Z px tall (f: focal length in px), so its box's scale rate
d log(h)/dt = -dZ/dt / Z, and its speed in depth in body heights per second is that rate * f / h.
On the ground, a body that comes closer also moves its foot down the image: for a camera c metres
up and looking level, the foot is (c/m) * h below the horizon, so d(foot y)/dt / h = (c/m) *
d log(h)/dt. A box that grows with the foot still (an arm or a sign raised above the head, the top
edge's jitter) is not a body coming closer.

Convention: per-track series sampled at common times, newest or oldest first (any order): w (M,T)
bool valid, t (T,) seconds, values (M,T); rates per second; speeds in body heights per second.
"""
from __future__ import annotations

import numpy as np

MIN_LAG_S = 0.5       # the Theil-Sen pairs are at least this far apart in time (seconds)
FOOT_PER_SCALE = 0.3  # on the ground the foot moves down the image by at least this many body heights per unit
                      # of log(height) (a camera at least ~0.3 body heights above the ground); scale change beyond
                      # what the foot shows is the box's top edge


def masked_median(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Median of each row's valid entries (0 for a row with none); a sort, no masked arrays.

    Convention: v (M,N,...) float, ok (M,N) bool -> (M,...) float64, the median over axis 1."""
    v = np.asarray(v, np.float64)
    if v.shape[1] == 0:
        return np.zeros((len(v),) + v.shape[2:])
    ok = np.asarray(ok, bool).reshape(ok.shape + (1,) * (v.ndim - 2))
    srt = np.sort(np.where(ok, v, np.inf), axis=1)
    n = np.broadcast_to(ok.sum(1, keepdims=True), (len(v), 1) + v.shape[2:])
    lo = np.take_along_axis(srt, np.maximum(n - 1, 0) // 2, 1)
    hi = np.take_along_axis(srt, np.minimum(n // 2, v.shape[1] - 1), 1)
    return np.where(n > 0, 0.5 * (lo + hi), 0.0)[:, 0]


def theil_sen(w: np.ndarray, t: np.ndarray, v: np.ndarray, min_lag: float) -> tuple[np.ndarray, np.ndarray]:
    """Robust slope per row: the median of the pairwise slopes (v_i - v_j) / (t_i - t_j) over the
    pairs of valid samples with t_i - t_j >= min_lag (Theil-Sen: up to ~29 % of outliers, e.g. a box
    cut short by a passer-by for a while, leave it unmoved).

    Convention: w (M,T) bool valid, t (T,) seconds, v (M,T,K) float -> slope (M,K) per second (0
    where a row has no pair), pair count (M,) int. Cost O(M T^2 K log T): sample T sparsely."""
    w = np.asarray(w, bool)
    t = np.asarray(t, np.float64)
    v = np.asarray(v, np.float64)
    m, _, k = v.shape
    dt = t[:, None] - t[None, :]
    lagged = dt >= min_lag
    i, j = np.nonzero(lagged)  # only the pairs far enough apart
    ok = w[:, i] & w[:, j]
    slopes = (v[:, i] - v[:, j]) / dt[i, j][None, :, None]
    return masked_median(slopes, ok).reshape(m, k), ok.sum(1)


def ground_confirmed(depth_rate, foot_rate, foot_per_scale: float = FOOT_PER_SCALE) -> np.ndarray:
    """The part of a box's scale rate that its foot confirms as motion on the ground: growing with
    the foot going down (coming closer) or shrinking with it going up (going away), limited to
    foot_rate / foot_per_scale; 0 with a still or contrary foot.

    Convention: depth_rate (N,) d log(height)/dt in 1/s, foot_rate (N,) d(foot y)/dt / height in
    bh/s (+ down the image); returns (N,) float64 1/s, the sign of depth_rate, |out| <= |depth_rate|."""
    d, f = np.asarray(depth_rate, np.float64), np.asarray(foot_rate, np.float64)
    if foot_per_scale <= 0:
        raise ValueError(f"foot_per_scale: expected > 0, got {foot_per_scale}")
    return np.sign(d) * np.minimum(np.abs(d), np.maximum(0.0, np.sign(d) * f) / foot_per_scale)


def depth_features(w: np.ndarray, t: np.ndarray, log_h: np.ndarray, foot: np.ndarray,
                   px_per_bh: np.ndarray, min_lag: float = MIN_LAG_S) -> np.ndarray:
    """[depth_rate, foot_rate, approach_speed, approach_noise] per track (see features.FEATURES).

    depth_rate, foot_rate: Theil-Sen slopes of log height (1/s) and of the foot's row in body
    heights (bh/s); approach_speed: |ground_confirmed rate| * px_per_bh; approach_noise: its standard
    error, the robust spread (1.4826 MAD) of log height about the Theil-Sen line over
    sqrt(sum (t - mean t)^2), * px_per_bh (1 * px_per_bh with fewer than 3 samples).

    Convention: w (M,T) bool, t (T,) s, log_h (M,T) log px, foot (M,T) foot row / body height,
    px_per_bh (M,) focal length / body height (the body's distance in body heights); returns
    (M,4) float64."""
    w = np.asarray(w, bool)
    log_h, foot = np.asarray(log_h, np.float64), np.asarray(foot, np.float64)
    slope, count = theil_sen(w, t, np.stack([log_h, foot], 2), min_lag)
    rate = ground_confirmed(slope[:, 0], slope[:, 1])
    n = w.sum(1)
    noise = np.ones(len(w))
    ok = (n >= 3) & (count > 0)
    if ok.any():
        r = log_h[ok] - slope[ok, :1] * t[None]
        spread = 1.4826 * masked_median(np.abs(r - masked_median(r, w[ok])[:, None]), w[ok])
        mean_t = (w[ok] * t).sum(1) / n[ok]
        sxx = (w[ok] * (t[None] - mean_t[:, None]) ** 2).sum(1)
        noise[ok] = spread / np.sqrt(np.maximum(sxx, 1e-12))
    return np.stack([slope[:, 0], slope[:, 1], np.abs(rate) * px_per_bh, noise * px_per_bh], 1)
