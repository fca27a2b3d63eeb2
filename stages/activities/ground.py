"""Ground-plane calibration: image foot points -> metres on the ground, from four point pairs.

A camera that looks down on a flat ground sees it through a plane projective map (a homography):
four image points of the ground whose ground coordinates (metres) are known fix it. With it, a foot
point's motion is measured in metres per second wherever the person is in the image, instead of
image pixels per body height (which on a high, steep view makes someone walking towards or away
from the camera look almost still). `ground_motion` turns ground positions into the activity
features' motion columns (stages.activities.features), discounting the magnified foot jitter.

Convention: image points (N,2) float pixels (x right, y down); ground points (N,2) float metres in
any right- or left-handed planar frame; the homography is (3,3) float64 mapping homogeneous image
points to ground points. A point on or above the ground's horizon (its homogeneous w <= 0, or so
close to the horizon that it maps more than `max_range` metres from the ground frame's origin)
maps to NaN.
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_RANGE = 1000.0  # metres from the ground origin beyond which a mapped point is NaN
GROUND_NOISE = 5.0  # ground_motion's noise discount, in squared standard errors (detector jitter is correlated
                    # over frames, so the residuals understate it; chosen on training seeds 0-4: 0 -> 0.913,
                    # 2 -> 0.928, 3 -> 0.932, 5 -> 0.937, 8 -> 0.937 rules accuracy)


def _check_quad(points, name: str) -> np.ndarray:
    try:
        p = np.asarray(points, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected 4 [x, y] points of numbers, got {points!r}") from None
    if p.shape != (4, 2):
        raise ValueError(f"{name}: expected 4 [x, y] points, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name}: expected finite coordinates, got {p.tolist()}")
    scale = max(float(np.abs(p - p.mean(0)).max()), 1e-12)
    for i in range(4):  # no three points on one line (the map would be degenerate)
        a, b, c = np.delete(p, i, axis=0)
        area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2
        if area < 1e-3 * scale * scale:
            raise ValueError(f"{name}: expected 4 points with no three on one line, got {p.tolist()}")
    return p


def ground_homography(image_points, ground_points) -> np.ndarray:
    """The (3,3) homography from image pixels to ground metres through the four point pairs.

    Convention: image_points, ground_points: 4 [x, y] each (pixels, metres), in corresponding
    order; no three collinear in either set. Raises ValueError naming `image` or `world`."""
    img = _check_quad(image_points, "image")
    world = _check_quad(ground_points, "world")
    h = cv2.getPerspectiveTransform(img.astype(np.float32), world.astype(np.float32)).astype(np.float64)
    # the four image points must all lie on the ground side of the horizon (w > 0 for all, after
    # normalizing the sign): a crossed or mirrored correspondence puts some behind the camera
    w = np.c_[img, np.ones(4)] @ h[2]
    if not (np.all(w > 0) or np.all(w < 0)):
        raise ValueError("image, world: the four point pairs do not come from one view of a plane "
                         "(check their order: world[i] must be the ground point seen at image[i])")
    return h if w[0] > 0 else -h


def to_ground(homography: np.ndarray, points, max_range: float = MAX_RANGE) -> np.ndarray:
    """Map image points to ground metres; NaN for points at or above the horizon or mapped more
    than `max_range` metres from the origin of the ground frame.

    Convention: homography (3,3) from ground_homography (w > 0 on the ground side); points (N,2)
    pixels -> (N,2) float64 metres."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ np.asarray(homography, np.float64).T
    w = q[:, 2:3]
    ok = w > 1e-12
    out = np.where(ok, q[:, :2] / np.where(ok, w, 1.0), np.nan)
    out[~(np.abs(out) <= max_range).all(1)] = np.nan
    return out


def ground_motion(g: np.ndarray, t: np.ndarray, w_s: np.ndarray, w_m: np.ndarray, w_l: np.ndarray, k: int,
                  person_height: float) -> np.ndarray:
    """The motion features from ground positions: [speed, speed_med, speed_x, speed_y, disp_long,
    path_long, extent_long, straight] (as FEATURES describes them, on the ground).

    Convention: g (M,T,2) ground metres, newest first; t (T,) seconds (<= 0, newest first); w_s,
    w_m, w_l (M,T) 0/1 weights of the short, medium and long windows (0 where the point is not on
    the ground); k: the path's step in samples; person_height metres; returns (M,8) float64 in
    body heights (per second) of person_height metres.

    Noise: on the ground a foot's pixel jitter is magnified (by about distance / camera height, up
    to 10x on a low camera), so the speeds are de-biased: GROUND_NOISE times each slope's squared
    standard error (from the fit's residuals) is taken off its square, and GROUND_NOISE times twice
    the medium window's residual variance off each squared path step (0 at least). A clean track
    has no residual and keeps its speed."""
    from .features import _fit  # the same weighted line fit as the image-plane features

    m = len(g)
    out = np.zeros((m, 8))
    slope_s, _, std_s = _fit(w_s, t, g)
    slope_m, _, std_m = _fit(w_m, t, g)

    def se2(w, std):  # squared standard error of each slope (M,2)
        n = np.maximum(w.sum(1), 1e-9)
        mt = (w * t).sum(1) / n
        sxx = np.maximum((w * (t[None] - mt[:, None]) ** 2).sum(1), 1e-9)
        return (std ** 2 * (n / np.maximum(n - 2, 1))[:, None]) / sxx[:, None]

    e_s, e_m = GROUND_NOISE * se2(w_s, std_s), GROUND_NOISE * se2(w_m, std_m)
    out[:, 0] = np.sqrt(np.maximum(0, (slope_s ** 2 - e_s).sum(1)))
    out[:, 1] = np.sqrt(np.maximum(0, (slope_m ** 2 - e_m).sum(1)))
    out[:, 2:4] = np.sqrt(np.maximum(0, slope_m ** 2 - e_m))
    idx = np.arange(g.shape[1])
    has = w_l.any(1)
    first = np.where(has, np.where(w_l > 0, idx, g.shape[1]).min(1), 0)  # newest valid in the window
    last = np.where(has, (w_l * idx).max(1), 0).astype(int)               # oldest valid
    rows = np.arange(m)
    span = np.maximum(t[first] - t[last], 1e-9)
    disp = np.hypot(*(g[rows, first] - g[rows, last]).T)
    out[:, 4] = np.where(last > first, disp / span, 0.0)
    if k < g.shape[1]:
        pair = w_l[:, :-k] * w_l[:, k:]
        var = GROUND_NOISE * 2 * (std_m ** 2).sum(1)[:, None]
        step = np.sqrt(np.maximum(0, ((g[:, :-k] - g[:, k:]) ** 2).sum(2) - var))
        step_dt = np.maximum(t[:-k] - t[k:], 1e-9)
        npair = pair.sum(1)
        out[:, 5] = np.where(npair > 0, (pair * step / step_dt).sum(1) / np.maximum(npair, 1e-9), 0.0)
    n_l = np.maximum(w_l.sum(1), 1e-9)
    mean = (w_l[:, :, None] * g).sum(1) / n_l[:, None]
    out[:, 6] = np.sqrt((w_l * ((g - mean[:, None, :]) ** 2).sum(2)).sum(1) / n_l)
    out[:, :7] /= person_height
    out[:, 7] = np.where(out[:, 5] > 1e-6, np.clip(out[:, 4] / np.maximum(out[:, 5], 1e-9), 0, 1), 0.0)
    return out

