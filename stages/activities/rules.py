"""The rule classifier (thresholds from the YAML) and the label hysteresis shared by all classifiers.

The rules are a small decision tree on the window features, made soft so that they give class
scores like a learned model (and the hysteresis can use a margin):

    (speed: the image-plane speed combined with the speed in depth, hypot(speed, depth), where
    depth = approach_speed - depth_deadzone - depth_noise * approach_noise, at least 0: the box's
    robust scale rate as far as its foot confirms it (a waving arm or a raised sign scales the box
    with the foot still), less what its own noise could explain (detector jitter))
    fast (speed >= run_speed)                                  -> running
    else moving (speed >= walk_speed)                          -> walking
    else the upper box moves more than the lower box (motion energy top - bottom >= wave_energy:
         an arm moves, the legs and body do not)               -> waving
    else drifting (speed >= move_speed, or legs moving: energy bottom >= leg_energy, or it has
         stayed within `loiter_extent` body heights for `loiter_s` seconds while still moving
         a little)                                             -> loitering
    else                                                       -> standing

Each gate is a logistic of (x - threshold) / (softness * threshold), so a value right at a
threshold scores 0.5 for both sides.

Convention: features (N, len(FEATURES)) float32 as stages.activities.features computes them; scores
(N, len(LABELS)) float32 rows summing to 1, in LABELS order; speeds in body heights per second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import LABELS
from .features import INDEX

_L = {name: i for i, name in enumerate(LABELS)}


@dataclass
class RuleThresholds:
    """Thresholds of the rule classifier (see the module docstring). Units: bh/s, bh, s."""

    run_speed: float = 1.15
    walk_speed: float = 0.34
    move_speed: float = 0.14
    wave_energy: float = 0.25
    leg_energy: float = 0.52
    loiter_extent: float = 0.12
    loiter_s: float = 3.0
    softness: float = 0.15
    depth_deadzone: float = 0.05
    depth_noise: float = 1.0

    def __post_init__(self) -> None:
        for name in ("run_speed", "walk_speed", "move_speed", "wave_energy", "leg_energy", "loiter_extent",
                     "loiter_s", "softness"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        for name in ("depth_deadzone", "depth_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if not self.move_speed < self.walk_speed < self.run_speed:
            raise ValueError(f"speeds: expected move_speed < walk_speed < run_speed, got "
                             f"{self.move_speed}, {self.walk_speed}, {self.run_speed}")


def _gate(x: np.ndarray, threshold: float, softness: float) -> np.ndarray:
    z = (x - threshold) / (softness * threshold)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class RuleClassifier:
    """Scores from the current frame's window features (the windows live in the features)."""

    labels = LABELS
    history = 1  # feature rows it needs per track (the newest only)

    def __init__(self, thresholds: RuleThresholds | None = None, long_s: float = 3.0) -> None:
        self.t = thresholds or RuleThresholds()
        if not 0 < self.t.loiter_s <= long_s:
            raise ValueError(f"loiter_s: expected 0 < loiter_s <= the long window ({long_s} s), got {self.t.loiter_s}")
        self.need_fill = self.t.loiter_s / long_s

    def scores(self, seq: np.ndarray) -> np.ndarray:
        """seq (N,T,F) per-track feature sequences, newest last (only the newest is used)."""
        f = np.asarray(seq, np.float64)[:, -1, :]
        t, s = self.t, self.t.softness
        depth = np.maximum(0.0, f[:, INDEX["approach_speed"]] - t.depth_deadzone
                           - t.depth_noise * f[:, INDEX["approach_noise"]])
        speed = np.hypot(f[:, INDEX["speed"]], depth)
        g_run = _gate(speed, t.run_speed, s)
        g_walk = _gate(speed, t.walk_speed, s)
        g_move = _gate(speed, t.move_speed, s)
        # "for a long time in a small area, still moving a little": loitering from the long window
        stayed = _gate(f[:, INDEX["fill"]], self.need_fill, 0.05) * \
            (1.0 - _gate(f[:, INDEX["extent_long"]], t.loiter_extent, s)) * \
            _gate(f[:, INDEX["path_long"]], t.move_speed, s)
        g_legs = _gate(f[:, INDEX["energy_bottom"]], t.leg_energy, s)
        g_loiter = 1.0 - (1.0 - g_move) * (1.0 - stayed) * (1.0 - g_legs)
        g_wave = _gate(f[:, INDEX["energy_top"]] - f[:, INDEX["energy_bottom"]], t.wave_energy, s)
        out = np.zeros((len(f), len(LABELS)))
        out[:, _L["running"]] = g_run
        out[:, _L["walking"]] = (1 - g_run) * g_walk
        rest = (1 - g_run) * (1 - g_walk)
        out[:, _L["waving"]] = rest * g_wave
        slow = rest * (1 - g_wave)
        out[:, _L["loitering"]] = slow * g_loiter
        out[:, _L["standing"]] = slow * (1 - g_loiter)
        return out.astype(np.float32)


class Hysteresis:
    """Per-track label smoothing: a track's label changes to a new one only after that label has
    been the best scorer for `k` consecutive updates, or at once when it beats the current label's
    score by at least `margin`. A new track takes its first best label at once.

    Convention: scores (N, C) rows in class order; labels are class indices; `update` returns the
    label per row and the changes [(track_id, old, new)] (old is -1 for a new track)."""

    def __init__(self, k: int = 5, margin: float = 0.5) -> None:
        if k < 1:
            raise ValueError(f"k: expected >= 1, got {k}")
        if not 0 < margin <= 1:
            raise ValueError(f"margin: expected 0 < margin <= 1, got {margin}")
        self.k, self.margin = int(k), float(margin)
        self.state: dict[int, list] = {}  # tid -> [label, candidate, count]

    def reset(self) -> None:
        self.state.clear()

    def forget(self, track_id: int) -> int | None:
        """Drop a track; returns its last label (or None)."""
        st = self.state.pop(int(track_id), None)
        return None if st is None else st[0]

    def update(self, track_ids, scores: np.ndarray):
        scores = np.asarray(scores, np.float64)
        labels, changes = np.zeros(len(scores), np.int64), []
        for row, tid in enumerate(np.asarray(track_ids).tolist()):
            best = int(np.argmax(scores[row]))
            st = self.state.get(tid)
            if st is None:
                self.state[tid] = [best, best, 0]
                labels[row] = best
                changes.append((tid, -1, best))
                continue
            cur = st[0]
            if best == cur:
                st[1], st[2] = cur, 0
            elif scores[row, best] - scores[row, cur] >= self.margin:
                st[:] = [best, best, 0]
            else:
                st[2] = st[2] + 1 if st[1] == best else 1
                st[1] = best
                if st[2] >= self.k:
                    st[:] = [best, best, 0]
            if st[0] != cur:
                changes.append((tid, cur, st[0]))
            labels[row] = st[0]
        return labels, changes
