"""Blur for compositing: what makes the ad as soft as the surface around it (a Gaussian for focus
and resampling, a line along the image motion for motion blur) and the fit that measures how
blurred the surface is now compared with when placement began.

Convention: sigma and motion are in frame pixels; `motion` (dx, dy) is the image displacement
over one frame interval; `exposure` in [0,1] is the fraction of it the shutter was open for;
kernels are (k,k) float32, odd k, summing to 1; images are float32 (h,w) or (h,w,c).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def line_kernel(motion, exposure: float) -> np.ndarray | None:
    """A line of length |motion| * exposure through the centre, bilinearly splatted (anti-aliased);
    None when shorter than half a pixel."""
    if not 0 <= exposure <= 1:
        raise ValueError(f"exposure: expected 0 <= exposure <= 1, got {exposure}")
    dx, dy = float(motion[0]) * exposure, float(motion[1]) * exposure
    length = float(np.hypot(dx, dy))
    if length < 0.5:
        return None
    half = int(np.ceil(max(abs(dx), abs(dy)) / 2)) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    t = np.linspace(-0.5, 0.5, int(np.ceil(length * 4)) + 1)
    x, y = half + t * dx, half + t * dy
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for ox, oy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + oy, x0 + ox), w)
    return k / k.sum()


@dataclass(frozen=True)
class Blur:
    """A Gaussian of `sigma` after a motion line. `apply` runs them separably with OpenCV (a line
    kernel, then a separable Gaussian); `kernel` is the combined 2-D kernel (for torch conv2d)."""

    sigma: float = 0.0
    motion: tuple[float, float] = (0.0, 0.0)
    exposure: float = 0.0

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ValueError(f"sigma: expected >= 0, got {self.sigma}")

    @property
    def line(self) -> np.ndarray | None:
        return line_kernel(self.motion, self.exposure)

    @property
    def radius(self) -> int:
        line = self.line
        return int(np.ceil(3 * self.sigma)) + (0 if line is None else line.shape[0] // 2)

    def is_identity(self) -> bool:
        return self.sigma < 0.05 and self.line is None

    def apply(self, img: np.ndarray, border: int | None = None) -> np.ndarray:
        import cv2

        border = cv2.BORDER_REPLICATE if border is None else border
        line = self.line
        out = img if line is None else cv2.filter2D(img, -1, line, borderType=border)
        if self.sigma >= 0.05:
            out = cv2.GaussianBlur(out, (0, 0), self.sigma, borderType=border)
        return out

    def kernel(self) -> np.ndarray:
        """The combined kernel, (2r+1)^2 with r = `radius` (at least 1x1)."""
        import cv2

        r = max(0, self.radius)
        k = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
        line = self.line
        if line is None:
            k[r, r] = 1.0
        else:
            h = line.shape[0] // 2
            k[r - h:r + h + 1, r - h:r + h + 1] = line
        if self.sigma >= 0.05:
            g = cv2.getGaussianKernel(2 * r + 1, self.sigma).astype(np.float32)
            k = cv2.sepFilter2D(k, -1, g, g, borderType=cv2.BORDER_CONSTANT)
        return k / k.sum()


def fit_blur(current: np.ndarray, reference: np.ndarray, weights: np.ndarray, sigmas=(0.0, 0.7, 1.2, 1.8, 2.5, 3.5),
             motion=(0.0, 0.0), exposures=(0.0, 0.5, 1.0), trim_fraction: float = 0.2, near=None):
    """How blurred `current` is relative to `reference` (the same surface, warped into the same
    pixels): the (sigma, exposure) whose blur of the reference best explains the current image.
    Both are (h,w) float32 grey; `weights` (h,w) in [0,1] marks surface pixels to use (not occluded).
    Intensities are normalised (mean/std) first, so lighting changes do not count; the worst
    `trim_fraction` of residuals is ignored (occluders the mask missed, glints). Candidates with
    exposure > 0 are tried only when the motion is over 1 px. With `near` = a previous
    (sigma, exposure), only its grid neighbours are tried (5 candidates instead of the whole
    grid: the blur changes smoothly from frame to frame). Returns (sigma, exposure, error) or None
    when too few pixels are usable."""
    sel = weights > 0.5
    if sel.sum() < 64:
        return None
    cur = current[sel]
    cur = (cur - cur.mean()) / max(1e-3, float(cur.std()))
    keep = int(len(cur) * (1 - trim_fraction))
    exposures = tuple(exposures) if float(np.hypot(*motion)) > 1.0 else (0.0,)
    sigmas = tuple(sigmas)
    if near is None:
        grid = [(i, j) for j in range(len(exposures)) for i in range(len(sigmas))]
    else:
        i0 = int(np.argmin(np.abs(np.asarray(sigmas) - near[0])))
        j0 = int(np.argmin(np.abs(np.asarray(exposures) - near[1])))
        grid = [(i, j) for i, j in ((i0, j0), (i0 - 1, j0), (i0 + 1, j0), (i0, j0 - 1), (i0, j0 + 1))
                if 0 <= i < len(sigmas) and 0 <= j < len(exposures)]
    best = None
    for i, j in grid:
        ref = Blur(float(sigmas[i]), tuple(motion), float(exposures[j])).apply(reference)[sel]
        ref = (ref - ref.mean()) / max(1e-3, float(ref.std()))
        r = (cur - ref) ** 2
        if trim_fraction > 0:
            r = np.partition(r, keep)[:keep]
        err = float(r.mean())
        if best is None or err < best[2]:
            best = (float(sigmas[i]), float(exposures[j]), err)
    return best
