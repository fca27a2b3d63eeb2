"""Flow visualisation: the Middlebury colour code (Baker et al., IJCV 2011: hue = direction,
saturation = magnitude), arrows on a grid, and `draw_flow`, the annotate stage's 'flow' layer.

Convention: flow (H,W,2) or (2,H,W) float pixels, channel 0 = dx; images BGR uint8 (H,W,3).
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .flo import UNKNOWN, as_hw2

# Hue segments of the Middlebury colour wheel: red-yellow, yellow-green, green-cyan, cyan-blue,
# blue-magenta, magenta-red (their computeColor.m).
_SEGMENTS = (15, 6, 4, 11, 13, 6)


@lru_cache(maxsize=1)
def color_wheel() -> np.ndarray:
    """The 55-entry Middlebury colour wheel. Convention: (55,3) float64 RGB in 0..255."""
    ry, yg, gc, cb, bm, mr = _SEGMENTS
    wheel = np.zeros((sum(_SEGMENTS), 3))
    col = 0
    for n, chan, rising, fixed in ((ry, 1, True, 0), (yg, 0, False, 1), (gc, 2, True, 1),
                                   (cb, 1, False, 2), (bm, 0, True, 2), (mr, 2, False, 0)):
        ramp = np.floor(255 * np.arange(n) / n)
        wheel[col:col + n, fixed] = 255
        wheel[col:col + n, chan] = ramp if rising else 255 - ramp
        col += n
    return wheel


def flow_to_color(flow, max_flow: float | None = None) -> np.ndarray:
    """Middlebury colour code. Magnitudes are divided by max_flow (default: the largest known
    magnitude); beyond it colours darken to 75%; unknown flow (> 1e9 or not finite) is black.
    Convention: (H,W,2) or (2,H,W) pixels -> (H,W,3) uint8 BGR."""
    f = as_hw2(flow).astype(np.float64)
    unknown = ~(np.isfinite(f).all(-1) & (np.abs(f) <= UNKNOWN).all(-1))
    u = np.where(unknown, 0.0, f[..., 0])
    v = np.where(unknown, 0.0, f[..., 1])
    rad = np.sqrt(u * u + v * v)
    if max_flow is None:
        max_flow = float(rad.max()) if rad.size else 0.0
    rad = rad / max(max_flow, 1e-9)
    wheel = color_wheel()
    n = len(wheel)
    fk = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % n
    frac = (fk - k0)[..., None]
    col = ((1 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0
    inner = (rad <= 1)[..., None]
    col = np.where(inner, 1 - rad[..., None] * (1 - col), col * 0.75)
    rgb = np.floor(255 * col * (~unknown)[..., None]).astype(np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1])


def draw_arrows(canvas: np.ndarray, flow, step: int = 16, scale: float = 3.0, color=(0, 255, 0),
                thickness: int = 1, min_length: float = 0.5) -> np.ndarray:
    """Arrows from grid points every `step` pixels, `scale` times the flow there; drawn in place in
    one polyline call. Convention: canvas (H,W,3) uint8 BGR; flow (h,w,2) or (2,h,w) pixels of the
    canvas (a smaller field is read at the matching position; its values are canvas pixels)."""
    f = as_hw2(flow)
    h, w = canvas.shape[:2]
    fh, fw = f.shape[:2]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    fy = np.clip(((ys + 0.5) * fh / h - 0.5).round().astype(int), 0, fh - 1)
    fx = np.clip(((xs + 0.5) * fw / w - 0.5).round().astype(int), 0, fw - 1)
    d = f[fy, fx] * scale
    keep = np.isfinite(d).all(-1) & (np.hypot(d[..., 0], d[..., 1]) >= min_length * scale)
    x0, y0 = xs[keep].astype(np.float32), ys[keep].astype(np.float32)
    x1, y1 = x0 + d[keep][:, 0], y0 + d[keep][:, 1]
    if x0.size == 0:
        return canvas
    ang = np.arctan2(y1 - y0, x1 - x0)
    head = np.clip(np.hypot(x1 - x0, y1 - y0) * 0.35, 2.0, 8.0)
    lines = []
    for side in (0.5, -0.5):  # arrowheads: two short strokes back from the tip
        hx, hy = x1 - head * np.cos(ang + side), y1 - head * np.sin(ang + side)
        lines.append(np.stack([np.stack([x1, y1], -1), np.stack([hx, hy], -1)], 1))
    shafts = np.stack([np.stack([x0, y0], -1), np.stack([x1, y1], -1)], 1)
    polys = np.concatenate([shafts] + lines).round().astype(np.int32)
    cv2.polylines(canvas, list(polys), False, color, thickness, cv2.LINE_AA)
    return canvas


def _host_flow(frame):
    flow = frame.flow
    if flow is None:
        return None
    if hasattr(flow, "detach"):
        flow = flow.detach().float().cpu().numpy()
    return as_hw2(flow)


def draw_flow(canvas: np.ndarray, frame, params: dict) -> None:
    """The annotate stage's 'flow' layer: Middlebury colours blended over the picture and/or
    arrows. Draws nothing when the frame has no flow. Frame.flow may be at a working scale
    (meta['flow_scale']); its values are full-resolution pixels either way.
    Options (params): mode 'color' | 'arrows' | 'both' (default 'color'); alpha (colour weight,
    default 0.6); blend 'magnitude' (default: the weight grows with |flow| / max_flow, so still
    parts keep the picture) or 'uniform' (alpha everywhere, Middlebury's white for no motion);
    max_flow (pixels at full saturation, default: this frame's largest); step
    (arrow spacing, pixels, default 16); arrow_scale (default 3); arrow_color (BGR, default green);
    thickness. Convention: canvas (H,W,3) uint8 BGR, drawn in place."""
    flow = _host_flow(frame)
    if flow is None:
        return
    mode = params.get("mode", "color")
    if mode not in ("color", "arrows", "both"):
        raise ValueError(f"flow layer: mode must be 'color', 'arrows' or 'both', got {mode!r}")
    h, w = canvas.shape[:2]
    if mode in ("color", "both"):
        mag = np.hypot(flow[..., 0], flow[..., 1])
        max_flow = params.get("max_flow")
        max_flow = float(np.nanmax(mag)) if max_flow is None and mag.size else float(max_flow or 0.0)
        colors = flow_to_color(flow, max_flow)
        alpha = float(params.get("alpha", 0.6))
        if params.get("blend", "magnitude") == "magnitude":   # still parts keep the picture
            weight = (np.clip(mag / max(max_flow, 1e-9), 0, 1) * alpha).astype(np.float32)
        else:
            weight = np.full(mag.shape, alpha, np.float32)
        if colors.shape[:2] != (h, w):
            colors = cv2.resize(colors, (w, h), interpolation=cv2.INTER_LINEAR)
            weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        canvas[...] = cv2.blendLinear(colors, canvas, weight, 1.0 - weight)
    if mode in ("arrows", "both"):
        draw_arrows(canvas, flow, int(params.get("step", 16)), float(params.get("arrow_scale", 3.0)),
                    tuple(params.get("arrow_color", (0, 255, 0))), max(1, int(params.get("thickness", 2)) // 2))
