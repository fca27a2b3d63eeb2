"""The `billboard` scene: a textured poster on a textured wall, filmed by a moving camera (smooth
pan, zoom, perspective tilt, roll, small shake), with figures walking in front of it.

The wall is a large canvas (pixels); frame t is the canvas seen by a pinhole camera, i.e. the
warp of the canvas by the homography frame_from_canvas[t] = K R^T [e1 e2 -C] (wall plane Z = 0).
Ground truth: the poster's corners in each frame (clockwise from top-left), the homography
frame_from_ref (reference = frame 0), and the figures' pixel mask. Figures walk along the wall
(their foot points move on the canvas) and are drawn upright in the frame, in front of the wall.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import textures
from .figures import FigureStyle, composite, pose_for, render_figure
from .street import degrade

VERSION = "billboard-1"


def _rot(axis: int, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


class BillboardScene:
    """Everything a frame needs, fixed by the seed. Times are normalised s = t / n_frames."""

    def __init__(self, seed: int, size=(640, 360), n_frames: int = 150, fps: int = 30, n_figures: int | None = None):
        w, h = (int(v) for v in size)
        if w < 64 or h < 48:
            raise ValueError(f"size: expected at least 64x48, got {w}x{h}")
        self.size, self.n_frames, self.fps = (w, h), int(n_frames), fps
        rng = textures.stream(seed, 11)
        # canvas: wall with a poster in the middle
        cw, ch = 3 * w, 3 * h
        pw = int(0.75 * w)
        ph = int(pw * rng.uniform(0.6, 0.75))
        wall = textures.bricks(rng, ch, cw, bw=max(12, w // 20), bh=max(5, w // 50)) if rng.random() < 0.5 \
            else textures.plaster(rng, ch, cw)
        self.poster = textures.poster(rng, ph, pw)
        px, py = (cw - pw) // 2, (ch - ph) // 2
        wall[py:py + ph, px:px + pw] = self.poster
        self.canvas = cv2.GaussianBlur(wall, (0, 0), 0.6)  # anti-alias the down-scaling warp
        # poster corners on the canvas: pixel-edge corners of the pasted block (clockwise from TL)
        self.poster_canvas = np.asarray([[px, py], [px + pw, py], [px + pw, py + ph], [px, py + ph]], np.float64) - 0.5
        self.centre = np.asarray([cw / 2.0, ch / 2.0])
        self.f = float(w)
        # camera motion: smooth sinusoids with random phases, plus a small shake
        self.motion = {
            "pan": (rng.uniform(0.12, 0.22) * pw, rng.uniform(0.08, 0.15) * ph, rng.uniform(0, 2 * np.pi, 2)),
            "yaw": (np.deg2rad(rng.uniform(12, 22)), rng.uniform(0, 2 * np.pi)),
            "pitch": (np.deg2rad(rng.uniform(6, 12)), rng.uniform(0, 2 * np.pi)),
            "roll": (np.deg2rad(rng.uniform(1, 4)), rng.uniform(0, 2 * np.pi)),
            "zoom": (rng.uniform(0.58, 0.66), rng.uniform(0.78, 0.88), rng.uniform(0, 2 * np.pi)),
            "shake": (rng.uniform(0, 2 * np.pi, (3, 4)), rng.uniform(2.0, 6.0, (3, 4))),
        }
        # figures walking along the wall below the poster's middle
        n = int(rng.integers(2, 5)) if n_figures is None else int(n_figures)
        self.figures = []
        dur = self.n_frames / fps
        for k in range(n):
            style = FigureStyle.random(rng)
            run = rng.random() < 0.3
            speed = ph * (rng.uniform(0.9, 1.4) if run else rng.uniform(0.35, 0.6))  # canvas px / s
            side = float(rng.choice([-1.0, 1.0]))
            foot_v = py + ph * rng.uniform(0.95, 1.25)
            height = ph * rng.uniform(0.7, 1.0)
            u_mid = px + pw * rng.uniform(0.2, 0.8)
            t_mid = rng.uniform(0.15, 0.85) * dur
            self.figures.append((k + 1, style, "running" if run else "walking", side * speed, u_mid, t_mid,
                                 foot_v, height))

    def frame_from_canvas(self, t: int) -> np.ndarray:
        w, h = self.size
        s = t / max(1, self.n_frames)
        m = self.motion
        ax, ay, ph = m["pan"]
        target = self.centre + np.array([ax * np.sin(2 * np.pi * 0.8 * s + ph[0]), ay * np.sin(2 * np.pi * 0.6 * s + ph[1])])
        phases, freqs = m["shake"]
        sec = t / self.fps
        shake = np.deg2rad(0.12) * np.sum(np.sin(2 * np.pi * freqs * sec + phases), axis=1) / 2.0
        yaw = m["yaw"][0] * np.sin(2 * np.pi * 0.5 * s + m["yaw"][1]) + shake[0]
        pitch = m["pitch"][0] * np.sin(2 * np.pi * 0.7 * s + m["pitch"][1]) + shake[1]
        roll = m["roll"][0] * np.sin(2 * np.pi * 0.4 * s + m["roll"][1]) + shake[2]
        z0, z1, zp = m["zoom"]
        scale = z0 + (z1 - z0) * 0.5 * (1 + np.sin(2 * np.pi * 0.5 * s + zp))
        dist = self.f / scale
        R = _rot(1, yaw) @ _rot(0, pitch) @ _rot(2, roll)  # camera -> world
        target3 = np.array([target[0] - self.centre[0], target[1] - self.centre[1], 0.0])
        C = target3 - dist * R[:, 2]
        K = np.array([[self.f, 0, (w - 1) / 2.0], [0, self.f, (h - 1) / 2.0], [0, 0, 1]])
        plane = np.column_stack([[1, 0, 0], [0, 1, 0], -C])
        to_world = np.array([[1, 0, -self.centre[0]], [0, 1, -self.centre[1]], [0, 0, 1.0]])
        H = K @ R.T @ plane @ to_world
        return H / H[2, 2]

    def render(self, t: int):
        """(image BGR, mask bool (H,W), frame_from_canvas) of frame t, before noise/blur."""
        w, h = self.size
        H = self.frame_from_canvas(t)
        img = cv2.warpPerspective(self.canvas, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((h, w), bool)
        sec = t / self.fps
        for fid, style, act, speed, u_mid, t_mid, foot_v, height in self.figures:
            u = u_mid + speed * (sec - t_mid)
            p = H @ np.array([u, foot_v, 1.0])
            fx, fy = p[:2] / p[2]
            J = _jacobian(H, u, foot_v)
            hpx = height * np.sqrt(abs(np.linalg.det(J)))
            if not (-hpx < fx < w + hpx and -10 < fy < h + hpx):
                continue
            stride = 2.6 if act == "running" else 1.5
            phase = abs(speed * sec) / (height / 1.75 * stride)
            pose = pose_for(act, phase, sec, 1.0)
            colour, alpha, x0, y0 = render_figure(style, pose, hpx, (fx, fy), np.sign(speed))
            composite(img, colour, alpha, x0, y0)
            ix0, iy0 = max(0, x0), max(0, y0)
            ix1, iy1 = min(w, x0 + alpha.shape[1]), min(h, y0 + alpha.shape[0])
            if ix0 < ix1 and iy0 < iy1:
                mask[iy0:iy1, ix0:ix1] |= alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] > 0
        return img, mask, H


def _jacobian(H: np.ndarray, x: float, y: float) -> np.ndarray:
    p = H @ np.array([x, y, 1.0])
    return (H[:2, :2] * p[2] - np.outer(p[:2], H[2, :2])) / p[2] ** 2


def _project(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    q = np.column_stack([pts, np.ones(len(pts))]) @ H.T
    return q[:, :2] / q[:, 2:]


def render_billboard(seed: int = 0, size=(640, 360), n_frames: int = 150, fps: int = 30, noise: float = 0.0,
                     blur: int = 0, n_figures: int | None = None):
    """Yield (image BGR uint8, truth dict) per frame, in memory. truth: corners (4,2) float32 in
    this frame (clockwise from top-left, pixel coordinates of pixel centres), frame_from_ref (3,3)
    float64 (reference = frame 0), frame_from_poster (3,3) float64 (poster image pixels -> frame),
    mask (H,W) bool (figure pixels)."""
    scene = BillboardScene(seed, size, n_frames, fps, n_figures)
    noise_rng = textures.stream(seed, 13)
    ref_from_canvas = None
    px, py = scene.poster_canvas[0] + 0.5
    canvas_from_poster = np.array([[1, 0, px], [0, 1, py], [0, 0, 1.0]])
    for t in range(scene.n_frames):
        img, mask, H = scene.render(t)
        if ref_from_canvas is None:
            ref_from_canvas = np.linalg.inv(H)
        img = degrade(img, noise, blur, noise_rng)
        f_from_ref = H @ ref_from_canvas
        f_from_ref /= f_from_ref[2, 2]
        f_from_poster = H @ canvas_from_poster
        yield img, {"corners": _project(H, scene.poster_canvas).astype(np.float32), "frame_from_ref": f_from_ref,
                    "frame_from_poster": f_from_poster / f_from_poster[2, 2], "mask": mask}


def write_billboard(out_dir, name: str = "billboard", seed: int = 0, size=(640, 360), n_frames: int = 150,
                    fps: int = 30, noise: float = 2.0, blur: int = 0, n_figures: int | None = None,
                    crf: int = 18) -> dict:
    """Write `<name>.mp4`, `<name>.corners.npz`, `<name>.masks.npz`, `<name>.poster.png`, `<name>.json`."""
    import json
    from pathlib import Path

    from .io import VideoWriter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in size)
    corners, homs, posters, masks = [], [], [], []
    with VideoWriter(out / f"{name}.mp4", w, h, fps, crf) as vw:
        for img, truth in render_billboard(seed, (w, h), n_frames, fps, noise, blur, n_figures):
            vw.write(img)
            corners.append(truth["corners"])
            homs.append(truth["frame_from_ref"])
            posters.append(truth["frame_from_poster"])
            masks.append(np.packbits(truth["mask"], axis=-1))
    np.savez_compressed(out / f"{name}.corners.npz", corners=np.stack(corners), frame_from_ref=np.stack(homs),
                        frame_from_poster=np.stack(posters))
    np.savez_compressed(out / f"{name}.masks.npz", packed=np.stack(masks), shape=np.asarray([len(masks), h, w]))
    scene = BillboardScene(seed, (w, h), n_frames, fps, n_figures)
    cv2.imwrite(str(out / f"{name}.poster.png"), scene.poster)
    meta = {"scene": "billboard", "version": VERSION, "seed": int(seed), "size": [w, h], "fps": fps,
            "n_frames": int(n_frames), "noise": noise, "blur": blur, "n_figures": len(scene.figures),
            "poster_size": [int(scene.poster.shape[1]), int(scene.poster.shape[0])],
            "corners_frame0": [[round(float(v), 4) for v in c] for c in corners[0]],
            "files": {"video": f"{name}.mp4", "corners": f"{name}.corners.npz", "masks": f"{name}.masks.npz",
                      "poster": f"{name}.poster.png"}}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
