"""Ground-plane calibration: image foot points -> metres on the ground, from four point pairs.

A camera that looks down on a flat ground sees it through a plane projective map (a homography):
four image points of the ground whose ground coordinates (metres) are known fix it. With it, a foot
point's motion is measured in metres per second wherever the person is in the image, instead of
image pixels per body height (which on a high, steep view makes someone walking towards or away
from the camera look almost still).

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
