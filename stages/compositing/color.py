"""Colour matching in CIE Lab: torch conversions that follow OpenCV's float formulas (sRGB, D65)
and the mean/std transfer that pulls the ad's statistics towards the surface's.

Convention: BGR images are float in [0,1]; Lab is L in [0,100], a and b roughly in [-127,127];
torch tensors are (...,3,H,W) with channels in B,G,R (or L,a,b) order; numpy arrays are (...,3).
"""
from __future__ import annotations

import numpy as np

_RGB2XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_WHITE = (0.950456, 1.0, 1.088754)
_EPS = 0.008856


def bgr_to_lab(bgr):
    """(...,3,H,W) float BGR in [0,1] -> Lab (torch). Matches cv2.COLOR_BGR2Lab on float32 to ~1e-3."""
    import torch

    rgb = bgr.flip(-3)
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4, rgb / 12.92)
    m = torch.tensor(_RGB2XYZ, dtype=bgr.dtype, device=bgr.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE, dtype=bgr.dtype, device=bgr.device).view(3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    y = xyz[..., 1:2, :, :]
    L = torch.where(y > _EPS, 116.0 * f[..., 1:2, :, :] - 16.0, 903.3 * y)
    a = 500.0 * (f[..., 0:1, :, :] - f[..., 1:2, :, :])
    b = 200.0 * (f[..., 1:2, :, :] - f[..., 2:3, :, :])
    return torch.cat([L, a, b], -3)


def lab_to_bgr(lab):
    """(...,3,H,W) Lab -> float BGR clipped to [0,1] (torch). Inverse of `bgr_to_lab`."""
    import torch

    L, a, b = lab[..., 0:1, :, :], lab[..., 1:2, :, :], lab[..., 2:3, :, :]
    fy = (L + 16.0) / 116.0
    y = torch.where(L > 903.3 * _EPS, fy ** 3, L / 903.3)
    fy = torch.where(L > 903.3 * _EPS, fy, 7.787 * y + 16.0 / 116.0)
    fx, fz = fy + a / 500.0, fy - b / 200.0
    inv = lambda f: torch.where(f ** 3 > _EPS, f ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz = torch.cat([inv(fx), y, inv(fz)], -3) * torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    m = torch.linalg.inv(torch.tensor(_RGB2XYZ, dtype=torch.float64)).to(lab.dtype).to(lab.device)
    lin = torch.einsum("ij,...jhw->...ihw", m, xyz).clamp(0, 1)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0, 1).flip(-3)


def weighted_stats(lab: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel mean and std of (N,3) samples with optional (N,) weights; None if no weight."""
    x = np.asarray(lab, np.float64).reshape(-1, 3)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    total = w.sum()
    if total <= 1e-9:
        return None
    mean = (x * w[:, None]).sum(0) / total
    std = np.sqrt(((x - mean) ** 2 * w[:, None]).sum(0) / total)
    return mean, std


def transfer(ad_stats, region_stats, start_stats=None, strength: float = 0.5,
             max_ratio: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel Lab gain and offset (lab' = lab * gain + offset) for the ad.

    The ad's mean/std move `strength` of the way towards the surface's (`region_stats`, each a
    (mean, std) pair of (3,) arrays). With `start_stats` (the surface when placement began) the
    tone match is taken at the start and every later change of the surface (lighting, exposure)
    is followed in full: mean += region - start, std *= region / start. Std ratios are clipped to
    [1/max_ratio, max_ratio]."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength: expected 0 <= strength <= 1, got {strength}")
    (am, asd), (rm, rsd) = ad_stats, region_stats
    asd, rsd = np.maximum(asd, 1e-3), np.maximum(rsd, 1e-3)
    if start_stats is None:
        mean = am + strength * (rm - am)
        log_ratio = strength * np.log(rsd / asd)
    else:
        sm, ssd = start_stats[0], np.maximum(start_stats[1], 1e-3)
        mean = am + strength * (sm - am) + (rm - sm)
        log_ratio = strength * np.log(ssd / asd) + np.log(rsd / ssd)
    gain = np.exp(np.clip(log_ratio, -np.log(max_ratio), np.log(max_ratio)))
    return gain, mean - am * gain
