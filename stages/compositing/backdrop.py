"""The backdrop behind the ad: a panel image that covers the whole surface, the ad at its place on
it (`fit`, `inset`) over a fill, so that nothing of the old surface shows at the ad's transparent
parts (rounded corners, cut-outs) or in the margins that `contain` and `inset` leave.

Fills: `color` (one colour: given, or the ad's mean), `edge` (every pixel outside the ad takes the
colour of the nearest opaque pixel of the ad, slightly smoothed: the ad looks printed on a larger
sheet of its own border colours), `blur` (the ad stretched over the whole surface and blurred, as
video players fill letterbox bars).

Convention: images are (h,w,4) uint8 BGRA (alpha 255 = opaque, not premultiplied) as `ad.load_ad`
gives; colours are BGR 0..255; the panel is opaque. `lo`, `hi` are the ad's box in the surface's
unit square (geometry.ad_box).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILLS = ("none", "color", "edge", "blur")


@dataclass(frozen=True)
class PanelLayout:
    """A panel_w x panel_h panel with the ad, resized to ad_w x ad_h, at integer offset (x, y)."""

    panel_w: int
    panel_h: int
    ad_w: int
    ad_h: int
    x: int
    y: int

    def is_ad_alone(self, width: int, height: int) -> bool:
        """True when the panel is the ad itself (stretch, no inset): no margin to fill."""
        return (self.panel_w, self.panel_h, self.x, self.y) == (width, height, 0, 0) and (self.ad_w, self.ad_h) == (width, height)


def panel_layout(ad_w: int, ad_h: int, lo, hi, max_side: int = 4096) -> PanelLayout:
    """The panel for a ad_w x ad_h ad occupying [lo, hi] of the surface: the ad keeps its pixel size
    (shrunk only so that the panel's longer side stays <= max_side) and the panel grows around it.
    Raises ValueError on an empty box."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    span = hi - lo
    if not (np.all(span > 0) and np.all(lo >= 0) and np.all(hi <= 1)):
        raise ValueError(f"box: expected 0 <= lo < hi <= 1, got lo={lo.tolist()} hi={hi.tolist()}")
    if ad_w < 1 or ad_h < 1 or max_side < 2:
        raise ValueError(f"sizes: expected ad >= 1x1 and max_side >= 2, got {ad_w}x{ad_h}, {max_side}")
    scale = min(1.0, max_side / max(ad_w / span[0], ad_h / span[1]))
    aw, ah = max(1, round(ad_w * scale)), max(1, round(ad_h * scale))
    pw, ph = max(aw, min(max_side, round(aw / span[0]))), max(ah, min(max_side, round(ah / span[1])))
    margin = np.array([lo[0] + 1 - hi[0], lo[1] + 1 - hi[1]])
    x = round((pw - aw) * lo[0] / margin[0]) if margin[0] > 0 else 0
    y = round((ph - ah) * lo[1] / margin[1]) if margin[1] > 0 else 0
    return PanelLayout(int(pw), int(ph), int(aw), int(ah), int(min(max(x, 0), pw - aw)), int(min(max(y, 0), ph - ah)))


def mean_color(bgra: np.ndarray) -> np.ndarray:
    """Alpha-weighted mean BGR colour of an ad, (3,) float32 0..255 (black when fully transparent)."""
    a = bgra[..., 3].astype(np.float32)
    total = float(a.sum())
    if total <= 0:
        return np.zeros(3, np.float32)
    return (bgra[..., :3].astype(np.float32) * a[..., None]).reshape(-1, 3).sum(0) / np.float32(total)


def push_pull(premul: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Fill every pixel from the nearby opaque ones: area-averaged halvings (pull) of premultiplied
    colour and alpha, then from the coarsest level up, each level's own colour over the enlarged
    coarser fill (push). Convention: premul (h,w,3) float32 premultiplied, alpha (h,w) float32 in
    [0,1]; returns (h,w,3) float32 colour (un-premultiplied; equal to premul where alpha is 1)."""
    import cv2

    levels = [(premul, alpha)]
    c, a = premul, alpha
    while max(c.shape[:2]) > 1:
        h, w = c.shape[:2]
        size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
        c, a = cv2.resize(c, size, interpolation=cv2.INTER_AREA), cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        levels.append((c.reshape(size[1], size[0], 3), a.reshape(size[1], size[0])))
    c, a = levels[-1]
    fill = c / np.maximum(a, 1e-6)[..., None]
    for c, a in reversed(levels[:-1]):
        h, w = a.shape
        up = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 3)
        fill = c + (1.0 - a)[..., None] * up
    return fill


def extend_nearest(premul: np.ndarray, alpha: np.ndarray, smooth: float = 1.5) -> np.ndarray:
    """Every pixel that is not opaque takes the colour of the nearest opaque one (alpha >= 254/255;
    the nearest any pixel with alpha, or black, when none is), then the extension is smoothed by a
    Gaussian of `smooth` px. Convention: premul (h,w,3) float32 premultiplied, alpha (h,w) float32
    in [0,1]; returns (h,w,3) float32 colour (un-premultiplied at the opaque pixels)."""
    import cv2

    src = alpha >= 254 / 255
    if not src.any():
        src = alpha > 0
        if not src.any():
            return np.zeros(premul.shape, np.float32)
    colour = premul / np.maximum(alpha, 1e-6)[..., None]
    _, labels = cv2.distanceTransformWithLabels((~src).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros((int(labels.max()) + 1, 3), np.float32)
    lut[labels[src]] = colour[src]
    out = lut[labels]
    if smooth > 0:
        soft = cv2.GaussianBlur(out, (0, 0), smooth, borderType=cv2.BORDER_REPLICATE)
        out = np.where(src[..., None], out, soft)
    return out


def make_panel(bgra: np.ndarray, layout: PanelLayout, fill: str, color=None) -> np.ndarray:
    """The opaque panel: the ad at its place over the fill (`color`, `edge` or `blur`, see the
    module docstring; `color` uses `color` BGR or, when None, the ad's mean colour).
    Convention: module docstring; returns (panel_h, panel_w, 4) uint8 BGRA with alpha 255."""
    import cv2

    if fill not in FILLS[1:]:
        raise ValueError(f"fill: expected one of {', '.join(FILLS[1:])}, got {fill!r}")
    if bgra.ndim != 3 or bgra.shape[2] != 4 or bgra.dtype != np.uint8:
        raise ValueError(f"ad: expected (h,w,4) uint8 BGRA, got {bgra.shape} {bgra.dtype}")
    lay = layout
    ad = bgra if bgra.shape[:2] == (lay.ad_h, lay.ad_w) else \
        cv2.resize(bgra, (lay.ad_w, lay.ad_h), interpolation=cv2.INTER_AREA)
    a = ad[..., 3].astype(np.float32) / 255.0
    premul = ad[..., :3].astype(np.float32) * a[..., None]
    shape = (lay.panel_h, lay.panel_w)
    if fill == "color":
        rgb = mean_color(ad) if color is None else np.asarray(color, np.float32).reshape(3)
        back = np.broadcast_to(np.clip(rgb, 0, 255), (*shape, 3)).astype(np.float32)
    elif fill == "edge":
        canvas_c, canvas_a = np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32)
        canvas_c[lay.y:lay.y + lay.ad_h, lay.x:lay.x + lay.ad_w] = premul
        canvas_a[lay.y:lay.y + lay.ad_h, lay.x:lay.x + lay.ad_w] = a
        back = extend_nearest(canvas_c, canvas_a)
    else:  # blur: the ad stretched over the panel, blurred with the alpha as weight
        size = (lay.panel_w, lay.panel_h)
        sc = cv2.resize(premul, size, interpolation=cv2.INTER_LINEAR).reshape(*shape, 3)
        sa = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR).reshape(shape)
        sigma = max(2.0, 0.06 * min(shape))
        back = push_pull(cv2.GaussianBlur(sc, (0, 0), sigma, borderType=cv2.BORDER_REFLECT),
                         cv2.GaussianBlur(sa, (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
    out = np.array(back, np.float32)  # writable copy
    region = out[lay.y:lay.y + lay.ad_h, lay.x:lay.x + lay.ad_w]
    region *= (1.0 - a)[..., None]
    region += premul
    panel = np.empty((*shape, 4), np.uint8)
    panel[..., :3] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    panel[..., 3] = 255
    return panel
