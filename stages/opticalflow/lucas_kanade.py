"""Lucas-Kanade optical flow in torch: dense (a 2x2 structure tensor per pixel over a Gaussian
window, pyramidal with warping) and sparse (pyramidal, for given points, with a forward-backward
check), plus OpenCV's calcOpticalFlowPyrLK as a second sparse backend and reference.

Lucas & Kanade, "An iterative image registration technique...", IJCAI 1981; Bouguet, "Pyramidal
implementation of the Lucas Kanade feature tracker", 2000 (the sparse tracker's scheme).

Convention: images (B,1,H,W) float32 grey levels (0..255 by default); dense flow (B,2,H,W)
float32 pixels, channel 0 = dx; points (B,N,2) float32 pixels (x, y), origin top-left.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .horn_schunck import central_derivatives
from .pyramid import build_pyramid, check_images, coarse_to_fine, dims, filter_separable, gaussian_blur, \
    level_sizes, warp


def lucas_kanade_dense(image1: torch.Tensor, image2: torch.Tensor, *, sigma: float = 4.0,
                       levels: int = 6, factor: float = 0.5, warps: int = 3, reg: float = 1.0,
                       presmooth: float = 0.5, median: int = 5, interpolation: str = "bicubic",
                       flow0: torch.Tensor | None = None, min_size: int = 16) -> torch.Tensor:
    """Dense pyramidal Lucas-Kanade. At each level and warp: image2 warped by the current flow,
    derivatives of the pair's mean (five-point stencil) and Et = warped - image1, then per pixel
    the Gaussian-weighted normal equations (J + reg I) du = -b solved in closed form and the flow
    updated by du; optional median filter after each warp. reg (grey-level^2 units) keeps du
    small where the window has no texture, so coarse estimates carry into flat regions.
    Convention: (B,1,H,W) float grey levels -> (B,2,H,W) float32 pixels, channel 0 = dx;
    sigma: window std in pixels; flow0: optional full-resolution warm start."""
    check_images("lucas_kanade_dense", image1, image2)
    if sigma <= 0:
        raise ValueError(f"lucas_kanade_dense: sigma must be > 0, got {sigma}")
    if reg < 0:
        raise ValueError(f"lucas_kanade_dense: reg must be >= 0, got {reg}")
    return coarse_to_fine(
        image1, image2, lambda im1, im2, flow: flow + _lk_increment(im1, im2, flow, sigma, reg, interpolation),
        levels=levels, factor=factor, presmooth=presmooth, min_size=min_size, warps=warps, median=median,
        flow0=flow0)


def _lk_increment(im1, im2, flow, sigma, reg, interpolation):
    warped, inside = warp(im2, flow, interpolation)
    ex, ey, et = central_derivatives(im1, warped)
    keep = inside.to(ex.dtype)
    ex, ey, et = ex * keep, ey * keep, et * keep
    moments = gaussian_blur(torch.cat([ex * ex, ex * ey, ey * ey, ex * et, ey * et], 1), sigma)
    jxx, jxy, jyy, bx, by = (moments[:, i:i + 1] for i in range(5))
    jxx, jyy = jxx + reg, jyy + reg
    det = (jxx * jyy - jxy * jxy).clamp_min(1e-12)
    du = (jxy * by - jyy * bx) / det
    dv = (jxy * bx - jxx * by) / det
    return torch.cat([du, dv], 1)


# ---------------------------------------------------------------- sparse, torch
def _sample(image: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of image (B,1,H,W) at pixel positions xy (B,N,K,2) -> (B,N,K); borders
    replicated."""
    h, w = dims(image)[-2:]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=xy.dtype, device=xy.device)
    grid = xy * scale - 1.0
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]


def _track(pyr1, grads, pyr2, points, sizes, offsets, iterations, eps):
    """Bouguet's scheme: coarse to fine, Gauss-Newton on the window's residuals at each level.
    Returns the points in image 2 (B,N,2) and the finest level's min eigenvalue per point (B,N)."""
    h0, w0 = sizes[0]
    guess = torch.zeros_like(points)
    min_eig = None
    for level in range(len(sizes) - 1, -1, -1):
        h, w = sizes[level]
        ratio = torch.tensor([w / w0, h / h0], dtype=points.dtype, device=points.device)
        centre = (points + 0.5) * ratio - 0.5                               # (B,N,2) level pixels
        window = centre[:, :, None, :] + offsets                            # (B,N,K,2)
        tmpl = _sample(pyr1[level], window)
        gx, gy = _sample(grads[level][0], window), _sample(grads[level][1], window)
        gxx, gxy, gyy = (gx * gx).sum(-1), (gx * gy).sum(-1), (gy * gy).sum(-1)
        det = gxx * gyy - gxy * gxy
        safe = det.abs().clamp_min(1e-9) * torch.where(det < 0, -1.0, 1.0)
        d = torch.zeros_like(points)
        for _ in range(iterations):
            diff = _sample(pyr2[level], window + (guess + d)[:, :, None, :]) - tmpl
            bx, by = (gx * diff).sum(-1), (gy * diff).sum(-1)
            step = torch.stack([(gxy * by - gyy * bx) / safe, (gxy * bx - gxx * by) / safe], -1)
            step = torch.where((det.abs() > 1e-9)[..., None], step, torch.zeros_like(step))
            d = d + step
            if float(step.abs().max()) < eps:
                break
        guess = guess + d
        if level == 0:
            k = int(offsets.shape[-2])
            tr, dt = (gxx + gyy) / k, det / (k * k)
            min_eig = tr / 2 - torch.sqrt(torch.clamp(tr * tr / 4 - dt, min=0))
        else:
            h1, w1 = sizes[level - 1]
            guess = guess * torch.tensor([w1 / w, h1 / h], dtype=points.dtype, device=points.device)
    return points + guess, min_eig


def lucas_kanade_sparse(image1: torch.Tensor, image2: torch.Tensor, points: torch.Tensor, *,
                        window: int = 21, levels: int = 3, iterations: int = 30, eps: float = 0.01,
                        min_eigen: float = 1e-2, fb_threshold: float = 1.0):
    """Sparse pyramidal Lucas-Kanade for given points, tracked forward then back; a point is kept
    when it stays in the image, its window has texture (min eigenvalue of the gradient matrix per
    window pixel >= min_eigen, grey-level^2/pixel^2) and the round trip returns within
    fb_threshold pixels. Convention: images (B,1,H,W) float grey levels; points (B,N,2) or (N,2)
    float pixels (x, y) -> (points2 (B,N,2), status (B,N) bool, fb_error (B,N) pixels); the leading
    B is dropped when points were (N,2) and B == 1."""
    check_images("lucas_kanade_sparse", image1, image2)
    if window < 3 or window % 2 == 0:
        raise ValueError(f"lucas_kanade_sparse: window must be odd and >= 3, got {window}")
    squeeze = points.ndim == 2
    pts = points[None] if squeeze else points
    if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[0] != image1.shape[0]:
        raise ValueError(f"lucas_kanade_sparse: points must be (B,N,2) or (N,2), got {tuple(points.shape)}")
    pts = pts.to(device=image1.device, dtype=image1.dtype)
    n_b, _, h, w = dims(image1)
    sizes = level_sizes(h, w, levels, 0.5, min_size=max(window // 2, 8))
    pyr = build_pyramid(torch.cat([image1, image2], 1), sizes, 0.5)
    pyr1, pyr2 = [p[:, 0:1] for p in pyr], [p[:, 1:2] for p in pyr]
    diff = (-0.5, 0.0, 0.5)
    grads1 = [(filter_separable(p, diff, (1.0,)), filter_separable(p, (1.0,), diff)) for p in pyr1]
    grads2 = [(filter_separable(p, diff, (1.0,)), filter_separable(p, (1.0,), diff)) for p in pyr2]
    r = torch.arange(-(window // 2), window // 2 + 1, dtype=pts.dtype, device=pts.device)
    offsets = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)  # (K,2) x, y
    fwd, eig = _track(pyr1, grads1, pyr2, pts, sizes, offsets, iterations, eps)
    back, _ = _track(pyr2, grads2, pyr1, fwd, sizes, offsets, iterations, eps)
    fb = (back - pts).norm(dim=-1)
    inside = (fwd[..., 0] >= 0) & (fwd[..., 0] <= w - 1) & (fwd[..., 1] >= 0) & (fwd[..., 1] <= h - 1)
    status = inside & (eig >= min_eigen) & (fb <= fb_threshold)
    if squeeze and n_b == 1:
        return fwd[0], status[0], fb[0]
    return fwd, status, fb


# ---------------------------------------------------------------- sparse, OpenCV
def lucas_kanade_sparse_opencv(gray1: np.ndarray, gray2: np.ndarray, points: np.ndarray, *,
                               window: int = 21, levels: int = 3, iterations: int = 30,
                               eps: float = 0.01, min_eigen: float = 1e-4, fb_threshold: float = 1.0):
    """The same contract through cv2.calcOpticalFlowPyrLK (forward, then backward from the result).
    Convention: gray1, gray2 (H,W) uint8; points (N,2) float pixels (x, y) -> (points2 (N,2)
    float32, status (N,) bool, fb_error (N,) float32 pixels). min_eigen is OpenCV's
    minEigThreshold (its own normalisation); levels counts all levels (OpenCV's maxLevel + 1)."""
    import cv2

    if gray1.ndim != 2 or gray1.dtype != np.uint8 or gray1.shape != gray2.shape:
        raise ValueError(f"lucas_kanade_sparse_opencv: expected two (H,W) uint8 images of one shape, "
                         f"got {gray1.shape} {gray1.dtype} and {gray2.shape} {gray2.dtype}")
    p0 = np.ascontiguousarray(np.asarray(points, np.float32).reshape(-1, 1, 2))
    if len(p0) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, bool), np.zeros(0, np.float32)
    kw = dict(winSize=(window, window), maxLevel=max(levels - 1, 0), minEigThreshold=min_eigen,
              criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, eps))
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(gray1, gray2, p0, None, **kw)
    pb, st2, _ = cv2.calcOpticalFlowPyrLK(gray2, gray1, p1, None, **kw)
    fb = np.linalg.norm((pb - p0).reshape(-1, 2), axis=1).astype(np.float32)
    status = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= fb_threshold)
    return p1.reshape(-1, 2).astype(np.float32), status, fb


def track_points(image1, image2, points, backend: str = "torch", **kwargs):
    """Sparse LK through either backend. Convention: backend 'torch' takes the tensors of
    lucas_kanade_sparse; 'opencv' takes (H,W) uint8 arrays and (N,2) points (see each function)."""
    if backend == "torch":
        return lucas_kanade_sparse(image1, image2, points, **kwargs)
    if backend == "opencv":
        return lucas_kanade_sparse_opencv(image1, image2, points, **kwargs)
    raise ValueError(f"track_points: backend must be 'torch' or 'opencv', got {backend!r}")
