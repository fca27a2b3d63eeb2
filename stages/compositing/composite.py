"""Warp, blur, occlude and blend the ad into the frame: an OpenCV implementation (host) and a
torch one (grid_sample; runs where the image tensor lives). Both touch only the region of interest.

Convention: frames are (H,W,3) uint8 BGR numpy or (3,H,W) uint8 torch; the prepared ad is
premultiplied BGRA, (h,w,4) uint8 numpy (OpenCV works in uint8 throughout: half the memory
traffic of float) or (4,h,w) float32 torch in [0,1]; `frame_from_ad` maps ad pixels
to frame pixels (centres at integers); `roi` = (x0, y0, x1, y1), exclusive ends; the occluder is the
foreground mask (H,W) (nonzero = in front of the surface); `matte` (a matte.GuidedMatte) refines
its edges with the frame as the guide, else `feather` is the sigma in pixels of the blur that
softens them. Both return (new frame, coverage) where coverage (roi_h,
roi_w) is the ad's final opacity over the ROI (alpha x visibility x opacity): uint8 0..255 from
OpenCV, float32 0..1 from torch;
`blur` is a blur.Blur (or None) applied to the warped ad in frame pixels.
"""
from __future__ import annotations

import numpy as np

from .color import lab_to_bgr
from .matte import GuidedMatte, guided_matte_cv2, guided_matte_torch


class AdPyramid:
    """The ad at halving resolutions (area-averaged) so that a warp never minifies by more than 2x
    (no aliasing), with each level's Lab image for the colour transfer. Convention: built from
    (h,w,4) uint8 BGRA; `stats` is the alpha-weighted (mean, std) in Lab of the full ad, or the
    given one (a panel with a backdrop keeps the statistics of the ad it carries)."""

    def __init__(self, bgra: np.ndarray, min_side: int = 8, stats=None) -> None:
        import cv2

        from .color import weighted_stats

        if bgra.ndim != 3 or bgra.shape[2] != 4 or bgra.dtype != np.uint8:
            raise ValueError(f"ad: expected (h,w,4) uint8 BGRA, got {bgra.shape} {bgra.dtype}")
        self.width, self.height = int(bgra.shape[1]), int(bgra.shape[0])
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []  # (lab (h,w,3) float32, alpha (h,w) float32)
        img = bgra
        while True:
            f = img.astype(np.float32) / 255.0
            self.levels.append((cv2.cvtColor(np.ascontiguousarray(f[..., :3]), cv2.COLOR_BGR2Lab), np.ascontiguousarray(f[..., 3])))
            h, w = img.shape[:2]
            if min(h, w) // 2 < min_side:
                break
            img = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        self._a8: dict[int, np.ndarray] = {}
        lab0, a0 = self.levels[0]
        self.stats = stats if stats is not None else weighted_stats(lab0.reshape(-1, 3), a0.reshape(-1))
        self.stats = self.stats or (np.zeros(3), np.ones(3))

    def level_for(self, magnification: float) -> int:
        """The smallest level still at least as large as the ad appears on screen."""
        k = 0
        while k + 1 < len(self.levels) and 0.5 ** (k + 1) >= magnification:
            k += 1
        return k

    def colored(self, level: int, gain=None, offset=None) -> np.ndarray:
        """Premultiplied BGRA uint8 (h,w,4) of a level after lab' = lab * gain + offset."""
        import cv2

        lab, alpha = self.levels[level]
        if gain is not None:
            m = np.zeros((3, 4), np.float32)
            m[:, :3] = np.diag(np.asarray(gain, np.float32))
            m[:, 3] = np.asarray(offset, np.float32)
            lab = cv2.transform(lab, m)
        bgr = cv2.convertScaleAbs(cv2.cvtColor(lab, cv2.COLOR_Lab2BGR), alpha=255.0)
        a8 = self._alpha_u8(level)
        return cv2.merge([*cv2.split(cv2.multiply(bgr, cv2.merge([a8, a8, a8]), scale=1 / 255.0)), a8])

    def _alpha_u8(self, level: int) -> np.ndarray:
        if level not in self._a8:
            self._a8[level] = np.clip(self.levels[level][1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return self._a8[level]

    def colored_torch(self, level: int, device, gain=None, offset=None, cache: dict | None = None):
        """Like `colored`, as a (4,h,w) torch tensor on `device` (the Lab level is uploaded once)."""
        import torch

        key = (level, str(device))
        if cache is not None and key in cache:
            lab, alpha = cache[key]
        else:
            lab_np, a_np = self.levels[level]
            lab = torch.from_numpy(lab_np).permute(2, 0, 1).to(device)
            alpha = torch.from_numpy(a_np).to(device)[None]
            if cache is not None:
                cache[key] = (lab, alpha)
        if gain is not None:
            g = torch.as_tensor(np.asarray(gain, np.float32), device=device).view(3, 1, 1)
            o = torch.as_tensor(np.asarray(offset, np.float32), device=device).view(3, 1, 1)
            lab = lab * g + o
        return torch.cat([lab_to_bgr(lab) * alpha, alpha], 0)


def _occluder_pad(feather: float, matte: GuidedMatte | None) -> int:
    """Margin (px) around the ROI that the occlusion edge treatment reads."""
    if matte is not None:
        return matte.reach
    return int(np.ceil(3 * feather)) if feather > 0 else 0


def _shift(roi) -> np.ndarray:
    return np.array([[1.0, 0, -roi[0]], [0, 1.0, -roi[1]], [0, 0, 1.0]])


def composite_cv2(image: np.ndarray, ad: np.ndarray, frame_from_ad: np.ndarray, roi, blur=None,
                  occluder: np.ndarray | None = None, feather: float = 0.0, opacity: float = 1.0,
                  matte: GuidedMatte | None = None):
    """OpenCV compositing in uint8. Convention: module docstring. The input image is not modified."""
    import cv2


    x0, y0, x1, y1 = roi
    rw, rh = x1 - x0, y1 - y0
    warped = cv2.warpPerspective(ad, _shift(roi) @ frame_from_ad, (rw, rh), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    if blur is not None and not blur.is_identity():
        warped = blur.apply(warped, cv2.BORDER_CONSTANT)
    vis = None
    if occluder is not None:
        pad = _occluder_pad(feather, matte)
        H, W = occluder.shape[:2]
        ex0, ey0, ex1, ey1 = max(0, x0 - pad), max(0, y0 - pad), min(W, x1 + pad), min(H, y1 + pad)
        m = occluder[ey0:ey1, ex0:ex1]
        m = np.where(m != 0, np.uint8(255), np.uint8(0)) if m.dtype != np.uint8 or m.max() not in (0, 255) else m
        if matte is not None and cv2.countNonZero(m):
            occ = guided_matte_cv2(image[ey0:ey1, ex0:ex1], m, matte)
            vis = cv2.convertScaleAbs(occ[y0 - ey0:y0 - ey0 + rh, x0 - ex0:x0 - ex0 + rw], alpha=-255.0, beta=255.0)
        elif matte is None:
            if feather > 0:
                m = cv2.GaussianBlur(m, (0, 0), feather, borderType=cv2.BORDER_REPLICATE)
            vis = cv2.bitwise_not(np.ascontiguousarray(m[y0 - ey0:y0 - ey0 + rh, x0 - ex0:x0 - ex0 + rw]))
    if opacity < 1:
        vis = np.full((rh, rw), 255, np.uint8) if vis is None else vis
        vis = cv2.convertScaleAbs(vis, alpha=float(opacity))
    color, alpha = warped[..., :3], np.ascontiguousarray(warped[..., 3])
    if vis is not None:
        vis3 = cv2.merge([vis, vis, vis])
        color = cv2.multiply(color, vis3, scale=1 / 255.0)
        alpha = cv2.multiply(alpha, vis, scale=1 / 255.0)
    out = image.copy()
    base = out[y0:y1, x0:x1]
    keep = cv2.bitwise_not(alpha)
    cv2.add(cv2.multiply(base, cv2.merge([keep, keep, keep]), scale=1 / 255.0), color, dst=base)
    return out, alpha


def _gauss1d(sigma: float, device):
    import torch

    half = max(1, int(np.ceil(3 * sigma)))
    x = torch.arange(-half, half + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def composite_torch(image, ad, frame_from_ad: np.ndarray, roi, blur=None, occluder=None,
                    feather: float = 0.0, opacity: float = 1.0, matte: GuidedMatte | None = None):
    """torch compositing (grid_sample). Convention: module docstring. The input is not modified."""
    import torch
    import torch.nn.functional as F


    device = image.device
    x0, y0, x1, y1 = roi
    rw, rh = x1 - x0, y1 - y0
    h, w = int(ad.shape[1]), int(ad.shape[2])
    ad_from_roi = torch.as_tensor(np.linalg.inv(_shift(roi) @ frame_from_ad), dtype=torch.float32, device=device)
    ys, xs = torch.meshgrid(torch.arange(rh, device=device, dtype=torch.float32),
                            torch.arange(rw, device=device, dtype=torch.float32), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ ad_from_roi.T
    uv = pts[..., :2] / pts[..., 2:3].clamp_min(1e-9)
    grid = (uv + 0.5) * torch.tensor([2.0 / w, 2.0 / h], device=device) - 1.0
    warped = F.grid_sample(ad[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    if blur is not None and not blur.is_identity():  # as blur.apply: the line, then a separable Gaussian
        line = blur.line
        if line is not None:
            k = torch.as_tensor(line, dtype=torch.float32, device=device)[None, None].expand(4, 1, -1, -1)
            warped = F.conv2d(warped, k, padding=line.shape[0] // 2, groups=4)
        if blur.sigma >= 0.05:
            g = _gauss1d(blur.sigma, device)
            r = g.numel() // 2
            warped = F.conv2d(warped, g.view(1, 1, 1, -1).expand(4, 1, 1, -1), padding=(0, r), groups=4)
            warped = F.conv2d(warped, g.view(1, 1, -1, 1).expand(4, 1, -1, 1), padding=(r, 0), groups=4)
    weight = torch.full((1, 1, rh, rw), float(opacity), device=device)
    if occluder is not None:
        pad = _occluder_pad(feather, matte)
        H, W = occluder.shape[-2:]
        ex0, ey0, ex1, ey1 = max(0, x0 - pad), max(0, y0 - pad), min(W, x1 + pad), min(H, y1 + pad)
        m = (occluder[ey0:ey1, ex0:ex1] != 0).to(torch.float32)[None, None]
        if matte is not None:
            m = guided_matte_torch(image[:, ey0:ey1, ex0:ex1], m[0, 0], matte)[None, None]
        elif feather > 0:
            g = _gauss1d(feather, device)
            r = g.numel() // 2
            m = F.pad(m, (r, r, r, r), mode="replicate")
            m = F.conv2d(F.conv2d(m, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
        weight = (1.0 - m[..., y0 - ey0:y0 - ey0 + rh, x0 - ex0:x0 - ex0 + rw]) * float(opacity)
    coverage = warped[:, 3:4] * weight
    base = image[:, y0:y1, x0:x1].to(torch.float32)[None]
    blended = base * (1.0 - coverage) + warped[:, :3] * weight * 255.0
    out = image.clone()
    out[:, y0:y1, x0:x1] = (blended[0] + 0.5).clamp(0, 255).to(torch.uint8)
    return out, coverage[0, 0]
