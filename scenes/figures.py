"""Human-like figures: head, hair, torso, two-segment arms and legs, shoes; poses per activity.

A figure is drawn into its own small patch, once as a premultiplied colour layer and once as an
alpha (coverage) layer, both anti-aliased with sub-pixel coordinates. The pixels a figure changes
are exactly those with alpha > 0, which is the figure's mask: boxes and visibility in the ground
truth come from that mask, never from an estimate.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ACTIVITIES = ("standing", "walking", "running", "waving", "loitering")
_SHIFT = 4
_ONE = 1 << _SHIFT

_SHIRTS = [(40, 40, 200), (200, 80, 30), (40, 160, 40), (30, 200, 230), (160, 40, 160), (220, 220, 220),
           (60, 60, 60), (0, 120, 240), (200, 160, 60), (90, 40, 120), (20, 90, 140), (180, 180, 40)]
_TROUSERS = [(40, 30, 20), (90, 60, 30), (50, 50, 50), (120, 110, 100), (30, 30, 90), (140, 90, 40), (20, 20, 20)]
_SKIN = [(150, 180, 230), (110, 150, 200), (80, 110, 160), (60, 80, 120), (170, 200, 240)]
_HAIR = [(20, 20, 20), (30, 50, 90), (60, 110, 170), (140, 140, 140), (30, 30, 60)]


@dataclass(frozen=True)
class FigureStyle:
    """Appearance of one figure. Convention: colours BGR uint8 triples; height in metres; build
    scales limb and torso widths (1 = average)."""

    shirt: tuple
    trousers: tuple
    skin: tuple
    hair: tuple
    shoes: tuple
    height_m: float
    build: float
    coat: bool  # a longer upper garment

    @classmethod
    def random(cls, rng: np.random.Generator) -> "FigureStyle":
        def pick(table):
            base = np.asarray(table[int(rng.integers(len(table)))], np.float32)
            return tuple(int(v) for v in np.clip(base * rng.uniform(0.8, 1.2), 0, 255))
        return cls(pick(_SHIRTS), pick(_TROUSERS), pick(_SKIN), pick(_HAIR),
                   tuple(int(v) for v in rng.integers(10, 80, 3)), float(rng.uniform(1.55, 1.95)),
                   float(rng.uniform(0.85, 1.2)), bool(rng.random() < 0.25))


@dataclass(frozen=True)
class Pose:
    """Joint angles in radians from straight down, positive = forward (facing direction).
    legs/arms: ((upper, lower), (upper, lower)) for the near and far limb."""

    legs: tuple
    arms: tuple
    lean: float = 0.0
    wave_arm: tuple | None = None  # (upper, lower) angles of a raised arm (replaces the far arm)


def pose_for(activity: str, phase: float, time_s: float, side: float) -> Pose:
    """The pose of an activity at gait `phase` (cycles) and time; `side` in [0,1] scales the swing
    (1 = walking across the view, 0 = straight towards or away from the camera)."""
    s = 0.3 + 0.7 * side
    a = 2 * np.pi * phase
    if activity in ("walking", "loitering"):
        amp = 0.42 if activity == "walking" else 0.3
        legs = []
        arms = []
        for k in (0.0, np.pi):
            th = amp * s * np.sin(a + k)
            knee = 0.5 * s * max(0.0, np.sin(a + k + 1.2))
            legs.append((th, th - knee))
            arm = -0.8 * amp * s * np.sin(a + k)
            arms.append((arm, arm + 0.25 * s))
        return Pose(tuple(legs), tuple(arms), 0.03 * s)
    if activity == "running":
        legs, arms = [], []
        for k in (0.0, np.pi):
            th = 0.75 * s * np.sin(a + k)
            knee = 1.3 * s * max(0.0, np.sin(a + k + 1.0)) + 0.2 * s
            legs.append((th, th - knee))
            arm = -0.7 * s * np.sin(a + k)
            arms.append((arm, arm + 1.5 * max(s, 0.6)))
        return Pose(tuple(legs), tuple(arms), 0.15 * s)
    sway = 0.03 * np.sin(2 * np.pi * 0.4 * time_s)
    legs = ((0.04, 0.02), (-0.04, -0.02))
    if activity == "waving":
        fore = np.pi - 0.15 + 0.55 * np.sin(2 * np.pi * 2.0 * time_s)
        return Pose(legs, ((0.1, 0.15), (0.1, 0.15)), 0.0, (2.4, fore))
    if activity == "standing":
        return Pose(legs, ((0.08 + sway, 0.12), (-0.06 - sway, 0.0)), 0.0)
    raise ValueError(f"activity: expected one of {ACTIVITIES}, got {activity!r}")


def _limb(origin, angles, lengths, facing):
    """Joint positions of a two-segment limb (local units, y down)."""
    p0 = np.asarray(origin, np.float64)
    pts = [p0]
    for ang, ln in zip(angles, lengths):
        p0 = p0 + ln * np.array([facing * np.sin(ang), np.cos(ang)])
        pts.append(p0)
    return pts


def _primitives(style: FigureStyle, pose: Pose, facing: float):
    """Drawing primitives in units of body height, origin at the foot point, y down.
    Each: ("seg", p, q, half_width, colour) | ("ell", centre, (rx, ry), colour) | ("poly", pts, colour)."""
    b = style.build
    dark = lambda c, k=0.75: tuple(int(v * k) for v in c)  # far limbs are in shade
    hip = np.array([0.0, -0.52])
    lean = np.array([facing * pose.lean * 0.3, 0.0])
    shoulder = np.array([0.0, -0.82]) + lean
    legw, armw = 0.038 * b, 0.027 * b
    prims = []
    arm_far = pose.wave_arm if pose.wave_arm is not None else pose.arms[1]
    # far arm, far leg
    a = _limb(shoulder, arm_far, (0.17, 0.16), facing)
    prims += [("seg", a[0], a[1], armw, dark(style.shirt)), ("seg", a[1], a[2], armw * 0.9, dark(style.skin)),
              ("ell", a[2], (armw * 1.1, armw * 1.1), dark(style.skin))]
    for leg, shade in ((pose.legs[1], 0.7), (pose.legs[0], 1.0)):
        l = _limb(hip, leg, (0.255, 0.245), facing)
        prims += [("seg", l[0], l[1], legw, dark(style.trousers, shade)),
                  ("seg", l[1], l[2], legw * 0.85, dark(style.trousers, shade)),
                  ("seg", l[2], l[2] + np.array([facing * 0.06, 0.0]), 0.022 * b, dark(style.shoes, shade))]
    # torso (trapezoid), coat extends lower
    sw, hw = 0.095 * b, 0.075 * b
    bottom = -0.42 if style.coat else -0.50
    torso = [shoulder + (-sw, -0.01), shoulder + (sw, -0.01), hip + (hw, bottom + 0.52), hip + (-hw, bottom + 0.52)]
    prims.append(("poly", torso, style.shirt))
    prims.append(("seg", shoulder + (0, -0.02), shoulder + (0, -0.06), 0.025 * b, style.skin))  # neck
    head = shoulder + np.array([facing * 0.01, -0.115])
    prims.append(("ell", head, (0.055, 0.066), style.skin))
    prims.append(("ell", head + np.array([-facing * 0.012, -0.02]), (0.056, 0.05), style.hair))
    a = _limb(shoulder, pose.arms[0], (0.17, 0.16), facing)
    prims += [("seg", a[0], a[1], armw, style.shirt), ("seg", a[1], a[2], armw * 0.9, style.skin),
              ("ell", a[2], (armw * 1.1, armw * 1.1), style.skin)]
    return prims


def _seg_poly(p, q, hw):
    d = q - p
    n = np.hypot(*d)
    if n < 1e-9:
        d = np.array([0.0, 1.0]) * hw
    else:
        d = d / n * hw
    perp = np.array([-d[1], d[0]])
    return [p + perp - d * 0.3, q + perp + d * 0.3, q - perp + d * 0.3, p - perp - d * 0.3]


def render_figure(style: FigureStyle, pose: Pose, height_px: float, foot_xy, facing: float):
    """Draw a figure whose foot point is at image position `foot_xy` and whose standing height is
    `height_px` pixels. Returns (colour, alpha, x0, y0): colour (h,w,3) uint8 premultiplied BGR,
    alpha (h,w) uint8 coverage (0 = untouched), and the patch's top-left pixel in the image (may be
    negative or beyond the image: the patch always holds the whole figure)."""
    prims = _primitives(style, pose, 1.0 if facing >= 0 else -1.0)
    polys = []
    for pr in prims:
        if pr[0] == "seg":
            polys.append((_seg_poly(pr[1], pr[2], pr[3]), pr[4], None))
        elif pr[0] == "poly":
            polys.append(([np.asarray(p, np.float64) for p in pr[1]], pr[2], None))
        else:
            polys.append(([pr[1]], pr[3], pr[2]))
    fx, fy = float(foot_xy[0]), float(foot_xy[1])
    allpts = []
    for pts, _, radii in polys:
        for p in pts:
            r = 0.0 if radii is None else max(radii)
            allpts.append((p[0] * height_px + fx - r * height_px, p[1] * height_px + fy - r * height_px))
            allpts.append((p[0] * height_px + fx + r * height_px, p[1] * height_px + fy + r * height_px))
    arr = np.asarray(allpts)
    x0, y0 = int(np.floor(arr[:, 0].min())) - 2, int(np.floor(arr[:, 1].min())) - 2
    x1, y1 = int(np.ceil(arr[:, 0].max())) + 3, int(np.ceil(arr[:, 1].max())) + 3
    w, h = x1 - x0, y1 - y0
    colour = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    ox, oy = fx - x0, fy - y0
    for pts, col, radii in polys:
        if radii is None:
            q = np.round((np.asarray(pts) * height_px + (ox, oy)) * _ONE).astype(np.int32)
            cv2.fillPoly(colour, [q], col, cv2.LINE_AA, _SHIFT)
            cv2.fillPoly(alpha, [q], 255, cv2.LINE_AA, _SHIFT)
        else:
            c = np.round((np.asarray(pts[0]) * height_px + (ox, oy)) * _ONE).astype(np.int32)
            ax = (max(1, int(round(radii[0] * height_px * _ONE))), max(1, int(round(radii[1] * height_px * _ONE))))
            cv2.ellipse(colour, (int(c[0]), int(c[1])), ax, 0, 0, 360, col, -1, cv2.LINE_AA, _SHIFT)
            cv2.ellipse(alpha, (int(c[0]), int(c[1])), ax, 0, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
    return colour, alpha, x0, y0


def composite(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Blend a figure patch into `image` in place (premultiplied 'over'), clipping at the border."""
    H, W = image.shape[:2]
    h, w = alpha.shape
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    px, py = ix0 - x0, iy0 - y0
    a = alpha[py:py + iy1 - iy0, px:px + ix1 - ix0].astype(np.float32)[..., None] * (1.0 / 255.0)
    c = colour[py:py + iy1 - iy0, px:px + ix1 - ix0].astype(np.float32)
    roi = image[iy0:iy1, ix0:ix1]
    # the colour layer was drawn on black with the same anti-aliasing, so it is premultiplied
    roi[:] = np.clip(roi.astype(np.float32) * (1.0 - a) + c, 0, 255).astype(np.uint8)
