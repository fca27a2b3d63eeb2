"""The occluder matte: how much of each pixel belongs to whatever stands in front of the surface,
refined from a coarse foreground mask with the frame itself as the guide.

A background model's mask is blocky (it runs at a fraction of the resolution) and sits a pixel or
two off the occluder's outline (blurred, compressed edges pass for foreground), so a matte made by
blurring it leaves a rim of the old surface, or of the ad, around heads. The guided filter (He,
Sun and Tang, 2013) fits in every (2r+1)^2 window the mask as a linear function of the frame's
brightness, so the matte's edge moves to where the frame's edge is; `contrast` steepens the
filter's ramp back to the width of a real edge.

Convention: the guide is BGR uint8, (h,w,3) numpy or (3,h,w) torch; the mask (h,w) is nonzero (or
> 0.5) in front; the matte (h,w) is float32 in [0,1], 1 = occluder. `radius` in pixels; `eps` is
the regularisation in (brightness / 255)^2 units: an edge weaker than about sqrt(eps) * 255 grey
levels is not followed. Borders are replicated. A pixel farther than 2 * radius from the mask's
edge keeps the mask's value exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GREY = (0.114, 0.587, 0.299)  # B, G, R weights of cv2.COLOR_BGR2GRAY


@dataclass(frozen=True)
class GuidedMatte:
    """Parameters of the refinement (module docstring). `subsample` 2 fits the linear models at half
    resolution and applies them at full resolution (He and Sun's fast guided filter: a quarter of
    the work, the same edges)."""

    radius: int = 4
    eps: float = 1e-3
    contrast: float = 4.0
    subsample: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.radius <= 64:
            raise ValueError(f"radius: expected 1 <= radius <= 64, got {self.radius}")
        if not self.eps > 0:
            raise ValueError(f"eps: expected > 0, got {self.eps}")
        if not self.contrast >= 1:
            raise ValueError(f"contrast: expected >= 1, got {self.contrast}")
        if self.subsample not in (1, 2):
            raise ValueError(f"subsample: expected 1 or 2, got {self.subsample}")

    @property
    def low_radius(self) -> int:
        """The window radius at the subsampled resolution."""
        return max(1, round(self.radius / self.subsample))

    @property
    def reach(self) -> int:
        """How far (px) the matte can differ from the mask, and the margin the filter reads."""
        return self.subsample * (2 * self.low_radius + 2)


def _fit(g, p, eps: float, box):
    """Per-window linear models p ~ a * g + b, averaged over the windows (numpy or torch)."""
    mean_g, mean_p = box(g), box(p)
    var = box(g * g) - mean_g * mean_g
    a = (box(g * p) - mean_g * mean_p) / (var + eps)
    return box(a), box(mean_p - a * mean_g)


def guided_matte_cv2(guide: np.ndarray, mask: np.ndarray, matte: GuidedMatte) -> np.ndarray:
    """OpenCV guided filter of a mask. Convention: module docstring; (h,w) float32 in [0,1].
    Only the box around the mask's set pixels (plus `reach`) is filtered: the rest stays 0."""
    import cv2

    if guide.shape[:2] != mask.shape[:2] or guide.ndim != 3:
        raise ValueError(f"guide/mask: expected (h,w,3) and (h,w), got {guide.shape} and {mask.shape}")
    out = np.zeros(mask.shape[:2], np.float32)
    m8 = mask if mask.dtype == np.uint8 else (mask != 0).astype(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(np.ascontiguousarray(m8))  # of the nonzero pixels
    if bw == 0 or bh == 0:
        return out
    pad, s = matte.reach, matte.subsample
    h, w = out.shape
    x0, y0 = max(0, bx - pad) // s * s, max(0, by - pad) // s * s  # on the subsampling grid of the region
    x1, y1 = min(w, bx + bw + pad), min(h, by + bh + pad)
    x1, y1 = min(w, x1 + (x1 - x0) % s), min(h, y1 + (y1 - y0) % s)  # even sizes where the region allows
    g0 = cv2.cvtColor(np.ascontiguousarray(guide[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY).astype(np.float32)
    g0 *= np.float32(1 / 255)
    p0 = (m8[y0:y1, x0:x1] != 0).astype(np.float32)
    k = (2 * matte.low_radius + 1,) * 2

    def box(x):
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REPLICATE)

    if s == 1:
        a, b = _fit(g0, p0, np.float32(matte.eps), box)
    else:
        ch, cw = g0.shape
        ex, ey = cw % 2, ch % 2  # to an even size, replicating the last column/row
        g2, p2 = (cv2.copyMakeBorder(x, 0, ey, 0, ex, cv2.BORDER_REPLICATE) for x in (g0, p0)) if ex or ey else (g0, p0)
        half = (g2.shape[1] // 2, g2.shape[0] // 2)
        a, b = _fit(cv2.resize(g2, half, interpolation=cv2.INTER_AREA), cv2.resize(p2, half, interpolation=cv2.INTER_AREA),
                    np.float32(matte.eps), box)
        full = (g2.shape[1], g2.shape[0])
        a = cv2.resize(a, full, interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, full, interpolation=cv2.INTER_LINEAR)
        if ex or ey:
            a, b = a[:ch, :cw], b[:ch, :cw]
    q = np.multiply(a, g0, out=a if a.flags.c_contiguous else None)
    q += b
    q *= np.float32(matte.contrast)
    q += np.float32(0.5 - 0.5 * matte.contrast)
    np.clip(q, np.float32(0), np.float32(1), out=out[y0:y1, x0:x1])  # float32 bounds: no float64 detour
    return out


def guided_matte_torch(guide, mask, matte: GuidedMatte):
    """torch guided filter of a mask (the whole region, no cropping: no host sync). Convention:
    module docstring; guide (3,h,w) uint8, mask (h,w) bool/uint8/float; returns (h,w) float32."""
    import torch
    import torch.nn.functional as F

    if guide.ndim != 3 or tuple(guide.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(f"guide/mask: expected (3,h,w) and (h,w), got {tuple(guide.shape)} and {tuple(mask.shape)}")
    w8 = torch.tensor(_GREY, dtype=torch.float32, device=guide.device).view(3, 1, 1)
    # as cv2: grey rounded to uint8 first
    g0 = ((guide.to(torch.float32) * w8).sum(0) + 0.5).floor().clamp(0, 255)[None, None] / 255.0
    p0 = ((mask > 0.5) if mask.dtype.is_floating_point else (mask != 0)).to(torch.float32)[None, None]
    r = matte.low_radius

    def box(x):
        return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)

    if matte.subsample == 1:
        a, b = _fit(g0, p0, matte.eps, box)
    else:
        ch, cw = g0.shape[-2:]
        g2, p2 = (F.pad(x, (0, cw % 2, 0, ch % 2), mode="replicate") for x in (g0, p0))
        a, b = _fit(F.avg_pool2d(g2, 2), F.avg_pool2d(p2, 2), matte.eps, box)
        ab = F.interpolate(torch.cat([a, b], 1), scale_factor=2, mode="bilinear", align_corners=False)
        a, b = ab[:, 0:1, :ch, :cw], ab[:, 1:2, :ch, :cw]
    q = a * g0 + b
    return ((q - 0.5) * matte.contrast + 0.5).clamp(0, 1)[0, 0]
