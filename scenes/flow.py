"""The `flow` scene: frame pairs and short clips with exact dense optical flow.

Each frame is rendered by inverse warping a high-resolution world texture with an exact affine
map A_t (world texels -> frame pixels), and an independently moving textured object with its own
map B_t; the forward flow of pixel x from frame t to t+1 is A_{t+1} A_t^-1 x - x (B for object
pixels), so that I_t(x) = I_{t+1}(x + flow(x)) up to interpolation, noise and occlusion.

Convention: flow (H,W,2) float32, channel 0 = u = dx, 1 = v = dy, pixels, pixel-centre
coordinates; `valid` (H,W) bool = the pixel stays visible in frame t+1 (not occluded, inside the
image) and is not on the object's anti-aliased boundary.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import textures
from .street import degrade

VERSION = "flow-1"
PAIRS = ("translate", "translate_large", "rotate", "zoom", "similarity", "object")
_TEX = 2.0  # world texels per frame pixel


def _T(x, y):
    return np.array([[1, 0, x], [0, 1, y], [0, 0, 1.0]])


def _RS(angle, scale=1.0):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _about(M, c):
    """M applied about the point c (frame pixels)."""
    return _T(*c) @ M @ _T(-c[0], -c[1])


class _World:
    def __init__(self, seed: int, size):
        w, h = size
        rng = textures.stream(seed, 21)
        tw, th = int(_TEX * 1.6 * w), int(_TEX * 1.6 * h)
        self.size = (w, h)
        self.tex = cv2.GaussianBlur(textures.natural(rng, th, tw), (0, 0), 0.5 * _TEX)
        self.A0 = _T((w - 1) / 2.0, (h - 1) / 2.0) @ _RS(0.0, 1.0 / _TEX) @ _T(-(tw - 1) / 2.0, -(th - 1) / 2.0)
        # the object: a textured disc or rounded square, radius r pixels in the frame
        r = 0.16 * min(w, h) * rng.uniform(0.8, 1.2)
        size_o = int(2 * r * _TEX) + 8
        self.obj_tex = cv2.GaussianBlur(textures.poster(rng, size_o, size_o), (0, 0), 0.5 * _TEX)
        self.obj_r = r * _TEX  # in object texels
        self.obj_square = bool(rng.random() < 0.5)
        self.obj_centre = ((size_o - 1) / 2.0, (size_o - 1) / 2.0)
        self.rng = rng

    def object_map(self, pos, angle) -> np.ndarray:
        """Object texels -> frame pixels, object centre at frame point `pos`."""
        cx, cy = self.obj_centre
        return _T(*pos) @ _RS(angle, 1.0 / _TEX) @ _T(-cx, -cy)

    def _coverage(self, ox, oy):
        """Anti-aliased coverage of the object shape at object-texel coordinates (ox, oy)."""
        dx, dy = ox - self.obj_centre[0], oy - self.obj_centre[1]
        if self.obj_square:
            d = np.maximum(np.abs(dx), np.abs(dy)) - self.obj_r
        else:
            d = np.hypot(dx, dy) - self.obj_r
        return np.clip(0.5 - d / _TEX, 0.0, 1.0).astype(np.float32)  # distance in frame pixels

    def render(self, A, B=None):
        """Frame for world map A (and object map B, or no object): (image uint8, coverage)."""
        w, h = self.size
        img = _sample(self.tex, np.linalg.inv(A), w, h)
        if B is None:
            return img, np.zeros((h, w), np.float32)
        ox, oy = _grid(np.linalg.inv(B), w, h)
        cov = self._coverage(ox, oy)
        obj = cv2.remap(self.obj_tex, ox.astype(np.float32), oy.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)
        a = cov[..., None]
        img = np.clip(img.astype(np.float32) * (1 - a) + obj.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
        return img, cov


def _grid(M, w, h):
    """M applied to every pixel centre of a (h,w) frame: (x, y) float64 arrays."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return M[0, 0] * xs + M[0, 1] * ys + M[0, 2], M[1, 0] * xs + M[1, 1] * ys + M[1, 2]


def _sample(tex, frame_to_tex, w, h):
    mx, my = _grid(frame_to_tex, w, h)
    return cv2.remap(tex, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _flow_and_valid(world: _World, A0, A1, B0, B1, cov0, cov1):
    """Exact forward flow 0 -> 1 and its validity mask."""
    w, h = world.size
    xs, ys = _grid(np.eye(3), w, h)
    bx, by = _grid(A1 @ np.linalg.inv(A0), w, h)
    flow = np.stack([bx - xs, by - ys], -1)
    valid = (bx >= 0) & (bx <= w - 1) & (by >= 0) & (by <= h - 1)
    if B0 is not None:
        on_obj = cov0 >= 0.5
        ox, oy = _grid(B1 @ np.linalg.inv(B0), w, h)
        flow[on_obj] = np.stack([ox - xs, oy - ys], -1)[on_obj]
        tx, ty = xs + flow[..., 0], ys + flow[..., 1]
        # coverage of the object at each pixel's target in frame 1 (background pixels going under it)
        tgt = cv2.remap(cov1, tx.astype(np.float32), ty.astype(np.float32), cv2.INTER_LINEAR, borderValue=0.0)
        edge0 = (cov0 > 0) & (cov0 < 1)
        edge0 = cv2.dilate(edge0.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        valid &= ~edge0 & ((on_obj & (tgt >= 0.999)) | (~on_obj & (tgt <= 0.0) & (cov0 <= 0.0)))
        valid &= (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return flow.astype(np.float32), valid


def _pair_maps(world: _World, kind: str):
    """(A0, A1, B0, B1) of one pair kind; B None when there is no object."""
    rng, (w, h) = world.rng, world.size
    A0 = world.A0
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) + rng.uniform(-0.15, 0.15, 2) * (w, h)
    sign = lambda: float(rng.choice([-1.0, 1.0]))
    if kind == "translate":
        M = _T(*(rng.uniform(0.3, 3.0, 2) * (sign(), sign())))
    elif kind == "translate_large":
        M = _T(*(rng.uniform(7.0, 12.0, 2) * (sign(), sign())))
    elif kind == "rotate":
        M = _about(_RS(np.deg2rad(rng.uniform(1.5, 3.0)) * sign()), c)
    elif kind == "zoom":
        M = _about(_RS(0.0, 1.0 + sign() * rng.uniform(0.02, 0.04)), c)
    elif kind == "similarity":
        M = _T(*rng.uniform(-2, 2, 2)) @ _about(_RS(np.deg2rad(rng.uniform(-2, 2)), 1 + rng.uniform(-0.03, 0.03)), c)
    elif kind == "object":
        M = _T(*rng.uniform(-1.5, 1.5, 2))
        pos = np.array([w, h]) * rng.uniform(0.35, 0.65, 2)
        ang = rng.uniform(0, np.pi)
        step = rng.uniform(3.0, 6.0) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        B0 = world.object_map(pos, ang)
        B1 = world.object_map(pos + step, ang + np.deg2rad(rng.uniform(-4, 4)))
        return A0, M @ A0, B0, B1
    else:
        raise ValueError(f"kind: expected one of {PAIRS}, got {kind!r}")
    return A0, M @ A0, None, None


def render_flow_pair(seed: int = 0, size=(320, 240), kind: str = "object", noise: float = 0.0, blur: int = 0):
    """One pair in memory: (img1, img2 BGR uint8, flow (H,W,2) float32 forward 1->2, valid bool)."""
    if kind not in PAIRS:
        raise ValueError(f"kind: expected one of {PAIRS}, got {kind!r}")
    world = _World(seed + 7919 * PAIRS.index(kind), size)
    A0, A1, B0, B1 = _pair_maps(world, kind)
    img0, cov0 = world.render(A0, B0)
    img1, cov1 = world.render(A1, B1)
    flow, valid = _flow_and_valid(world, A0, A1, B0, B1, cov0, cov1)
    rng = textures.stream(seed, 23, PAIRS.index(kind))
    return degrade(img0, noise, blur, rng), degrade(img1, noise, blur, rng), flow, valid


def render_flow_clip(seed: int = 0, size=(320, 240), n_frames: int = 8, noise: float = 0.0, blur: int = 0):
    """A short clip with smoothly varying camera similarity motion and a moving object:
    (frames list of BGR uint8, flows list of (H,W,2) float32 (t -> t+1), valids list of bool)."""
    if n_frames < 2:
        raise ValueError(f"n_frames: expected >= 2, got {n_frames}")
    world = _World(seed + 104729, size)
    rng, (w, h) = world.rng, world.size
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    vel, spin, zoom = rng.uniform(-2.5, 2.5, 2), np.deg2rad(rng.uniform(-1.0, 1.0)), rng.uniform(-0.01, 0.01)
    pos, ang = np.array([w, h]) * rng.uniform(0.3, 0.7, 2), rng.uniform(0, np.pi)
    ovel = rng.uniform(-4.0, 4.0, 2)
    As, Bs = [], []
    A, acc = world.A0, rng.uniform(-0.2, 0.2, 2)
    for t in range(n_frames):
        As.append(A)
        Bs.append(world.object_map(pos + ovel * t, ang + 0.03 * t))
        A = _T(*(vel + acc * t)) @ _about(_RS(spin, 1 + zoom), c) @ A
    noise_rng = textures.stream(seed, 24)
    rendered = [world.render(A, B) for A, B in zip(As, Bs)]
    flows, valids = [], []
    for t in range(n_frames - 1):
        f, v = _flow_and_valid(world, As[t], As[t + 1], Bs[t], Bs[t + 1], rendered[t][1], rendered[t + 1][1])
        flows.append(f)
        valids.append(v)
    frames = [degrade(img, noise, blur, noise_rng) for img, _ in rendered]
    return frames, flows, valids


def write_flow_set(out_dir, seed: int = 0, size=(320, 240), noise: float = 1.0, blur: int = 0,
                   kinds=PAIRS, clip_frames: int = 8) -> list[str]:
    """Write Middlebury-layout folders `<out_dir>/<kind>/frame10.png, frame11.png, flow10.flo`
    (+ `valid10.png`, 255 = valid) for each pair kind, and `<out_dir>/clip/frame10.png ...
    frame1N.png` with `flow10.flo ...` (t -> t+1) when clip_frames >= 2. Returns the names."""
    import json
    from pathlib import Path

    from .io import write_flo

    out = Path(out_dir)
    names = []
    for kind in kinds:
        img0, img1, flow, valid = render_flow_pair(seed, size, kind, noise, blur)
        d = out / kind
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / "frame10.png"), img0)
        cv2.imwrite(str(d / "frame11.png"), img1)
        cv2.imwrite(str(d / "valid10.png"), valid.astype(np.uint8) * 255)
        write_flo(d / "flow10.flo", flow)
        names.append(kind)
    if clip_frames and clip_frames >= 2:
        frames, flows, valids = render_flow_clip(seed, size, clip_frames, noise, blur)
        d = out / "clip"
        d.mkdir(parents=True, exist_ok=True)
        for t, img in enumerate(frames):
            cv2.imwrite(str(d / f"frame{10 + t}.png"), img)
        for t, (f, v) in enumerate(zip(flows, valids)):
            write_flo(d / f"flow{10 + t}.flo", f)
            cv2.imwrite(str(d / f"valid{10 + t}.png"), v.astype(np.uint8) * 255)
        names.append("clip")
    meta = {"scene": "flow", "version": VERSION, "seed": int(seed), "size": list(size), "noise": noise,
            "blur": blur, "pairs": list(kinds), "clip_frames": int(clip_frames or 0),
            "convention": "flow10.flo: (H,W,2) float32 u=dx, v=dy, frame10 -> frame11; valid10.png 255 = visible in both"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "flow.json").write_text(json.dumps(meta, indent=1) + "\n")
    return names
