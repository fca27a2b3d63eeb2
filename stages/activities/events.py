"""Zone and line events from tracks: zone enter / exit with dwell time, line crossings with
direction and counts, robust to id flicker.

A track's position is its foot point (bottom centre of the box). Decisions wait for `confirm`
frames so that jitter at a border does not toggle them:
- line: a foot point within `band` body heights of the line is on neither side (gait bob and
  box jitter along a line do not count); a side becomes the track's stable side after `confirm` consecutive frames on it; a
  crossing is counted when the stable side changes (so the foot point was on one side for
  `confirm` frames before and on the other for `confirm` frames after) and the step from the last
  point on the old side to the first on the new side meets the segment p1-p2.
- zone: inside after `confirm` frames inside (enter, timed at the first of them); outside after
  `confirm` frames outside (exit, with dwell = exit time - enter time).
- id flicker: a track id seen for the first time inherits the state (stable sides, zones, enter
  times) of a track that vanished within `link_gap_s` seconds, if the old track's foot point,
  extrapolated with its last velocity, lies within `link_radius` body heights of the new one. So a
  new id appearing right at the line where an old one vanished neither double-counts nor loses the
  crossing. Tracks vanished longer than that are dropped (zone exits with reason "lost").

Convention: points and polygons in image pixels (x right, y down); a line's positive side is
where cross(p2 - p1, p - p1) > 0 (the right-hand side looking from p1 to p2 on screen);
direction names: dirs["neg_to_pos"] and dirs["pos_to_neg"]; times in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Zone:
    name: str
    polygon: np.ndarray  # (K,2) pixels, K >= 3
    dwell_alert_s: float | None = None  # emit zone_dwell once a track has stayed this long


@dataclass
class Line:
    name: str
    p1: tuple
    p2: tuple
    dirs: dict = field(default_factory=lambda: {"neg_to_pos": "in", "pos_to_neg": "out"})


def side_of(p1, p2, pts: np.ndarray, band=0.0) -> np.ndarray:
    """+1 / -1 per point: the sign of cross(p2 - p1, p - p1); 0 for points within `band` pixels
    of the line (a scalar or one per point; with band 0, points on the line count as -1)."""
    d = np.subtract(p2, p1, dtype=np.float64)
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    dist = (d[0] * (pts[:, 1] - p1[1]) - d[1] * (pts[:, 0] - p1[0])) / max(float(np.hypot(*d)), 1e-12)
    side = np.where(dist > 0, 1, -1)
    return np.where(np.abs(dist) < band, 0, side)


def segments_meet(a, b, p1, p2) -> bool:
    """Whether the segment a-b meets the segment p1-p2 (touching counts)."""
    def cross(o, u, v):
        return (u[0] - o[0]) * (v[1] - o[1]) - (u[1] - o[1]) * (v[0] - o[0])
    d1, d2 = cross(p1, p2, a), cross(p1, p2, b)
    d3, d4 = cross(a, b, p1), cross(a, b, p2)
    return d1 * d2 <= 0 and d3 * d4 <= 0


def inside_polygon(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorized over points. poly (K,2), pts (N,2) -> (N,) bool."""
    poly = np.asarray(poly, np.float64)
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    xa, ya = poly[:, 0][None], poly[:, 1][None]
    xb, yb = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    straddle = (ya > y) != (yb > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = xa + (y - ya) * (xb - xa) / (yb - ya)
    return (straddle & (x < xc)).sum(1) % 2 == 1


@dataclass
class _LineState:
    stable: int = 0        # +1 / -1 once known, 0 before
    candidate: int = 0
    count: int = 0
    anchor: tuple | None = None   # last point on the stable side
    flip: tuple | None = None     # first point of the current run on the other side


@dataclass
class _ZoneState:
    inside: bool = False
    count: int = 0
    first: float = 0.0       # time of the first frame of the current run
    entered: float = 0.0
    alerted: bool = False


@dataclass
class _Track:
    lines: dict
    zones: dict
    point: np.ndarray
    velocity: np.ndarray
    height: float
    time: float


class EventDetector:
    """Line and zone events for one stream. Call `update` every frame (also with no tracks)."""

    def __init__(self, lines=(), zones=(), confirm: int = 3, link_gap_s: float = 1.0, link_radius: float = 0.6,
                 band: float = 0.04) -> None:
        if confirm < 1:
            raise ValueError(f"confirm: expected >= 1 frame, got {confirm}")
        if link_gap_s < 0 or link_radius < 0 or band < 0:
            raise ValueError(f"link_gap_s, link_radius, band: expected >= 0, got {link_gap_s}, {link_radius}, {band}")
        self.band = float(band)
        self.lines, self.zones = list(lines), list(zones)
        for z in self.zones:
            if np.asarray(z.polygon).reshape(-1, 2).shape[0] < 3:
                raise ValueError(f"zone {z.name!r}: expected a polygon of at least 3 points")
        self.confirm, self.link_gap_s, self.link_radius = int(confirm), float(link_gap_s), float(link_radius)
        self.reset()

    def reset(self) -> None:
        self.tracks: dict[int, _Track] = {}
        self.counts = {ln.name: {ln.dirs["neg_to_pos"]: 0, ln.dirs["pos_to_neg"]: 0} for ln in self.lines}
        self.links = 0

    def occupancy(self) -> dict[str, int]:
        return {z.name: sum(1 for t in self.tracks.values() if t.zones[z.name].inside) for z in self.zones}

    def dwell(self, now: float) -> dict[str, dict[int, float]]:
        """Seconds each track inside a zone has been there."""
        return {z.name: {tid: round(now - t.zones[z.name].entered, 3) for tid, t in self.tracks.items()
                         if t.zones[z.name].inside} for z in self.zones}

    def _new_state(self, tid: int, point, height: float, time: float, present: set) -> _Track:
        best, best_d = None, None
        for old_id, old in self.tracks.items():
            gap = time - old.time
            if old_id in present or gap <= 0 or gap > self.link_gap_s:
                continue
            guess = old.point + old.velocity * gap
            d = np.hypot(*(guess - point)) / max(1.0, 0.5 * (old.height + height))
            if d <= self.link_radius and (best_d is None or d < best_d):
                best, best_d = old_id, d
        if best is not None:
            self.links += 1
            return self.tracks.pop(best)
        return _Track({ln.name: _LineState() for ln in self.lines}, {z.name: _ZoneState() for z in self.zones},
                      np.asarray(point, np.float64), np.zeros(2), height, time)

    def update(self, index: int, time: float, track_ids, boxes) -> list[dict]:
        """This frame's tracks -> events (dicts, see stages/events.py)."""
        ids = [int(t) for t in np.asarray(track_ids).reshape(-1)]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], 1) if len(ids) else np.zeros((0, 2))
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        present = set(ids)
        events: list[dict] = []
        new = [k for k, tid in enumerate(ids) if tid not in self.tracks]
        for k in new:  # link new ids to vanished tracks first (nearest first)
            self.tracks[ids[k]] = self._new_state(ids[k], feet[k], float(heights[k]), time, present)
        sides = {ln.name: side_of(ln.p1, ln.p2, feet, self.band * heights) for ln in self.lines}
        insides = {z.name: inside_polygon(z.polygon, feet) for z in self.zones}
        base = {"index": int(index), "time": round(float(time), 4)}
        for k, tid in enumerate(ids):
            tr = self.tracks[tid]
            p = (float(feet[k, 0]), float(feet[k, 1]))
            gap = time - tr.time
            if gap > 0:
                tr.velocity = (np.asarray(p) - tr.point) / gap
            tr.point, tr.height, tr.time = np.asarray(p), float(heights[k]), time
            for ln in self.lines:
                ev = self._line_step(ln, tr.lines[ln.name], int(sides[ln.name][k]), p)
                if ev:
                    events.append({"type": "line_cross", "line": ln.name, "direction": ev, "track_id": tid,
                                   **base, "count": self.counts[ln.name][ev]})
            for z in self.zones:
                events += self._zone_step(z, tr.zones[z.name], bool(insides[z.name][k]), tid, time, base)
        for tid in [t for t, tr in self.tracks.items() if time - tr.time > self.link_gap_s]:
            tr = self.tracks.pop(tid)
            for z in self.zones:
                st = tr.zones[z.name]
                if st.inside:
                    events.append({"type": "zone_exit", "zone": z.name, "track_id": tid, **base,
                                   "dwell": round(tr.time - st.entered, 4), "reason": "lost"})
        return events

    def _line_step(self, ln: Line, st: _LineState, side: int, p) -> str | None:
        if side == 0:  # within the band: no evidence either way
            return None
        if side == st.stable:
            st.candidate, st.count, st.anchor, st.flip = side, 0, p, None
            return None
        if side != st.candidate:
            st.candidate, st.count, st.flip = side, 0, p
        st.count += 1
        if st.count < self.confirm:
            return None
        old, st.stable, st.count = st.stable, side, 0
        crossed = old != 0 and st.anchor is not None and segments_meet(st.anchor, st.flip, ln.p1, ln.p2)
        st.anchor, st.flip = p, None
        if not crossed:
            return None
        direction = ln.dirs["neg_to_pos" if side > 0 else "pos_to_neg"]
        self.counts[ln.name][direction] += 1
        return direction

    def _zone_step(self, z: Zone, st: _ZoneState, inside: bool, tid: int, time: float, base: dict) -> list[dict]:
        out = []
        if inside == st.inside:
            st.count = 0
        else:
            if st.count == 0:
                st.first = time
            st.count += 1
            if st.count >= self.confirm:
                st.inside, st.count = inside, 0
                if inside:
                    st.entered, st.alerted = st.first, False
                    out.append({"type": "zone_enter", "zone": z.name, "track_id": tid, **base})
                else:
                    out.append({"type": "zone_exit", "zone": z.name, "track_id": tid, **base,
                                "dwell": round(st.first - st.entered, 4)})
        if st.inside and z.dwell_alert_s is not None and not st.alerted and time - st.entered >= z.dwell_alert_s:
            st.alerted = True
            out.append({"type": "zone_dwell", "zone": z.name, "track_id": tid, **base,
                        "dwell": round(time - st.entered, 4)})
        return out
