"""Synthetic planar sequences with exact ground truth, for the tests and the benchmark.

A textured poster on a textured background, both seen through moving-camera homographies (the
background with its own, as if further away), optionally with an occluder moving in front and a
blank spell. Convention: images BGR uint8 (H,W,3); `frame_from_poster` maps poster pixels
(0..pw-1, 0..ph-1) to frame pixels; corners (T,4,2) clockwise from the poster's top-left; masks
(H,W) uint8 255 where the occluder is.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def textured_image(height: int, width: int, seed: int = 0, blobs: int = 300) -> np.ndarray:
    """A BGR picture with structure at several scales (ellipses, lines, fine noise)."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), rng.integers(60, 190, 3), np.uint8)
    for _ in range(blobs):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.7:
            axes = (int(rng.integers(2, max(3, width // 12))), int(rng.integers(2, max(3, height // 12))))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(img, centre, end, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    noise = rng.normal(0, 12, (height, width, 1))
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.8) + noise, 0, 255).astype(np.uint8)


def camera_path(n: int, size: tuple[int, int], seed: int = 0, amplitude: float = 1.0, shake: float = 0.0,
                loop: bool = False) -> np.ndarray:
    """(n,3,3) homographies frame_from_plane for a plane whose centre is seen at the frame centre:
    a smooth pan, zoom, roll and perspective tilt (scaled by `amplitude`), plus per-frame shake in
    pixels; with `loop` the path returns exactly to its start at the last frame."""
    rng = np.random.default_rng(seed)
    w, h = size
    t = np.linspace(0, 1, n)
    phase = rng.uniform(0, 2 * np.pi, 6)
    f = (lambda k: np.sin(2 * np.pi * t + phase[k]) - np.sin(phase[k])) if loop else \
        (lambda k: np.sin(2 * np.pi * (0.6 + 0.4 * k / 6) * t + phase[k]) - np.sin(phase[k]))
    out = np.empty((n, 3, 3))
    for i in range(n):
        tx, ty = 60 * amplitude * f(0)[i], 40 * amplitude * f(1)[i]
        s = 1.0 + 0.25 * amplitude * f(2)[i]
        a = 0.12 * amplitude * f(3)[i]
        px, py = 3e-4 * amplitude * f(4)[i], 3e-4 * amplitude * f(5)[i]
        if shake > 0 and not (loop and i in (0, n - 1)):
            tx, ty = tx + rng.normal(0, shake), ty + rng.normal(0, shake)
        c, sn = np.cos(a) * s, np.sin(a) * s
        centre = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
        M = np.array([[c, -sn, tx], [sn, c, ty], [px, py, 1.0]])
        out[i] = centre @ M @ np.linalg.inv(centre)
    return out


@dataclass
class PlanarSequence:
    frames: list            # BGR (H,W,3) uint8
    corners: np.ndarray     # (T,4,2) float64, poster corners per frame
    frame_from_ref: np.ndarray  # (T,3,3): frame t from frame 0
    masks: list             # (H,W) uint8 occluder masks (all zero without occluder)
    poster: np.ndarray      # the poster picture (BGR); corners[t] = frame_from_poster of its corner pixels


def make_sequence(n: int = 60, size: tuple[int, int] = (640, 480), seed: int = 0, amplitude: float = 1.0,
                  shake: float = 0.0, loop: bool = False, occluder: bool = False, blank: tuple[int, int] | None = None,
                  noise: float = 2.0) -> PlanarSequence:
    """Render `n` frames of a poster (about a third of the frame) on a wall that moves with parallax;
    `blank=(a, b)` replaces frames a..b-1 by noise (a lost spell)."""
    rng = np.random.default_rng(seed + 1)
    cv2.setRNGSeed(seed + 1)
    w, h = size
    poster = textured_image(int(h * 0.45), int(w * 0.4), seed + 2)
    wall = textured_image(h * 2, w * 2, seed + 3, blobs=600)
    ph, pw = poster.shape[:2]
    place = np.array([[1, 0, (w - pw) / 2], [0, 1, (h - ph) / 2], [0, 0, 1]], np.float64)
    wall_place = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    path = camera_path(n, size, seed, amplitude, shake, loop)
    pc = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float64)
    frames, corners, masks, Hs = [], [], [], []
    occ = textured_image(160, 90, seed + 4, blobs=40)
    for i in range(n):
        H = path[i] @ place
        Hw = np.diag([0.8, 0.8, 1.0]) @ path[i] @ wall_place  # a slower background: parallax
        Hw[:2, 2] += (0.1 * w, 0.1 * h)
        img = cv2.warpPerspective(wall, Hw, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        p = cv2.warpPerspective(poster, H, size, flags=cv2.INTER_LINEAR)
        m = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), H, size, flags=cv2.INTER_LINEAR)
        a = m.astype(np.float32) / 255
        img = cv2.blendLinear(img, p, 1 - a, a)
        mask = np.zeros((h, w), np.uint8)
        if occluder:
            x = int(-90 + (w + 90) * ((i * 7 / n) % 1.0))
            y = int(h * 0.3)
            x0, x1 = max(x, 0), min(x + 90, w)
            if x1 > x0:
                img[y:y + 160, x0:x1] = occ[:, x0 - x:x1 - x]
                mask[y:y + 160, x0:x1] = 255
        if blank and blank[0] <= i < blank[1]:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if noise > 0:
            grain = np.empty(img.shape, np.int16)
            cv2.randn(grain, 0, noise)
            img = cv2.add(img.astype(np.int16), grain).clip(0, 255).astype(np.uint8)
        frames.append(img)
        masks.append(mask)
        corners.append(cv2.perspectiveTransform(pc[None], H)[0])
        Hs.append(H)
    H0inv = np.linalg.inv(Hs[0])
    return PlanarSequence(frames, np.array(corners), np.array([H @ H0inv for H in Hs]), masks, poster)
