"""Analytic test images for the optical-flow tests: a sum of sinusoids (smooth, textured in every
direction) sampled exactly at moved coordinates, so the true flow is known to float precision."""
from __future__ import annotations

import numpy as np


def pattern(x: np.ndarray, y: np.ndarray, seed: int = 0, waves: int = 12) -> np.ndarray:
    """Grey levels around 128 (about 40..216) at float coordinates (x, y)."""
    rng = np.random.default_rng(seed)
    out = np.full(np.shape(x), 128.0)
    for _ in range(waves):
        f, th, ph = rng.uniform(0.05, 0.25), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        out += 12 * np.sin(f * (np.cos(th) * x + np.sin(th) * y) + ph)
    return out


def grid(h: int, w: int):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return xs, ys


def translated_pair(h: int, w: int, dx: float, dy: float, seed: int = 0):
    """(im1, im2) float64 with im2(p) = im1(p - d): every pixel moves by (dx, dy)."""
    xs, ys = grid(h, w)
    return pattern(xs, ys, seed), pattern(xs - dx, ys - dy, seed)


def rotated_pair(h: int, w: int, degrees: float, seed: int = 0):
    """(im1, im2, flow (H,W,2)): image rotated about its centre; flow(p) = R (p - c) + c - p."""
    xs, ys = grid(h, w)
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    p = np.stack([xs - c[0], ys - c[1]], -1)
    back = p @ rot                       # R^-1 (p - c) for row vectors
    im2 = pattern(back[..., 0] + c[0], back[..., 1] + c[1], seed)
    return pattern(xs, ys, seed), im2, p @ rot.T - p


def as_tensor(image: np.ndarray, device: str = "cpu"):
    import torch

    return torch.as_tensor(np.asarray(image, np.float32), device=device)[None, None]
