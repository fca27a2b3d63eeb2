"""SORT (Bewley et al., ICIP 2016) with the usual complaints fixed.

Arrays in, arrays out, one short class you can read top to bottom. What it keeps from SORT:
the state [cx, cy, s, r, vx, vy, vs], the constant-velocity Kalman filter with SORT's noise (and
its rule that a coasting box never predicts a negative area), IoU cost with Hungarian assignment,
and the output rule (below), so that MOT scores can be compared: on the scored MOT15 sequences
the tracks are SORT's, box for box. One deliberate difference: pairs under iou_threshold are
gated out before the Hungarian step (assignment.py), where SORT solves on the raw IoU and can give
up a valid match for a pair it then rejects. What it changes besides: ids are counted per tracker instance (no class-level counter) and `reset()`
starts over; every output row carries the index of the detection that updated it, so its class and
score are the detection's; `frame_gap` tells the filter how many frames passed since the last
call (frames dropped upstream) so it predicts that many steps; `per_class` keeps tracks from
matching detections of another class. All tracks are predicted and updated together (kalman.py).

Call `update()` once per frame, also with no detections (that is how tracks age and die).

Output rule (SORT's): a track is reported in a frame only when a detection updated it in that
frame, and either its hit streak (frames in a row it was matched after the detection that created
it) is >= min_hits, or the tracker is still within its first min_hits frames. A track is deleted
once it has gone more than max_age frames without a detection. Track ids are handed out when a
track is first reported, so reported ids are 1, 2, 3, ... with no gaps.
"""
from __future__ import annotations

import numpy as np

from . import kalman
from .assignment import associate, iou_matrix


# All live tracks are rows of one float64 table, so that predicting, dropping, adding, gathering
# and scattering tracks are single array operations. Columns:
X, COV, ONE = slice(0, 7), slice(7, 17), 17      # Kalman state, covariance (kalman.py), constant 1
HITS, STREAK, SINCE, CLASS, ID, DET = range(18, 24)
WIDTH = 24
# ID: 0 until first reported; HITS: detections matched in all; STREAK: matched in a row (SORT's
# hit_streak); SINCE: frames since the last detection; CLASS: class of the last detection;
# DET: row of the detection that last updated it (valid when SINCE == 0).


class TrackOutput:
    """Tracks reported in one frame (read-only by convention; a plain class, cheap to build).

    Convention: xyxy (M,4) float64 pixels (the filter's posterior box); track_id (M,) int64 >= 1;
    det_index (M,) int64 row of the detection (in this frame's input) that updated the track.
    """

    __slots__ = ("xyxy", "track_id", "det_index")

    def __init__(self, xyxy: np.ndarray, track_id: np.ndarray, det_index: np.ndarray) -> None:
        self.xyxy, self.track_id, self.det_index = xyxy, track_id, det_index

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def __repr__(self) -> str:
        return f"TrackOutput(track_id={self.track_id.tolist()}, det_index={self.det_index.tolist()})"


def check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def check_unit(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: expected 0 < x <= 1, got {value!r}")
    return float(value)


class SortTracker:
    """SORT with per-instance ids, reset(), frame gaps and optional per-class tracking.

    Convention: `update(xyxy (N,4) pixels, score (N,) or None, class_id (N,) or None, frame_gap>=1)`
    -> TrackOutput; ages count source frames (a gap of 3 ages every track by 3). Detections with
    no area (or not finite) are ignored.
    """

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3,
                 per_class: bool = False) -> None:
        self.max_age = check_int("max_age", max_age, 0)
        self.min_hits = check_int("min_hits", min_hits, 0)
        self.iou_threshold = check_unit("iou_threshold", iou_threshold)
        self.per_class = bool(per_class)
        self._step = np.eye(WIDTH)                       # one predict step on table rows
        self._step[:ONE + 1, :ONE + 1] = kalman.predict_matrix()
        self._step[ONE, SINCE] = 1.0
        self._template = np.zeros(WIDTH)                 # a new track before its measurement
        self._template[COV] = kalman.initiate(np.zeros((1, 4)))[1][0]
        self._template[ONE] = 1.0
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again from 1."""
        self.table = np.zeros((0, WIDTH))
        self.frame_count = 0
        self.next_id = 1

    def __len__(self) -> int:
        """Live tracks (reported or not)."""
        return int(self.table.shape[0])

    def update(self, xyxy, score=None, class_id=None, frame_gap: int = 1) -> TrackOutput:
        """Advance one processed frame: predict `frame_gap` steps, match, correct, start, report."""
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        n = boxes.shape[0]
        if score is not None:
            score = np.asarray(score, np.float64)
            if score.shape != (n,):
                raise ValueError(f"update: score needs shape ({n},) (a row per box), got {score.shape}")
        if class_id is not None:
            class_id = np.asarray(class_id, np.float64)
            if class_id.shape != (n,):
                raise ValueError(f"update: class_id needs shape ({n},) (a row per box), got {class_id.shape}")
        gap = frame_gap if frame_gap == 1 else check_int("frame_gap", frame_gap, 1)
        z = boxes @ kalman.CORNERS_TO_CENTRE           # [cx, cy, w, h]
        if n and not z[:, 2:].min() > 0:                # no area, or NaN: leave such rows out
            keep = np.flatnonzero((z[:, 2:] > 0).all(axis=1))
            out = self.update(boxes[keep], None if score is None else score[keep],
                              None if class_id is None else class_id[keep], gap)
            return TrackOutput(out.xyxy, out.track_id, keep[out.det_index])
        kalman.size_to_scale(z)
        self.frame_count += gap
        predicted = self._predict(gap)
        n_tracks = len(self.table)
        matches, spawn = self._associate(boxes, z, score, class_id, predicted)
        shown = []
        if len(matches):
            shown.append(self._correct(z, class_id, matches))
        if len(spawn):
            shown.append(self._spawn(z, class_id, spawn))
        if len(matches) < n_tracks:                     # some tracks missed: delete the too old
            t = self.table
            if t[:, SINCE].max() > self.max_age:
                self.table = t[t[:, SINCE] <= self.max_age]
        return self._report(shown)

    # ---- steps (ByteTracker overrides _associate) ----
    def _predict(self, gap: int) -> np.ndarray:
        """Predict every track `gap` frames ahead; returns their boxes (N,4)."""
        t = self.table
        if gap > 1:  # tracks that would be deleted even if matched: skip their steps
            t = t[t[:, SINCE] + gap <= self.max_age + 1]
        if not len(t):
            self.table = t
            return np.zeros((0, 4))
        t[:, STREAK] *= t[:, SINCE] == 0
        self.table = t = self._ahead(t, gap)
        return kalman.x_to_xyxy(t)

    def _ahead(self, t: np.ndarray, gap: int) -> np.ndarray:
        """Table rows `gap` predict steps ahead (t's velocity column may be zeroed in place)."""
        for _ in range(gap):
            ahead = t @ self._step
            if not ahead[:, 2].min() > 0:            # SORT: if s + vs <= 0, predict with vs = 0
                t[ahead[:, 2] <= 0, 6] = 0.0
                ahead = t @ self._step
            t = ahead
        if not t[:, 2:4].min() > 0:                  # s * r <= 0 has no box: SORT drops the track
            t = t[(t[:, 2:4] > 0).all(axis=1)]
        return t

    def peek(self, frame_gap: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where the next `update(..., frame_gap)` will predict the live tracks, state unchanged.
        Convention: -> boxes (M,4) float64 xyxy px, track ids (M,) int64 (0: not reported yet),
        hits (M,) int64 (detections matched after the one that started it), frames since the last detection (M,) int64
        counted at the next update (1 for a track matched in the last frame, gap 1)."""
        gap = frame_gap if frame_gap == 1 else check_int("frame_gap", frame_gap, 1)
        t = self.table[self.table[:, SINCE] + gap <= self.max_age + 1] if gap > 1 else self.table.copy()
        if not len(t):
            return np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        t = self._ahead(t, gap)
        return kalman.x_to_xyxy(t), t[:, ID].astype(np.int64), t[:, HITS].astype(np.int64), t[:, SINCE].astype(np.int64)

    def _similarity(self, boxes, z, class_id, predicted, tracks=None) -> np.ndarray:
        """IoU of detections (rows) with predicted tracks (columns: all, or the given rows)."""
        t = self.table if tracks is None else self.table[tracks]
        if tracks is not None:
            predicted = predicted[tracks]
        iou = iou_matrix(boxes, predicted, z[:, 2], t[:, 2])
        if self.per_class and class_id is not None:
            iou[class_id[:, None] != t[None, :, CLASS]] = 0.0
        return iou

    def _associate(self, boxes, z, score, class_id, predicted) -> tuple[np.ndarray, np.ndarray]:
        """(matches (M,2) [detection, track], unmatched detections that start new tracks)."""
        matches, free, _ = associate(self._similarity(boxes, z, class_id, predicted), self.iou_threshold)
        return matches, free

    def _correct(self, z, class_id, matches) -> np.ndarray:
        """Update the matched tracks; returns their rows that are reported in this frame."""
        d, k = matches[:, 0], matches[:, 1]
        rows = self.table[k]
        kalman.update(rows[:, X], rows[:, COV], z[d])
        rows[:, HITS:STREAK + 1] += 1.0
        rows[:, SINCE] = 0.0
        rows[:, DET] = d
        if class_id is not None and not self.per_class:
            rows[:, CLASS] = class_id[d]
        show = slice(None) if self.frame_count <= self.min_hits else rows[:, STREAK] >= self.min_hits
        shown = rows[show]
        if len(shown) and shown[:, ID].min() == 0:     # first report: hand out ids
            self._name(shown)
            rows[show, ID] = shown[:, ID]
        self.table[k] = rows
        return shown

    def _spawn(self, z, class_id, rows) -> np.ndarray:
        """Start tracks; returns their rows when reported at once (start-up frames, min_hits 0)."""
        new = np.tile(self._template, (len(rows), 1))
        new[:, :4] = z[rows]
        new[:, DET] = rows
        if class_id is not None:
            new[:, CLASS] = class_id[rows]
        shown = new[:0]
        if self.frame_count <= self.min_hits or self.min_hits == 0:
            self._name(new)
            shown = new
        self.table = np.concatenate([self.table, new])
        return shown

    def _name(self, rows: np.ndarray) -> None:
        """Give ids, in row order, to the rows that have none (in place)."""
        fresh = rows[:, ID] == 0
        count = int(fresh.sum())
        rows[fresh, ID] = np.arange(self.next_id, self.next_id + count)
        self.next_id += count

    @staticmethod
    def _report(shown: list) -> TrackOutput:
        if not shown:
            return TrackOutput(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, np.int64))
        rows = shown[0] if len(shown) == 1 else np.concatenate(shown)
        id_det = rows[:, ID:].astype(np.int64)
        return TrackOutput(kalman.x_to_xyxy(rows), id_det[:, 0], id_det[:, 1])
