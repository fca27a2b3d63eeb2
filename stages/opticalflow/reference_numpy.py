"""A straightforward numpy (float64) implementation of the same equations as the torch kernels,
written to be read beside the papers: the reference the torch code is tested against (to 1e-4)
and benchmarked against. Loops run over iterations, warps and levels, never over pixels.

Convention: images (H,W) float grey levels; flow (2,H,W) float64 pixels, channel 0 = dx;
borders replicated; warping samples like grid_sample(align_corners=True, padding_mode='border') (bilinear) or
Catmull-Rom with clamped taps (bicubic).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

CENTRAL5 = np.array([1, -8, 0, 8, -1], np.float64) / 12.0


def hs_derivatives(im1: np.ndarray, im2: np.ndarray):
    """Horn & Schunck 1981, section 7: first differences averaged over the 2x2x2 cube."""
    p1 = np.pad(np.asarray(im1, np.float64), ((0, 1), (0, 1)), mode="edge")
    p2 = np.pad(np.asarray(im2, np.float64), ((0, 1), (0, 1)), mode="edge")
    e = lambda p, di, dj: p[di:di + p.shape[0] - 1, dj:dj + p.shape[1] - 1]  # noqa: E731  E[i+di, j+dj]
    ex = (e(p1, 0, 1) - e(p1, 0, 0) + e(p1, 1, 1) - e(p1, 1, 0) + e(p2, 0, 1) - e(p2, 0, 0) + e(p2, 1, 1) - e(p2, 1, 0)) / 4
    ey = (e(p1, 1, 0) - e(p1, 0, 0) + e(p1, 1, 1) - e(p1, 0, 1) + e(p2, 1, 0) - e(p2, 0, 0) + e(p2, 1, 1) - e(p2, 0, 1)) / 4
    et = (e(p2, 0, 0) - e(p1, 0, 0) + e(p2, 0, 1) - e(p1, 0, 1) + e(p2, 1, 0) - e(p1, 1, 0) + e(p2, 1, 1) - e(p1, 1, 1)) / 4
    return ex, ey, et


def hs_average(u: np.ndarray) -> np.ndarray:
    """Section 8: u_bar = 1/6 (edge neighbours) + 1/12 (corner neighbours), replicated border."""
    p = np.pad(u, 1, mode="edge")
    edges = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    corners = p[:-2, :-2] + p[:-2, 2:] + p[2:, :-2] + p[2:, 2:]
    return edges / 6.0 + corners / 12.0


def hs_iterate(ex, ey, et, alpha: float, iterations: int, u=None, v=None):
    """Section 12: the Jacobi iteration, exactly as the paper writes it."""
    u = np.zeros(ex.shape) if u is None else np.array(u, np.float64)
    v = np.zeros(ex.shape) if v is None else np.array(v, np.float64)
    for _ in range(iterations):
        u_bar, v_bar = hs_average(u), hs_average(v)
        t = (ex * u_bar + ey * v_bar + et) / (alpha ** 2 + ex ** 2 + ey ** 2)
        u = u_bar - ex * t
        v = v_bar - ey * t
    return np.stack([u, v])


def horn_schunck_classic(im1, im2, alpha: float = 15.0, iterations: int = 200, flow0=None):
    """The 1981 method, single scale. Returns (2,H,W)."""
    ex, ey, et = hs_derivatives(im1, im2)
    u0, v0 = (None, None) if flow0 is None else (flow0[0], flow0[1])
    return hs_iterate(ex, ey, et, alpha, iterations, u0, v0)


# ------------------------------------------------------------------ pyramid and warping
def gaussian_taps(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(3.0 * sigma)))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return w / w.sum()


def blur(im: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return np.asarray(im, np.float64)
    taps = gaussian_taps(sigma)
    out = ndimage.correlate1d(np.asarray(im, np.float64), taps, axis=1, mode="nearest")
    return ndimage.correlate1d(out, taps, axis=0, mode="nearest")


def resize(im: np.ndarray, size) -> np.ndarray:
    """Bilinear, align_corners=False (as torch's interpolate): (H,W) -> size (h,w)."""
    h_in, w_in = im.shape
    h, w = size
    if (h, w) == (h_in, w_in):
        return im

    def axis(n_out, n_in):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, ly = axis(h, h_in)
    x0, x1, lx = axis(w, w_in)
    top = im[y0][:, x0] * (1 - lx) + im[y0][:, x1] * lx
    bottom = im[y1][:, x0] * (1 - lx) + im[y1][:, x1] * lx
    return top * (1 - ly)[:, None] + bottom * ly[:, None]


def level_sizes(h, w, levels, factor, min_size=16):
    sizes = [(h, w)]
    for k in range(1, levels):
        hk, wk = int(round(h * factor ** k)), int(round(w * factor ** k))
        if min(hk, wk) < min_size:
            break
        sizes.append((hk, wk))
    return sizes


def pyramid(im, sizes, factor):
    sigma = 1.0 / math.sqrt(2.0 * factor)
    out = [np.asarray(im, np.float64)]
    for size in sizes[1:]:
        out.append(resize(blur(out[-1], sigma), size))
    return out


def resize_flow(flow, size):
    h0, w0 = flow.shape[1:]
    if (h0, w0) == tuple(size):
        return flow
    return np.stack([resize(flow[0], size) * (size[1] / w0), resize(flow[1], size) * (size[0] / h0)])


def _cubic_weights(t):
    """Catmull-Rom (Keys a = -0.5) weights for taps at offsets -1, 0, 1, 2."""
    return [0.5 * (-t ** 3 + 2 * t ** 2 - t), 0.5 * (3 * t ** 3 - 5 * t ** 2 + 2),
            0.5 * (-3 * t ** 3 + 4 * t ** 2 + t), 0.5 * (t ** 3 - t ** 2)]


def warp(im, flow, mode: str = "bilinear"):
    """out(p) = im(p + flow(p)), like grid_sample(align_corners=True, padding_mode='border');
    returns (warped, inside mask)."""
    h, w = im.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = xx + flow[0], yy + flow[1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    if mode == "bilinear":
        x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        tx, ty = x - x0, y - y0
        out = (im[y0, x0] * (1 - tx) + im[y0, x1] * tx) * (1 - ty) + (im[y1, x0] * (1 - tx) + im[y1, x1] * tx) * ty
        return out, inside
    x, y = np.clip(x, -2, w + 1), np.clip(y, -2, h + 1)
    x0, y0 = np.floor(x), np.floor(y)
    wx, wy = _cubic_weights(x - x0), _cubic_weights(y - y0)
    out = np.zeros_like(x)
    for j in range(4):
        yi = np.clip(y0 - 1 + j, 0, h - 1).astype(int)
        row = sum(wx[i] * im[yi, np.clip(x0 - 1 + i, 0, w - 1).astype(int)] for i in range(4))
        out += wy[j] * row
    return out, inside


def central_derivatives(im1, warped2):
    mean = (im1 + warped2) / 2
    ex = ndimage.correlate1d(mean, CENTRAL5, axis=1, mode="nearest")
    ey = ndimage.correlate1d(mean, CENTRAL5, axis=0, mode="nearest")
    return ex, ey, warped2 - im1


def median_flow(flow, size):
    if size <= 1:
        return flow
    return np.stack([ndimage.median_filter(c, size=size, mode="nearest") for c in flow])


def _coarse_to_fine(im1, im2, levels, factor, presmooth, min_size, flow0, per_level):
    both = [blur(im1, presmooth), blur(im2, presmooth)]
    sizes = level_sizes(*both[0].shape, levels, factor, min_size)
    pyr1, pyr2 = pyramid(both[0], sizes, factor), pyramid(both[1], sizes, factor)
    flow = None
    for level in range(len(sizes) - 1, -1, -1):
        if flow is None:
            flow = resize_flow(flow0, sizes[level]) if flow0 is not None else np.zeros((2, *sizes[level]))
        else:
            flow = resize_flow(flow, sizes[level])
        flow = per_level(pyr1[level], pyr2[level], flow)
    return flow


def horn_schunck(im1, im2, alpha=8.0, iterations=100, warps=3, levels=6, factor=0.5, presmooth=0.5,
                 median=5, derivatives="central", interpolation="bicubic", flow0=None, min_size=16):
    """Coarse-to-fine HS with warping (the torch horn_schunck's algorithm, step for step)."""
    def per_level(a, b, flow):
        for _ in range(warps):
            warped, inside = warp(b, flow, interpolation)
            ex, ey, et = central_derivatives(a, warped) if derivatives == "central" else hs_derivatives(a, warped)
            ex, ey, et = ex * inside, ey * inside, et * inside
            et = et - ex * flow[0] - ey * flow[1]
            flow = median_flow(hs_iterate(ex, ey, et, alpha, iterations, flow[0], flow[1]), median)
        return flow
    return _coarse_to_fine(im1, im2, levels, factor, presmooth, min_size, flow0, per_level)


def lucas_kanade_dense(im1, im2, sigma=4.0, levels=6, factor=0.5, warps=3, reg=1.0, presmooth=0.5,
                       median=5, interpolation="bicubic", flow0=None, min_size=16):
    """Dense pyramidal LK: Gaussian-window structure tensor, closed-form 2x2 solve per pixel."""
    def per_level(a, b, flow):
        for _ in range(warps):
            warped, inside = warp(b, flow, interpolation)
            ex, ey, et = central_derivatives(a, warped)
            ex, ey, et = ex * inside, ey * inside, et * inside
            jxx, jxy, jyy = blur(ex * ex, sigma) + reg, blur(ex * ey, sigma), blur(ey * ey, sigma) + reg
            bx, by = blur(ex * et, sigma), blur(ey * et, sigma)
            det = np.maximum(jxx * jyy - jxy * jxy, 1e-12)
            flow = flow + np.stack([(jxy * by - jyy * bx) / det, (jxy * bx - jxx * by) / det])
            flow = median_flow(flow, median)
        return flow
    return _coarse_to_fine(im1, im2, levels, factor, presmooth, min_size, flow0, per_level)
