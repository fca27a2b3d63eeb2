"""Procedural textures (pavement, walls, bricks, posters), seeded, rendered with numpy/OpenCV.

Convention: every function takes a `numpy.random.Generator` and returns an (H,W,3) uint8 BGR image
(or (H,W) float32 noise in [0,1]); the same generator state gives the same pixels.
"""
from __future__ import annotations

import cv2
import numpy as np


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for (seed, keys...): changing one part of a scene (its length,
    its number of figures) never changes the random draws of another part."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def value_noise(rng: np.random.Generator, h: int, w: int, cells=(4, 16, 64), gains=(0.5, 0.3, 0.2)) -> np.ndarray:
    """Fractal value noise. Convention: (h,w) float32 in [0,1]; `cells` = grid cells along the
    longer side for each octave."""
    out = np.zeros((h, w), np.float32)
    big = max(h, w)
    for c, g in zip(cells, gains):
        gh, gw = max(2, int(round(c * h / big)) + 1), max(2, int(round(c * w / big)) + 1)
        grid = rng.random((gh, gw), dtype=np.float32)
        out += g * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _tint(gray: np.ndarray, bgr) -> np.ndarray:
    """gray (h,w) float in ~[0,1.5] times a BGR colour -> uint8 (h,w,3)."""
    col = np.asarray(bgr, np.float32).reshape(1, 1, 3)
    return np.clip(gray[..., None] * col, 0, 255).astype(np.uint8)


def pavement(rng: np.random.Generator, h: int, w: int, tile: int = 20) -> np.ndarray:
    """Square paving slabs with grout lines, per-slab shade and grain. `tile` = slab size in px."""
    base = np.asarray([150, 155, 160], np.float32) * rng.uniform(0.8, 1.1)
    ny, nx = h // tile + 2, w // tile + 2
    shade = rng.uniform(0.82, 1.12, (ny, nx)).astype(np.float32)
    offs = (np.arange(ny) % 2) * (tile // 2)  # running bond
    yy, xx = np.mgrid[0:h, 0:w]
    rows = yy // tile
    cols = (xx + offs[rows]) // tile
    gray = shade[rows, cols] * (0.8 + 0.4 * value_noise(rng, h, w, (8, 40, 160), (0.3, 0.4, 0.3)))
    grout = ((yy % tile) < 2) | (((xx + offs[rows]) % tile) < 2)
    gray = np.where(grout, gray * 0.55, gray)
    return _tint(gray, base)


def asphalt(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    gray = 0.75 + 0.35 * value_noise(rng, h, w, (6, 60, 250), (0.3, 0.3, 0.4))
    return _tint(gray, np.asarray([88, 90, 92]) * rng.uniform(0.85, 1.15))


def bricks(rng: np.random.Generator, h: int, w: int, bw: int = 24, bh: int = 10) -> np.ndarray:
    """Running-bond brick wall with mortar and per-brick colour variation."""
    hue = np.asarray([60, 80, 150], np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    ny, nx = h // bh + 2, w // bw + 2
    shade = rng.uniform(0.75, 1.2, (ny, nx)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    rows = yy // bh
    shift = (rows % 2) * (bw // 2)
    cols = (xx + shift) // bw
    gray = shade[rows, cols] * (0.85 + 0.3 * value_noise(rng, h, w, (10, 80), (0.5, 0.5)))
    img = _tint(gray, hue)
    mortar = ((yy % bh) < 2) | (((xx + shift) % bw) < 2)
    img[mortar] = (175, 180, 185)
    return img


def plaster(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    colour = rng.uniform(120, 220, 3)
    gray = 0.8 + 0.25 * value_noise(rng, h, w, (3, 20, 120), (0.4, 0.3, 0.3))
    return _tint(gray, colour)


def facade(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A street of building fronts: bricks or plaster, windows, doors, a few posters."""
    img = np.empty((h, w, 3), np.uint8)
    x = 0
    while x < w:
        bw = int(rng.integers(w // 6, w // 3))
        x2 = min(w, x + bw)
        part = bricks(rng, h, x2 - x) if rng.random() < 0.5 else plaster(rng, h, x2 - x)
        top = int(rng.integers(0, max(1, h // 5)))
        part[:top] = (200, 170, 140)  # sky above a lower roof
        win_w, win_h = max(4, (x2 - x) // 7), max(5, h // 7)
        for wy in range(top + h // 10, h - 2 * win_h, int(win_h * 1.8)):
            for wx in range(win_w // 2, x2 - x - win_w, int(win_w * 1.9)):
                lit = rng.random() < 0.3
                colour = (90, 190, 220) if lit else tuple(int(v) for v in rng.uniform(40, 90, 3))
                cv2.rectangle(part, (wx, wy), (wx + win_w, wy + win_h), colour, -1)
                cv2.rectangle(part, (wx, wy), (wx + win_w, wy + win_h), (50, 50, 50), 1)
        if x2 - x > 30:
            dx = int(rng.integers(4, x2 - x - 20))
            cv2.rectangle(part, (dx, h - h // 4), (dx + max(8, win_w), h - 1), (40, 60, 80), -1)
        img[:, x:x2] = part
        x = x2
    return img


def poster(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A busy poster: coloured background, shapes, stripes, text-like blocks, a checker logo.
    Strong corner-rich texture so that feature detectors find many points."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(30, 230, 3)
    noise = value_noise(rng, h, w, (3, 12), (0.6, 0.4))
    img = np.clip(img.astype(np.float32) * (0.7 + 0.6 * noise[..., None]), 0, 255).astype(np.uint8)
    s = min(h, w)
    for _ in range(int(rng.integers(14, 24))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(s // 20, s // 5))
        if kind == 0:
            cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1)
        else:
            pts = (np.asarray([cx, cy]) + rng.integers(-r, r + 1, (3, 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    # text-like lines of small blocks
    for _ in range(int(rng.integers(3, 6))):
        y = int(rng.integers(0, h - s // 12))
        x = int(rng.integers(0, w // 3))
        ch = max(3, s // 24)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        while x < w - ch:
            cw = int(rng.integers(ch // 2, ch + 1))
            if rng.random() < 0.85:
                cv2.rectangle(img, (x, y), (x + cw, y + ch), colour, -1)
            x += cw + max(1, ch // 3)
    # checker logo
    n, c = 6, max(2, s // 30)
    x0, y0 = int(rng.integers(0, max(1, w - n * c))), int(rng.integers(0, max(1, h - n * c)))
    for i in range(n):
        for j in range(n):
            if (i + j) % 2 == 0:
                cv2.rectangle(img, (x0 + j * c, y0 + i * c), (x0 + (j + 1) * c - 1, y0 + (i + 1) * c - 1), (0, 0, 0), -1)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), (255, 255, 255), max(2, s // 60))
    return img


def natural(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A generic richly textured image (for flow): colour noise at several scales plus shapes."""
    layers = [value_noise(rng, h, w, (4, 24, 96, 300), (0.25, 0.3, 0.25, 0.2)) for _ in range(3)]
    img = np.clip(np.stack(layers, -1) * 255, 0, 255).astype(np.uint8)
    s = min(h, w)
    for _ in range(int(rng.integers(40, 70))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(s // 60 + 2, s // 10))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r // 2), colour, -1, cv2.LINE_AA)
    return img
