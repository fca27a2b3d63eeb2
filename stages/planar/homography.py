"""Robust homographies and the geometry of a tracked quadrilateral.

Convention: points are (N,2) float pixels (x, y), origin top-left; homographies are 3x3 float64
named by frames (`frame_from_ref` maps reference pixels to frame pixels); corners are (4,2),
clockwise from top-left in image coordinates (y down).
"""
from __future__ import annotations

import cv2
import numpy as np

METHODS = {"ransac": cv2.RANSAC, "usac": cv2.USAC_DEFAULT, "magsac": cv2.USAC_MAGSAC, "prosac": cv2.USAC_PROSAC,
           "rho": cv2.RHO, "lmeds": cv2.LMEDS}


def find_homography(src: np.ndarray, dst: np.ndarray, threshold: float = 3.0, method: str = "ransac",
                    confidence: float = 0.995, max_iters: int = 2000,
                    polish: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Robust dst_from_src homography and its inlier mask; `polish` refits by least squares on the
    inliers, tightened to the residuals' own scale (3 sigma, at least 0.25 px).

    Convention: src, dst (N,2) pixels, threshold > 0 in pixels (reprojection error); returns
    (H 3x3 float64 or None, inliers (N,) bool). None when fewer than 4 points or no model."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if threshold <= 0:
        raise ValueError(f"threshold: expected > 0 px, got {threshold}")
    src = np.asarray(src, np.float32).reshape(-1, 2)
    dst = np.asarray(dst, np.float32).reshape(-1, 2)
    n = len(src)
    if n < 4 or len(dst) != n:
        return None, np.zeros(n, bool)
    H, mask = cv2.findHomography(src, dst, METHODS[method], threshold, maxIters=max_iters, confidence=confidence)
    if H is None or mask is None or not np.all(np.isfinite(H)) or abs(H[2, 2]) < 1e-12:
        return None, np.zeros(n, bool)
    inliers = mask.ravel().astype(bool)
    for _ in range(2 if polish else 0):  # least squares on the inliers, tightened to their own scale
        if inliers.sum() < 8:
            break
        H2, _ = cv2.findHomography(src[inliers], dst[inliers], 0)
        if H2 is None or not np.all(np.isfinite(H2)) or abs(H2[2, 2]) < 1e-12:
            break
        H = H2
        residual = np.linalg.norm(project(H, src) - dst, axis=1)
        sigma = 1.4826 * float(np.median(residual[inliers]))
        tight = residual < min(threshold, max(0.25, 3.0 * sigma))
        if tight.sum() < 8 or np.array_equal(tight, inliers):
            break
        inliers = tight
    return H / H[2, 2], inliers


def project(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply H to points. Convention: pts (N,2) -> (N,2) float64; points at infinity give inf."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(H, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return h[:, :2] / h[:, 2:3]


def homography_from_corners(ref_corners: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The exact frame_from_ref mapping four reference corners onto four frame corners.
    Convention: (4,2) px each -> 3x3 float64."""
    src, dst = np.float32(ref_corners).reshape(4, 2), np.float32(corners).reshape(4, 2)
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def signed_area(corners: np.ndarray) -> float:
    """Shoelace area of a polygon. Convention: (N,2) px -> px^2, positive when clockwise in image
    coordinates (y down)."""
    c = np.asarray(corners, np.float64).reshape(-1, 2)
    x, y = c[:, 0], c[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def quad_is_sane(corners: np.ndarray, ref_area: float | None = None, max_area_ratio: float = 1.5,
                 min_area: float = 16.0) -> bool:
    """True when `corners` are finite, convex, keep their winding, cover at least `min_area` px^2,
    and (given the signed area of the last good quad) changed area by at most `max_area_ratio`.
    Convention: corners (4,2) px; areas px^2, signed as `signed_area`; max_area_ratio > 1."""
    c = np.asarray(corners, np.float64).reshape(-1, 2)
    if c.shape != (4, 2) or not np.all(np.isfinite(c)) or np.abs(c).max() > 1e6:
        return False
    area = signed_area(c)
    if abs(area) < min_area or not cv2.isContourConvex(np.float32(c)):
        return False
    if ref_area is not None:
        if np.sign(area) != np.sign(ref_area):
            return False
        ratio = abs(area) / max(abs(ref_area), 1e-9)
        if not 1.0 / max_area_ratio <= ratio <= max_area_ratio:
            return False
    return True


def polygon_mask(shape: tuple[int, int], corners: np.ndarray, erode: int = 0) -> np.ndarray:
    """Convention: shape (H,W[,...]), corners (N,2) px -> (H,W) uint8 mask, 255 inside the polygon,
    shrunk by `erode` px."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(corners, np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)], 255,
                 lineType=cv2.LINE_8, shift=4)
    if erode > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1)))
    return mask


def corner_errors(corners: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance per corner. Convention: (..., 4, 2) pixels -> (..., 4) pixels."""
    return np.linalg.norm(np.asarray(corners, np.float64) - np.asarray(truth, np.float64), axis=-1)
