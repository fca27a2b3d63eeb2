"""Blur for compositing: the kernel that makes the ad as soft as the surface around it (a Gaussian
for focus and resampling, a line along the image motion for motion blur) and the fit that
measures how blurred the surface is now compared with when placement began.

Convention: kernels are (k,k) float32, odd k, summing to 1; sigma and motion are in frame pixels;
`motion` (dx, dy) is the image displacement over one frame interval; `exposure` in [0,1] is the
fraction of it the shutter was open for.
"""
from __future__ import annotations

import numpy as np


def blur_kernel(sigma: float, motion=(0.0, 0.0), exposure: float = 0.0, max_size: int = 41) -> np.ndarray:
    """A Gaussian of `sigma` convolved with a line of length |motion| * exposure centred on 0."""
    import cv2

    if sigma < 0 or not 0 <= exposure <= 1:
        raise ValueError(f"sigma >= 0 and 0 <= exposure <= 1 expected, got {sigma}, {exposure}")
    dx, dy = float(motion[0]) * exposure, float(motion[1]) * exposure
    length = float(np.hypot(dx, dy))
    half = int(min(max_size // 2, np.ceil(3 * sigma + length / 2 + 1)))
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    n = max(2, int(np.ceil(length * 4)) + 1)
    for t in np.linspace(-0.5, 0.5, n) if length > 1e-3 else (0.0,):
        x, y = half + t * dx, half + t * dy  # bilinear splat of each point of the segment
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for (xx, yy, wgt) in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                              (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
            if 0 <= xx < k.shape[1] and 0 <= yy < k.shape[0]:
                k[yy, xx] += wgt
    if sigma > 0.05:
        k = cv2.GaussianBlur(k, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return k / k.sum()


def trim(k: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Drop border rows/columns holding less than `tol` of the mass (keeps the kernel odd and centred)."""
    while k.shape[0] > 1:
        ring = k.sum() - k[1:-1, 1:-1].sum()
        if ring > tol * k.sum():
            break
        k = k[1:-1, 1:-1]
    return k / k.sum()


def fit_blur(current: np.ndarray, reference: np.ndarray, weights: np.ndarray, sigmas=(0.0, 0.7, 1.2, 1.8, 2.5, 3.5),
             motion=(0.0, 0.0), exposures=(0.0, 0.5, 1.0), trim_fraction: float = 0.2):
    """How blurred `current` is relative to `reference` (the same surface, warped into the same
    pixels): the (sigma, exposure) whose blur of the reference best explains the current image.
    Both are (h,w) float32 grey; `weights` (h,w) in [0,1] marks surface pixels to use (not occluded).
    Intensities are normalised (mean/std) first, so lighting changes do not count; the worst
    `trim_fraction` of residuals is ignored (occluders the mask missed, glints). Candidates with
    exposure > 0 are tried only when the motion is over 1 px. Returns (sigma, exposure, error)
    or None when too few pixels are usable."""
    import cv2

    sel = weights > 0.5
    if sel.sum() < 64:
        return None
    cur = current[sel]
    cur = (cur - cur.mean()) / max(1e-3, float(cur.std()))
    use_motion = float(np.hypot(*motion)) > 1.0
    best = None
    for e in (exposures if use_motion else (0.0,)):
        for s in sigmas:
            k = blur_kernel(s, motion, e)
            ref = cv2.filter2D(reference, -1, k, borderType=cv2.BORDER_REPLICATE)[sel] if k.shape[0] > 1 else reference[sel]
            ref = (ref - ref.mean()) / max(1e-3, float(ref.std()))
            r = (cur - ref) ** 2
            if trim_fraction > 0:
                r = np.partition(r, int(len(r) * (1 - trim_fraction)))[: int(len(r) * (1 - trim_fraction))]
            err = float(r.mean())
            if best is None or err < best[2]:
                best = (float(s), float(e), err)
    return best
