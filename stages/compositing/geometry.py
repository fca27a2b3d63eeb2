"""Where the ad goes: its placement on the surface, projections and regions of interest.

Convention: homographies are 3x3 float64 named by frames (`frame_from_ad` maps ad pixels to frame
pixels); pixel centres are at integer coordinates; quads are (4,2) clockwise from top-left.
"""
from __future__ import annotations

import numpy as np

from .ad import ad_corners


def project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a homography to (N,2) points. Convention: float64 in, (N,2) float64 out."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    q = p @ h[:, :2].T + h[:, 2]
    return q[:, :2] / q[:, 2:3]


def quad_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The homography taking 4 points onto 4 points (exact). Convention: (4,2) -> 3x3 float64."""
    import cv2

    return cv2.getPerspectiveTransform(np.asarray(src, np.float32), np.asarray(dst, np.float32)).astype(np.float64)


def ad_box(ad_w: int, ad_h: int, surface: np.ndarray, fit: str = "stretch", inset: float = 0.0):
    """Where a ad_w x ad_h ad sits on the surface quad, in the surface's unit square (0..1 from its
    top-left corner along its top and left sides): (lo, hi) (2,) float64 arrays, the ad's top-left
    and bottom-right. `fit`: 'stretch' fills the square; 'contain' keeps the ad's aspect ratio
    (the surface's aspect is estimated from the quad's mean side lengths) and centres it. `inset` in
    [0, 0.45] leaves that fraction of the surface free on every side."""
    if fit not in ("stretch", "contain"):
        raise ValueError(f"fit: expected 'stretch' or 'contain', got {fit!r}")
    if not 0 <= inset <= 0.45:
        raise ValueError(f"inset: expected 0 <= inset <= 0.45, got {inset}")
    quad = np.asarray(surface, np.float64).reshape(4, 2)
    lo, hi = np.full(2, float(inset)), np.full(2, 1.0 - inset)
    if fit == "contain":
        sides = np.linalg.norm(quad - np.roll(quad, -1, 0), axis=1)  # top, right, bottom, left
        surface_aspect = (sides[0] + sides[2]) / max(1e-9, sides[1] + sides[3]) * (hi[0] - lo[0]) / (hi[1] - lo[1])
        ad_aspect = ad_w / ad_h
        if ad_aspect > surface_aspect:  # full width, shorter
            frac = surface_aspect / ad_aspect
            lo[1], hi[1] = 0.5 - (0.5 - lo[1]) * frac, 0.5 + (hi[1] - 0.5) * frac
        else:
            frac = ad_aspect / surface_aspect
            lo[0], hi[0] = 0.5 - (0.5 - lo[0]) * frac, 0.5 + (hi[0] - 0.5) * frac
    return lo, hi


def ref_from_ad(ad_w: int, ad_h: int, surface: np.ndarray, fit: str = "stretch", inset: float = 0.0) -> np.ndarray:
    """Place a ad_w x ad_h ad on the surface quad (reference-frame pixels) as `ad_box` says: the
    ad's corners on the corners of its box. Returns ref_from_ad."""
    lo, hi = ad_box(ad_w, ad_h, surface, fit, inset)
    unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    ref_from_unit = quad_homography(unit, np.asarray(surface, np.float64).reshape(4, 2))
    target = project(ref_from_unit, np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]))
    return quad_homography(ad_corners(ad_w, ad_h), target)


def roi_of(quad: np.ndarray, height: int, width: int, pad: int = 0) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1), x1/y1 exclusive, covering a quad plus `pad` pixels, clipped to
    the frame; None when it misses the frame or the quad is not finite."""
    q = np.asarray(quad, np.float64)
    if not np.all(np.isfinite(q)):
        return None
    x0, y0 = np.floor(q.min(0) - pad).astype(int)
    x1, y1 = np.ceil(q.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def is_convex_quad(quad: np.ndarray) -> bool:
    """True when the quad is convex and not degenerate (a homography gone wrong folds it)."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    if not np.all(np.isfinite(q)):
        return False
    e = np.roll(q, -1, 0) - q
    cross = e[:, 0] * np.roll(e, -1, 0)[:, 1] - e[:, 1] * np.roll(e, -1, 0)[:, 0]
    return bool(np.all(cross > 1e-6) or np.all(cross < -1e-6))


def inside_quad(quad: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Which points (pixel centres) lie inside a convex quad. Convention: xs, ys broadcastable float
    arrays; returns a bool array of their broadcast shape."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    e = np.roll(q, -1, 0) - q
    sign = np.sign(e[0, 0] * e[1, 1] - e[0, 1] * e[1, 0]) or 1.0
    inside = np.ones(np.broadcast(xs, ys).shape, bool)
    for i in range(4):
        inside &= sign * (e[i, 0] * (ys - q[i, 1]) - e[i, 1] * (xs - q[i, 0])) >= 0
    return inside


def scale_homography(level: int) -> np.ndarray:
    """Ad pixels -> pixels of pyramid level `level` (each level halves, centres at integers)."""
    s = 0.5 ** level
    off = 0.5 * s - 0.5
    return np.array([[s, 0.0, off], [0.0, s, off], [0.0, 0.0, 1.0]])


def on_screen_scale(frame_from_ad: np.ndarray, ad_w: int, ad_h: int) -> float:
    """Largest ratio of a projected ad side to the ad's own side: how magnified the ad is on screen."""
    q = project(frame_from_ad, ad_corners(ad_w, ad_h))
    sides = np.linalg.norm(q - np.roll(q, -1, 0), axis=1)
    return float(max(sides[0] / ad_w, sides[2] / ad_w, sides[1] / ad_h, sides[3] / ad_h))
