"""The `street` scene: a static camera over pavement and building fronts, 6-12 figures that walk,
run, stand, wave and loiter, cross each other, enter and leave; exact per-frame ground truth.

World: ground plane, X metres to the right, Z metres of depth; a pinhole camera at height Hc looks
horizontally, so a foot at (X, Z) is at image (cx + f X / Z, y_h + f Hc / Z) and a person of
height m metres is f m / Z pixels tall. Each figure follows a script of straight segments
(activity, start/end time, start/end ground point) so its path is known exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import textures
from .figures import FigureStyle, composite, pose_for, render_figure
from .io import FrameTruth, count_crossings, foot_tracks, path_feet

VERSION = "street-1"
_STRIDE = {"walking": 1.5, "running": 2.6, "loitering": 0.9}  # metres per gait cycle
_SPEED = {"walking": (1.1, 1.6), "running": (2.8, 4.0), "loitering": (0.3, 0.5)}


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    f: float
    cx: float
    y_h: float
    cam_h: float = 4.0
    z_wall: float = 40.0

    @classmethod
    def for_size(cls, w: int, h: int) -> "Camera":
        return cls(w, h, 0.78 * w, w / 2.0, 0.30 * h)

    def foot(self, X, Z):
        return self.cx + self.f * X / Z, self.y_h + self.f * self.cam_h / Z

    def half_width(self, Z: float) -> float:
        return Z * (self.width / 2.0) / self.f

    @property
    def z_near(self) -> float:  # foot at 97% of the image height
        return self.f * self.cam_h / (0.97 * self.height - self.y_h)


@dataclass
class Segment:
    activity: str
    t0: float
    t1: float
    p0: tuple
    p1: tuple


@dataclass
class Figure:
    fid: int
    style: FigureStyle
    segments: list  # Segment, times in scene seconds
    role: str

    def state(self, t: float):
        """(X, Z, activity, gait phase, facing, side factor) at scene time t, or None if absent."""
        segs = self.segments
        if t < segs[0].t0 or t > segs[-1].t1:
            return None
        dist, facing, side = 0.0, 1.0, 1.0
        for s in segs:
            d = np.subtract(s.p1, s.p0)
            length = float(np.hypot(*d))
            if length > 1e-6:
                facing = 1.0 if d[0] >= 0 else -1.0
                side = abs(d[0]) / length
            if t <= s.t1:
                u = 0.0 if s.t1 <= s.t0 else (t - s.t0) / (s.t1 - s.t0)
                X, Z = s.p0[0] + u * d[0], s.p0[1] + u * d[1]
                phase = (dist + u * length) / _STRIDE.get(s.activity, 1.5)
                return X, Z, s.activity, phase, facing, side
            dist += length
        return None


# ---------------------------------------------------------------- scripts
class _Planner:
    def __init__(self, rng: np.random.Generator, cam: Camera, duration: float):
        self.rng, self.cam, self.duration = rng, cam, duration
        self.zmin, self.zmax = cam.z_near + 0.5, 26.0

    def off(self, Z: float, side: float) -> tuple:
        return (side * (self.cam.half_width(Z) + 1.2), Z)

    def inside(self, Z: float, frac: float = 0.7) -> tuple:
        return (float(self.rng.uniform(-frac, frac) * self.cam.half_width(Z)), Z)

    def speed(self, act: str) -> float:
        return float(self.rng.uniform(*_SPEED[act]))

    def z(self) -> float:
        # uniform in 1/Z (image rows) so figures spread over the ground as seen
        return float(1.0 / self.rng.uniform(1.0 / self.zmax, 1.0 / self.zmin))

    def moves(self, act, pts, t=0.0):
        segs = []
        for p, q in zip(pts[:-1], pts[1:]):
            dt = float(np.hypot(q[0] - p[0], q[1] - p[1])) / self.speed(act)
            segs.append(Segment(act, t, t + dt, tuple(map(float, p)), tuple(map(float, q))))
            t += dt
        return segs

    def stay(self, act, p, dur, t):
        return Segment(act, t, t + dur, tuple(map(float, p)), tuple(map(float, p)))

    def script(self, role: str):
        """Segments in local time from 0, and the anchor time (the moment to place in the clip)."""
        r, side = self.rng, float(self.rng.choice([-1.0, 1.0]))
        if role in ("walker", "runner"):
            act = "walking" if role == "walker" else "running"
            z0 = self.z()
            z1 = float(np.clip(z0 + r.uniform(-5, 5), self.zmin, self.zmax))
            p0, p1 = self.off(z0, -side), self.off(z1, side)
            segs = self.moves(act, [p0, p1])
            return segs, 0.5 * (segs[0].t0 + segs[-1].t1)
        if role == "approacher":  # from the far side towards the camera, leaving at the bottom
            z0 = float(r.uniform(18, self.zmax))
            exit_z = self.cam.f * (self.cam.cam_h - 2.0) / (self.cam.height - self.cam.y_h) * 0.9
            segs = self.moves("walking", [self.off(z0, side), (float(r.uniform(-1.5, 1.5)), exit_z)])
            return segs, 0.6 * segs[-1].t1
        # roles that enter, do something in view, and leave
        z = float(np.clip(self.z(), self.zmin + 1.0, 20.0))
        spot = self.inside(z)
        segs = self.moves("walking", [self.off(z, -side), spot])
        t = segs[-1].t1
        if role == "waver":
            segs.append(self.stay("waving", spot, float(r.uniform(2.0, 4.0)), t))
            anchor = 0.5 * (segs[-1].t0 + segs[-1].t1)
        elif role == "stander":
            segs.append(self.stay("standing", spot, float(r.uniform(2.5, 5.0)), t))
            anchor = 0.5 * (segs[-1].t0 + segs[-1].t1)
            if r.random() < 0.4:
                segs.append(self.stay("waving", spot, float(r.uniform(1.0, 2.0)), segs[-1].t1))
        elif role == "loiterer":
            pts, p = [spot], np.asarray(spot)
            total = 0.0
            target = max(6.0, 0.6 * self.duration)
            while total < target:
                q = np.asarray(spot) + r.uniform(-1.6, 1.6, 2) * (1.0, 0.5)
                q[1] = float(np.clip(q[1], self.zmin, self.zmax))
                total += float(np.hypot(*(q - p))) / 0.4
                pts.append(tuple(q))
                p = q
            t0 = segs[-1].t1
            segs += self.moves("loitering", pts, t0)
            anchor = 0.5 * (t0 + segs[-1].t1)
        else:
            raise ValueError(f"role: unknown {role!r}")
        last = segs[-1].p1
        out_side = side if r.random() < 0.6 else -side
        segs += self.moves("walking", [last, self.off(last[1], out_side)], segs[-1].t1)
        return segs, anchor


_FIRST_ROLES = ["walker", "runner", "waver", "loiterer", "stander"]
_MORE_ROLES = ["walker", "walker", "walker", "runner", "waver", "stander", "loiterer", "approacher"]


def plan_figures(seed: int, cam: Camera, n_frames: int, fps: float, n_figures: int | None = None) -> list[Figure]:
    """The figures of a scene and their scripts (scene time in seconds, frame t at t / fps)."""
    rng = textures.stream(seed, 2)
    n = int(rng.integers(6, 13)) if n_figures is None else int(n_figures)
    if n < 1:
        raise ValueError(f"n_figures: expected >= 1, got {n}")
    duration = n_frames / fps
    planner = _Planner(rng, cam, duration)
    roles = list(rng.permutation(_FIRST_ROLES))[:n] + [str(rng.choice(_MORE_ROLES)) for _ in range(n - 5)]
    figures = []
    for k, role in enumerate(roles):
        style = FigureStyle.random(rng)
        segs, anchor = planner.script(str(role))
        shift = float(rng.uniform(0.1, 0.9)) * duration - anchor
        for s in segs:
            s.t0 += shift
            s.t1 += shift
        figures.append(Figure(k + 1, style, segs, str(role)))
    return figures


# ---------------------------------------------------------------- background
def render_background(seed: int, cam: Camera) -> np.ndarray:
    """Building fronts at depth z_wall above a paved ground with a road band, seen by `cam`."""
    rng = textures.stream(seed, 1)
    W, H = cam.width, cam.height
    ss = 2  # supersampling for the ground
    ppm = 24.0
    xmax = cam.half_width(cam.z_wall) + 2
    z0 = cam.f * cam.cam_h / (H - cam.y_h) - 0.5
    tw, th = int(2 * xmax * ppm), int((cam.z_wall - z0) * ppm) + 2
    tex = textures.pavement(rng, th, tw, tile=int(0.6 * ppm))
    road = textures.asphalt(rng, th, tw)
    rz0, rz1 = 28.0, 36.0
    ra, rb = int((rz0 - z0) * ppm), int((rz1 - z0) * ppm)
    tex[ra:rb] = road[ra:rb]
    mid = (ra + rb) // 2
    for x in range(0, tw, int(3 * ppm)):
        cv2.rectangle(tex, (x, mid - 2), (x + int(1.5 * ppm), mid + 2), (220, 220, 220), -1)
    tex[ra - 3:ra] = (170, 170, 175)  # kerbs
    tex[rb:rb + 3] = (170, 170, 175)
    tex = cv2.GaussianBlur(tex, (3, 3), 0)
    y_wall = cam.y_h + cam.f * cam.cam_h / cam.z_wall
    yy, xx = np.mgrid[0:H * ss, 0:W * ss].astype(np.float32)
    yy, xx = (yy + 0.5) / ss - 0.5, (xx + 0.5) / ss - 0.5
    Z = cam.f * cam.cam_h / np.maximum(yy - cam.y_h, 1e-3)
    X = (xx - cam.cx) * Z / cam.f
    mapx = ((X + xmax) * ppm).astype(np.float32)
    mapy = ((Z - z0) * ppm).astype(np.float32)
    ground = cv2.remap(tex, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ground = cv2.resize(ground, (W, H), interpolation=cv2.INTER_AREA)
    img = ground
    yw = int(np.ceil(y_wall))
    wall = textures.facade(rng, yw, W)
    img[:yw] = wall
    return img


# ---------------------------------------------------------------- rendering
def _frame_truth(cam: Camera, figures, t_s: float):
    """Patches and truth of the figures present at time t_s, far to near."""
    items = []
    for fig in figures:
        st = fig.state(t_s)
        if st is None:
            continue
        X, Z, act, phase, facing, side = st
        fx, fy = cam.foot(X, Z)
        hpx = cam.f * fig.style.height_m / Z
        pose = pose_for(act, phase, t_s, side)
        colour, alpha, x0, y0 = render_figure(fig.style, pose, hpx, (fx, fy), facing)
        mask = alpha > 0
        rows, cols = np.any(mask, 1), np.any(mask, 0)
        if not rows.any():
            continue
        r0, r1 = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
        c0, c1 = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
        box = np.asarray([x0 + c0, y0 + r0, x0 + c1, y0 + r1], np.float32)
        clipped = np.clip(box, 0, np.asarray([cam.width, cam.height] * 2, np.float32))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            continue
        items.append((Z, fig.fid, act, box, clipped, colour, alpha, mask, x0, y0, (fx, fy)))
    items.sort(key=lambda it: (-it[0], it[1]))
    return items


def render_street(seed: int = 0, size=(640, 360), n_frames: int = 300, fps: int = 30, noise: float = 0.0,
                  blur: int = 0, n_figures: int | None = None, masks: bool = False):
    """Yield (image BGR uint8 (H,W,3), FrameTruth) for each frame, in memory. `masks=True` fills
    FrameTruth.masks with each figure's full pixel mask (for tests)."""
    w, h = (int(v) for v in size)
    if w < 64 or h < 48:
        raise ValueError(f"size: expected at least 64x48, got {w}x{h}")
    cam = Camera.for_size(w, h)
    bg = render_background(seed, cam)
    figures = plan_figures(seed, cam, n_frames, fps, n_figures)
    noise_rng = textures.stream(seed, 3)
    for t in range(int(n_frames)):
        items = _frame_truth(cam, figures, t / fps)
        img = bg.copy()
        label = np.zeros((h, w), np.int16)  # 0 = background, else index + 1 of the nearest figure
        for k, (_, _, _, _, _, colour, alpha, mask, x0, y0, _) in enumerate(items):
            composite(img, colour, alpha, x0, y0)
            ix0, iy0 = max(0, x0), max(0, y0)
            ix1, iy1 = min(w, x0 + mask.shape[1]), min(h, y0 + mask.shape[0])
            sub = mask[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            label[iy0:iy1, ix0:ix1][sub] = k + 1
        vis = []
        for k, it in enumerate(items):
            mask, x0, y0 = it[7], it[8], it[9]
            ix0, iy0 = max(0, x0), max(0, y0)
            ix1, iy1 = min(w, x0 + mask.shape[1]), min(h, y0 + mask.shape[0])
            sub = mask[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            seen = int(np.count_nonzero(label[iy0:iy1, ix0:ix1][sub] == k + 1))
            vis.append(seen / max(1, int(np.count_nonzero(mask))))
        img = degrade(img, noise, blur, noise_rng)
        order = np.argsort([it[1] for it in items], kind="stable")  # rows sorted by id
        items = [items[i] for i in order]
        truth = FrameTruth(
            np.asarray([it[1] for it in items], np.int64),
            np.asarray([it[3] for it in items], np.float32).reshape(-1, 4),
            np.asarray([it[4] for it in items], np.float32).reshape(-1, 4),
            np.asarray([vis[i] for i in order], np.float32),
            [it[2] for it in items],
            [(it[8], it[9], it[7]) for it in items] if masks else None,
            np.asarray([it[10] for it in items], np.float32).reshape(-1, 2),
        )
        yield img, truth


def degrade(img: np.ndarray, noise: float, blur: int, rng: np.random.Generator) -> np.ndarray:
    """Optional Gaussian blur (odd kernel size `blur`, 0 = none) then Gaussian noise (sigma in
    grey levels). The ground truth is geometric and unaffected."""
    if blur:
        if blur < 3 or blur % 2 == 0:
            raise ValueError(f"blur: expected 0 or an odd kernel size >= 3, got {blur}")
        img = cv2.GaussianBlur(img, (blur, blur), 0)
    if noise > 0:
        n = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
        img = np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)
    return img


def default_lines(w: int, h: int) -> list[dict]:
    """Two counting lines: a vertical one through the middle of the ground, a horizontal one near
    the bottom. Directions are named for the screen."""
    cam = Camera.for_size(w, h)
    y_top = round(cam.y_h + cam.f * cam.cam_h / 30.0, 1)
    return [
        {"name": "centre", "p1": [w / 2.0, y_top], "p2": [w / 2.0, float(h)],
         "dirs": {"pos_to_neg": "left_to_right", "neg_to_pos": "right_to_left"}},
        {"name": "near", "p1": [0.1 * w, round(0.8 * h, 1)], "p2": [0.9 * w, round(0.8 * h, 1)],
         "dirs": {"neg_to_pos": "down", "pos_to_neg": "up"}},
    ]


def line_counts(frames: list, lines: list[dict]) -> list[dict]:
    """Exact crossing counts of each line: `counts` by the figures' ground contact points (their
    paths, the semantic truth), `counts_box` by the bottom centres of their full boxes (which
    jitter with the gait, so a figure walking along a line may cross it back and forth)."""
    ground, box = foot_tracks(frames, "ground"), foot_tracks(frames, "box")
    out = []
    for ln in lines:
        raw, rawb = count_crossings(ground, ln["p1"], ln["p2"]), count_crossings(box, ln["p1"], ln["p2"])
        out.append({**ln, "counts": {ln["dirs"][k]: v for k, v in raw.items()},
                    "counts_box": {ln["dirs"][k]: v for k, v in rawb.items()}})
    return out


def scene_meta(seed, size, n_frames, fps, noise, blur, n_figures) -> dict:
    """JSON-ready description: camera, figure styles and paths (segments with times and points)."""
    w, h = size
    cam = Camera.for_size(w, h)
    figs = plan_figures(seed, cam, n_frames, fps, n_figures)
    r = lambda v: [round(float(x), 4) for x in v]
    return {
        "scene": "street", "version": VERSION, "seed": int(seed), "size": [int(w), int(h)], "fps": fps,
        "n_frames": int(n_frames), "noise": noise, "blur": blur,
        "camera": {"f": cam.f, "cx": cam.cx, "y_horizon": cam.y_h, "height_m": cam.cam_h,
                   "model": "foot (X,Z) -> (cx + f X/Z, y_horizon + f height_m/Z); person m metres -> f m/Z px"},
        "figures": [{
            "id": f.fid, "role": f.role, "height_m": round(f.style.height_m, 4),
            "colours": {"shirt": list(f.style.shirt), "trousers": list(f.style.trousers)},
            "path": [{"activity": s.activity, "t0": round(s.t0, 4), "t1": round(s.t1, 4),
                      "frame0": round(s.t0 * fps, 3), "frame1": round(s.t1 * fps, 3),
                      "start": r(s.p0), "end": r(s.p1),
                      "start_px": r(cam.foot(*s.p0)), "end_px": r(cam.foot(*s.p1))} for s in f.segments],
        } for f in figs],
    }


def write_street(out_dir, name: str = "street", seed: int = 0, size=(640, 360), n_frames: int = 300,
                 fps: int = 30, noise: float = 2.0, blur: int = 0, n_figures: int | None = None,
                 crf: int = 18) -> dict:
    """Render and write `<name>.mp4`, `.gt.txt`, `.activity.csv`, `.json` into out_dir.
    Returns the scene meta (with line counts)."""
    import json
    from pathlib import Path

    from .io import VideoWriter, format_mot_rows

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in size)
    frames, mot, act = [], [], ["frame,id,label\n"]
    with VideoWriter(out / f"{name}.mp4", w, h, fps, crf) as vw:
        for t, (img, truth) in enumerate(render_street(seed, (w, h), n_frames, fps, noise, blur, n_figures)):
            vw.write(img)
            frames.append(truth)
            for i, box, v, lab in zip(truth.ids, truth.boxes, truth.visibility, truth.labels):
                mot.append((t, int(i), *map(float, box), float(v)))
                act.append(f"{t + 1},{int(i)},{lab}\n")
    meta = scene_meta(seed, (w, h), n_frames, fps, noise, blur, n_figures)
    for t, truth in enumerate(frames):  # from the rounded paths, exactly as the loader does
        truth.feet = path_feet(meta, t, truth.ids)
    meta["lines"] = line_counts(frames, default_lines(w, h))
    meta["files"] = {"video": f"{name}.mp4", "gt": f"{name}.gt.txt", "activity": f"{name}.activity.csv"}
    (out / f"{name}.gt.txt").write_text(format_mot_rows(mot))
    (out / f"{name}.activity.csv").write_text("".join(act))
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
