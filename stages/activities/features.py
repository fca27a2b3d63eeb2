"""Per-track sliding-window features for activity recognition.

Every feature is scale-invariant: positions are divided by the track's own body height (box height)
and rates by seconds measured from the frames' times, so a figure 40 px tall far away and one 400 px
tall near the camera walking at the same pace give the same numbers, at any frame rate.

One FeatureExtractor holds a ring of the last `capacity` frames for every live track (all tracks
share the ring position, so all features are computed at once, vectorized over tracks):
the foot point (bottom centre), box height, width and top, and in-box flow statistics. Windows:
short (speed now), medium (box shape oscillation, scale change) and long (loitering: net
displacement, area covered, path straightness; motion in depth). Motion towards or away from the
camera barely moves the foot on screen; it shows as the box's scale rate, turned into body heights
per second with the focal length (a body f*m/h px tall is f/h body heights away). It is measured
robustly (Theil-Sen slopes of log height and of the foot's row over the long window), counted only
as far as the foot moves the same way (on the ground, a body that comes closer grows and its foot
moves down the image; a raised arm or sign grows the box with the foot still), with its standard
error so that the rules can discount detector jitter.

With a ground-plane calibration (`homography`: image pixels -> ground metres, stages.activities.ground)
the foot point is also mapped onto the ground, and the motion features speed, speed_med, speed_x,
speed_y, disp_long, path_long, extent_long (and so straight) are measured there in metres and
divided by `person_height` metres instead of the box height: still body heights (per second), so
thresholds and learned weights keep their units, but the same walk gives the same speed across the
view and towards or away from the camera. speed_x / speed_y are then along the ground frame's X and
Y axes (X across the view and Y away from the camera keep their image-plane meaning). The ground
speed already holds the motion in depth, so approach_speed is 0 (the rules add nothing twice) and
speed_3d is the ground speed; depth_speed, depth_rate, foot_rate and approach_noise stay the
box-scale measurements. Foot points at or above the ground's horizon are left out of the ground
features (a track with none gets 0 there).

Convention: boxes (N,4) float32 xyxy pixels; time in seconds; flow (2,H,W) float32 pixels per
frame, channel 0 = dx (numpy array or torch tensor); features (N, len(FEATURES)) float32 in
FEATURES order; units bh/s (body heights per second), bh, 1/s or ratios as named below.
"""
from __future__ import annotations

import numpy as np

from .depth import depth_features
from .ground import ground_motion, to_ground

FEATURES = (
    "speed",        # |foot velocity| over the short window, bh/s
    "speed_med",    # the same over the medium window, bh/s
    "speed_x",      # |horizontal velocity| over the medium window, bh/s
    "speed_y",      # |vertical (image) velocity| over the medium window, bh/s
    "scale_rate",   # |d log(height) / dt| over the medium window, 1/s (motion in depth)
    "disp_long",    # net displacement over the long window / its duration, bh/s
    "path_long",    # mean speed over the long window at step_s steps, bh/s
    "extent_long",  # RMS distance of the foot from its mean over the long window, bh
    "straight",     # disp_long / path_long in [0, 1] (1: a straight walk; small: wandering)
    "height_var",   # std of the box height about its linear trend / height, medium window
    "top_var",      # std of the box top about its trend / height (a raised, waving arm)
    "width_var",    # std of the box width about its trend / height (swinging legs and arms)
    "aspect",       # mean width / height, medium window
    "flow_top",     # flow spread (std magnitude) in the upper box, short window mean, bh/s
    "flow_bottom",  # flow spread in the lower box, bh/s
    "flow_rel",     # |mean in-box flow - the box's own velocity|, bh/s
    "has_flow",     # fraction of short-window frames that had flow (0: the flow features are 0)
    "energy_top",   # motion energy in the upper box (frame difference inside the box), short window
    "energy_bottom",  # the same in the lower box (legs)
    "fill",         # history duration / long window, in [0, 1]
    "depth_speed",  # speed towards / away from the camera: |d log(height) / dt| over the LONG window
                    # (a waving arm's and the box noise's scale changes average out) * focal / height, bh/s
    "speed_3d",     # max(speed, depth_speed), bh/s
    # robust motion in depth (the rules use these; the shipped temporal weights were trained without them)
    "depth_rate",   # d log(height) / dt over the long window, Theil-Sen (median slope of the pairs at least
                    # depth.MIN_LAG_S apart, one sample per step_s), signed: + growing (approaching), 1/s
    "foot_rate",    # d(foot y) / dt / height, Theil-Sen as depth_rate, signed: + down the image, bh/s
    "approach_speed",  # |depth_rate| as far as the foot confirms it (depth.ground_confirmed) * focal / height, bh/s
    "approach_noise",  # standard error of approach_speed: robust spread (1.4826 MAD) of log(height) about
                       # the Theil-Sen line / sqrt(sum (t - mean t)^2) * focal / height, bh/s
)
INDEX = {name: i for i, name in enumerate(FEATURES)}

# ring columns
_X, _Y, _H, _W, _TOP, _FTOP, _FBOT, _FMX, _FMY, _HASF, _ETOP, _EBOT, _HASE, _GX, _GY, _HASG = range(16)
_NCOL = 16
CROP = (16, 40)  # (width, height) of the normalized crops of box_motion_energy


def box_motion_energy(prev: np.ndarray, cur: np.ndarray, boxes: np.ndarray, top: float = 0.45,
                      max_overlap: float = 0.1, shift=(0.0, 0.0)) -> np.ndarray:
    """Limb motion inside each box: the box's region of the previous and of this frame, both
    resized to CROP and made grey, the largest absolute difference in the upper and in the lower
    `top` fraction, divided by the crop's contrast (std + 4 grey levels). A still body with a
    waving arm gives energy at the top only; a box that moves gives energy everywhere. A box
    overlapped by the other boxes over more than `max_overlap` of its area is not measured (valid
    0): someone passing in front or behind would look like moving limbs. `shift` (dx, dy) is the
    camera's motion from the previous frame to this one (the previous crop is taken at box - shift).

    Convention: prev, cur (H,W,3) uint8 BGR frames of one size; boxes (N,4) xyxy pixels; returns
    (N,3) float32 [energy_top, energy_bottom, valid] (per frame pair, contrast units)."""
    import cv2

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.zeros((len(boxes), 3), np.float32)
    if prev is None or prev.shape != cur.shape:
        return out
    H, W = cur.shape[:2]
    cw, ch = CROP
    k_top, k_bot = int(round(top * ch)), ch - int(round(top * ch))
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    np.fill_diagonal(inter, 0)
    area = np.maximum(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1), 1e-6)
    covered = inter.sum(1) / area
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c0, c1 = int(max(0, np.floor(x1))), int(min(W, np.ceil(x2)))
        r0, r1 = int(max(0, np.floor(y1))), int(min(H, np.ceil(y2)))
        if c1 - c0 < 2 or r1 - r0 < 4 or covered[i] > max_overlap:
            continue
        sx, sy = int(round(shift[0])), int(round(shift[1]))
        p0, p1 = min(max(0, c0 - sx), W - 2), min(max(2, c1 - sx), W)
        q0, q1 = min(max(0, r0 - sy), H - 4), min(max(4, r1 - sy), H)
        # big boxes (1080p) are first sampled every k-th pixel, down to >= 2 pixels per crop pixel:
        # INTER_AREA's cost grows with the region, its result hardly changes past 2x
        kx, ky = max(1, (c1 - c0) // (2 * cw)), max(1, (r1 - r0) // (2 * ch))
        a = cv2.resize(prev[q0:q1:ky, p0:p1:kx], (cw, ch), interpolation=cv2.INTER_AREA).astype(np.float32).mean(2)
        b = cv2.resize(cur[r0:r1:ky, c0:c1:kx], (cw, ch), interpolation=cv2.INTER_AREA).astype(np.float32).mean(2)
        d = np.abs(b - a)
        scale = 1.0 / (float(b.std()) + 4.0)
        out[i] = (d[:k_top].max() * scale, d[k_bot:].max() * scale, 1.0)
    return out


def region_flow_stats(flow, boxes: np.ndarray, top: float = 0.45, max_samples: int = 48) -> np.ndarray:
    """Flow statistics inside each box: spread (std of the flow vector, sqrt(var dx + var dy)) in
    the upper `top` fraction and in the lower `top` fraction of the box, and the whole box's mean.

    Convention: flow (2,H,W) float32 px/frame, numpy or torch (any device); boxes (N,4) xyxy
    pixels; returns (N,5) float32 [spread_top, spread_bottom, mean_dx, mean_dy, valid] in px/frame,
    valid 1 where the box overlaps the image. Numpy boxes are subsampled to at most about
    `max_samples` rows (bounded cost at 1080p); torch uses integral images on the flow's device."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not 0 < top <= 1:
        raise ValueError(f"top: expected 0 < top <= 1, got {top}")
    if not isinstance(flow, np.ndarray):
        return _region_stats_torch(flow, boxes, top)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow: expected (2,H,W), got {flow.shape}")
    H, W = flow.shape[1:]
    out = np.zeros((len(boxes), 5), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c0, c1 = int(max(0, np.floor(x1))), int(min(W, np.ceil(x2)))
        r0, r1 = int(max(0, np.floor(y1))), int(min(H, np.ceil(y2)))
        if c1 - c0 < 1 or r1 - r0 < 2:
            continue
        s = max(1, (r1 - r0) // max_samples)
        box_h = y2 - y1
        split_top = int(min(r1, max(r0 + 1, round(y1 + top * box_h))))
        split_bot = int(max(r0, min(r1 - 1, round(y2 - top * box_h))))
        whole = flow[:, r0:r1:s, c0:c1:s]
        out[i, 2:4] = whole.mean(axis=(1, 2))
        for k, reg in enumerate((flow[:, r0:split_top:s, c0:c1:s], flow[:, split_bot:r1:s, c0:c1:s])):
            if reg.size:
                var = reg.var(axis=(1, 2))
                out[i, k] = np.sqrt(var[0] + var[1])
        out[i, 4] = 1.0
    return out


def _region_stats_torch(flow, boxes: np.ndarray, top: float) -> np.ndarray:
    import torch

    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow: expected (2,H,W), got {tuple(flow.shape)}")
    n = len(boxes)
    if n == 0:
        return np.zeros((0, 5), np.float32)
    H, W = int(flow.shape[1]), int(flow.shape[2])
    f = flow.to(torch.float64)
    planes = torch.cat([f, f * f], 0)  # dx, dy, dx^2, dy^2
    integral = torch.zeros((4, H + 1, W + 1), dtype=torch.float64, device=flow.device)
    integral[:, 1:, 1:] = planes.cumsum(1).cumsum(2)
    b = boxes.astype(np.float64)
    c0 = np.clip(np.floor(b[:, 0]), 0, W).astype(np.int64)
    c1 = np.clip(np.ceil(b[:, 2]), 0, W).astype(np.int64)
    r0 = np.clip(np.floor(b[:, 1]), 0, H).astype(np.int64)
    r1 = np.clip(np.ceil(b[:, 3]), 0, H).astype(np.int64)
    h = b[:, 3] - b[:, 1]
    st = np.clip(np.round(b[:, 1] + top * h), r0 + 1, r1).astype(np.int64)
    sb = np.clip(np.round(b[:, 3] - top * h), r0, np.maximum(r0, r1 - 1)).astype(np.int64)
    rects = np.concatenate([np.stack([r0, st, c0, c1], 1), np.stack([sb, r1, c0, c1], 1),
                            np.stack([r0, r1, c0, c1], 1)])  # top, bottom, whole
    rt = torch.as_tensor(rects, device=flow.device)
    s = integral[:, rt[:, 1], rt[:, 3]] - integral[:, rt[:, 0], rt[:, 3]] \
        - integral[:, rt[:, 1], rt[:, 2]] + integral[:, rt[:, 0], rt[:, 2]]
    sums = s.cpu().numpy()  # (4, 3n)
    area = ((rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])).astype(np.float64)
    safe = np.maximum(area, 1)
    mean = sums[:2] / safe
    var = np.clip(sums[2:] / safe - mean ** 2, 0, None)
    spread = np.sqrt(var.sum(0))
    out = np.zeros((n, 5), np.float32)
    out[:, 0], out[:, 1] = spread[:n], spread[n:2 * n]
    out[:, 2:4] = mean[:, 2 * n:].T
    out[:, 4] = (area[2 * n:] >= 2).astype(np.float32)
    out[area[2 * n:] < 2] = 0
    return out


def _fit(w: np.ndarray, t: np.ndarray, v: np.ndarray):
    """Weighted least-squares line per row. w (M,T) 0/1, t (T,), v (M,T,K) -> slope (M,K),
    mean (M,K), residual std (M,K); rows with fewer than 2 samples get 0 slope and 0 std."""
    n = np.maximum(w.sum(1), 1e-9)[:, None]
    wk = w[:, :, None]
    mt = (w * t).sum(1)[:, None] / n[:, 0:1]
    dt = (t[None, :] - mt)[:, :, None]
    mv = (wk * v).sum(1) / n
    var_t = (wk[:, :, 0] * dt[:, :, 0] ** 2).sum(1)[:, None]
    cov = (wk * dt * (v - mv[:, None, :])).sum(1)
    ok = var_t > 1e-12
    slope = np.where(ok, cov / np.where(ok, var_t, 1.0), 0.0)
    resid = v - (mv[:, None, :] + slope[:, None, :] * dt)
    std = np.sqrt((wk * resid ** 2).sum(1) / n)
    return slope, mv, np.where(ok, std, 0.0)


class FeatureExtractor:
    """Per-track history and features. Call `update` once per frame (also with no tracks), in
    time order. Tracks unseen for more than `forget_s` seconds are forgotten.

    Convention: see the module docstring; windows in seconds; `capacity` frames of history
    (the long window is cut short above capacity / long_s frames per second); `homography` (3,3)
    image pixels -> ground metres (stages.activities.ground.ground_homography) or None (image-plane
    motion); `person_height` metres (one body height on the ground)."""

    def __init__(self, short_s: float = 0.5, medium_s: float = 1.0, long_s: float = 3.0,
                 step_s: float = 0.2, forget_s: float = 1.0, capacity: int = 192,
                 homography: np.ndarray | None = None, person_height: float = 1.7) -> None:
        for name, value in (("short_s", short_s), ("medium_s", medium_s), ("long_s", long_s),
                            ("step_s", step_s), ("forget_s", forget_s)):
            if not value > 0:
                raise ValueError(f"{name}: expected > 0 seconds, got {value}")
        if not short_s <= medium_s <= long_s:
            raise ValueError(f"windows: expected short_s <= medium_s <= long_s, got {short_s}, {medium_s}, {long_s}")
        if capacity < 4:
            raise ValueError(f"capacity: expected >= 4 frames, got {capacity}")
        if not person_height > 0:
            raise ValueError(f"person_height: expected > 0 metres, got {person_height}")
        if homography is not None and np.asarray(homography).shape != (3, 3):
            raise ValueError(f"homography: expected (3,3), got {np.asarray(homography).shape}")
        self.homography = None if homography is None else np.asarray(homography, np.float64)
        self.person_height = float(person_height)
        self.short_s, self.medium_s, self.long_s = short_s, medium_s, long_s
        self.step_s, self.forget_s, self.capacity = step_s, forget_s, int(capacity)
        self.reset()

    def reset(self) -> None:
        self.times = np.full(self.capacity, -np.inf)
        self.pos = -1
        self.buf = np.zeros((16, self.capacity, _NCOL), np.float32)
        self.valid = np.zeros((16, self.capacity), bool)
        self.slots: dict[int, int] = {}
        self.first_seen: dict[int, float] = {}
        self.last_seen = np.full(16, -np.inf)
        self.free = list(range(15, -1, -1))
        self.last_time: float | None = None

    def _slot(self, tid: int, now: float) -> int:
        slot = self.slots.get(tid)
        if slot is None:
            if not self.free:
                n = self.buf.shape[0]
                self.buf = np.concatenate([self.buf, np.zeros_like(self.buf)])
                self.valid = np.concatenate([self.valid, np.zeros_like(self.valid)])
                self.last_seen = np.concatenate([self.last_seen, np.full(n, -np.inf)])
                self.free = list(range(2 * n - 1, n - 1, -1))
            slot = self.free.pop()
            self.valid[slot] = False
            self.slots[tid] = slot
            self.first_seen[tid] = now
        return slot

    def age(self, track_ids) -> np.ndarray:
        """Seconds since each track was first seen (0 for unknown tracks)."""
        now = self.last_time if self.last_time is not None else 0.0
        return np.asarray([now - self.first_seen.get(int(t), now) for t in track_ids], np.float64)

    def update(self, time: float, track_ids, boxes, flow_stats: np.ndarray | None = None,
               energy: np.ndarray | None = None, focal_px: float = 0.0) -> np.ndarray:
        """Add this frame's tracks and return their features (N, len(FEATURES)) float32.
        focal_px: the camera's focal length in pixels (0: depth_speed is 0).
        flow_stats: (N,5) from region_flow_stats (px/frame) or None when no flow is at hand;
        energy: (N,3) from box_motion_energy or None."""
        time = float(time)
        if self.last_time is not None and time <= self.last_time:
            self.reset()  # a new stream or a time going backwards
        dt = None if self.last_time is None else time - self.last_time
        self.last_time = time
        self.pos = (self.pos + 1) % self.capacity
        self.times[self.pos] = time
        self.valid[:, self.pos] = False
        for tid in [t for t, s in self.slots.items() if self.last_seen[s] < time - self.forget_s]:
            slot = self.slots.pop(tid)
            self.first_seen.pop(tid, None)
            self.valid[slot] = False
            self.free.append(slot)
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(ids)
        if n == 0:
            return np.zeros((0, len(FEATURES)), np.float32)
        slots = np.asarray([self._slot(int(t), time) for t in ids])
        meas = np.zeros((n, _NCOL), np.float32)
        meas[:, _X] = (boxes[:, 0] + boxes[:, 2]) * 0.5
        meas[:, _Y] = boxes[:, 3]
        meas[:, _H] = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        meas[:, _W] = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
        meas[:, _TOP] = boxes[:, 1]
        if self.homography is not None:
            g = to_ground(self.homography, meas[:, [_X, _Y]])
            ok = np.isfinite(g).all(1)
            meas[:, _GX:_GY + 1] = np.where(ok[:, None], g, 0.0)
            meas[:, _HASG] = ok
        if flow_stats is not None and dt is not None and dt > 0:
            fs = np.asarray(flow_stats, np.float32).reshape(n, 5)
            meas[:, _FTOP:_FMY + 1] = fs[:, :4] / dt
            meas[:, _HASF] = fs[:, 4]
        if energy is not None and dt is not None and dt > 0:
            en = np.asarray(energy, np.float32).reshape(n, 3)
            meas[:, _ETOP:_EBOT + 1] = en[:, :2] / (30.0 * dt)  # per frame at 30 fps
            meas[:, _HASE] = en[:, 2]
        self.buf[slots, self.pos] = meas
        self.valid[slots, self.pos] = True
        self.last_seen[slots] = time
        return self._features(slots, time, focal_px)

    def _features(self, slots: np.ndarray, now: float, focal_px: float = 0.0) -> np.ndarray:
        order = (self.pos - np.arange(self.capacity)) % self.capacity  # newest first
        rel = now - self.times[order]                                    # (T,) seconds ago
        span_n = int(np.count_nonzero(rel <= self.long_s + 1e-6))       # only the long window's rows
        order, rel = order[:max(span_n, 2)], rel[:max(span_n, 2)]
        data = self.buf[slots][:, order].astype(np.float64)              # (M,T,C)
        valid = self.valid[slots][:, order] & np.isfinite(rel)[None]
        t = -rel
        t = np.where(np.isfinite(t), t, 0.0)
        w_s = (valid & (rel <= self.short_s + 1e-6)[None]).astype(np.float64)
        w_m = (valid & (rel <= self.medium_s + 1e-6)[None]).astype(np.float64)
        w_l = (valid & (rel <= self.long_s + 1e-6)[None]).astype(np.float64)
        m = len(slots)
        out = np.zeros((m, len(FEATURES)), np.float64)
        xy = data[:, :, [_X, _Y]]
        slope_s, _, _ = _fit(w_s, t, xy)
        n_s = np.maximum(w_s.sum(1), 1e-9)
        h_s = np.maximum((w_s * data[:, :, _H]).sum(1) / n_s, 1.0)
        shape = np.stack([data[:, :, _X], data[:, :, _Y], np.log(np.maximum(data[:, :, _H], 1.0)),
                          data[:, :, _H], data[:, :, _TOP], data[:, :, _W]], 2)
        slope_m, mean_m, std_m = _fit(w_m, t, shape)
        h_m = np.maximum(mean_m[:, 3], 1.0)
        out[:, 0] = np.hypot(slope_s[:, 0], slope_s[:, 1]) / h_s
        out[:, 1] = np.hypot(slope_m[:, 0], slope_m[:, 1]) / h_m
        out[:, 2] = np.abs(slope_m[:, 0]) / h_m
        out[:, 3] = np.abs(slope_m[:, 1]) / h_m
        out[:, 4] = np.abs(slope_m[:, 2])
        # long window: net displacement, path at step_s steps, extent
        n_l = np.maximum(w_l.sum(1), 1e-9)
        h_l = np.maximum((w_l * data[:, :, _H]).sum(1) / n_l, 1.0)
        idx = np.arange(len(order))
        last = np.where(w_l.any(1), (w_l * idx).max(1), 0).astype(int)  # oldest valid in window
        span = np.maximum(t[0] - t[last], 1e-9)
        rows = np.arange(m)
        disp = np.hypot(*(xy[rows, 0] - xy[rows, last]).T)
        out[:, 5] = np.where(last > 0, disp / span / h_l, 0.0)
        known = self.times[order][::-1]
        finite = np.diff(known[np.isfinite(known)])
        finite = finite[finite > 0]
        frame_dt = float(np.median(finite)) if finite.size else 1.0 / 30
        k = int(max(1, round(self.step_s / frame_dt)))
        if k < len(order):
            pair = w_l[:, :-k] * w_l[:, k:]
            step = np.hypot(*(xy[:, :-k] - xy[:, k:]).transpose(2, 0, 1))
            step_dt = np.maximum(t[:-k] - t[k:], 1e-9)
            npair = pair.sum(1)
            out[:, 6] = np.where(npair > 0, (pair * step / step_dt).sum(1) / np.maximum(npair, 1e-9) / h_l, 0.0)
        mean_xy = (w_l[:, :, None] * xy).sum(1) / n_l[:, None]
        sq = ((xy - mean_xy[:, None, :]) ** 2).sum(2)
        out[:, 7] = np.sqrt((w_l * sq).sum(1) / n_l) / h_l
        out[:, 8] = np.where(out[:, 6] > 1e-6, np.clip(out[:, 5] / np.maximum(out[:, 6], 1e-9), 0, 1), 0.0)
        if self.homography is not None:
            has_g = data[:, :, _HASG] > 0
            out[:, [0, 1, 2, 3, 5, 6, 7, 8]] = ground_motion(data[:, :, [_GX, _GY]], t, w_s * has_g, w_m * has_g,
                                                             w_l * has_g, k, self.person_height)
        out[:, 9] = std_m[:, 3] / h_m
        out[:, 10] = std_m[:, 4] / h_m
        out[:, 11] = std_m[:, 5] / h_m
        out[:, 12] = mean_m[:, 5] / h_m
        # flow: rows with flow in the short window
        wf = w_s * (data[:, :, _HASF] > 0)
        nf = wf.sum(1)
        has = nf > 0
        nf1 = np.maximum(nf, 1e-9)
        out[:, 13] = (wf * data[:, :, _FTOP]).sum(1) / nf1 / h_s
        out[:, 14] = (wf * data[:, :, _FBOT]).sum(1) / nf1 / h_s
        fm = np.stack([(wf * data[:, :, _FMX]).sum(1), (wf * data[:, :, _FMY]).sum(1)], 1) / nf1[:, None]
        out[:, 15] = np.hypot(fm[:, 0] - slope_s[:, 0], fm[:, 1] - slope_s[:, 1]) / h_s
        out[~has, 13:16] = 0.0
        out[:, 16] = nf / n_s
        we = w_s * (data[:, :, _HASE] > 0)
        ne = np.maximum(we.sum(1), 1e-9)
        out[:, 17] = (we * data[:, :, _ETOP]).sum(1) / ne
        out[:, 18] = (we * data[:, :, _EBOT]).sum(1) / ne
        out[:, 19] = np.clip(span / self.long_s, 0, 1)
        # a box growing at rate r is a body at depth Z = f m / h px approaching at r Z = r f m / h
        slope_l, _, _ = _fit(w_l, t, shape[:, :, 2:3])
        out[:, 20] = np.abs(slope_l[:, 0]) * focal_px / h_l
        out[:, 21] = np.maximum(out[:, 0], out[:, 20]) if self.homography is None else out[:, 0]
        out[:, 22:26] = depth_features(w_l[:, ::k] > 0, t[::k], shape[:, ::k, 2], data[:, ::k, _Y] / h_l[:, None],
                                       focal_px / h_l)
        if self.homography is not None:
            out[:, INDEX["approach_speed"]] = 0.0  # the ground speed already holds the motion in depth
        return out.astype(np.float32)

