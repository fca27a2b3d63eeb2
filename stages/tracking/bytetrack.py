"""ByteTrack-style association (Zhang et al., ECCV 2022) on SORT's filter and assignment code.

Every detection box counts, also the low-score ones: round 1 matches high-score detections
(score >= high_threshold) to all tracks by IoU; round 2 matches the low-score detections
(low_threshold <= score < high_threshold) to the tracks still unmatched that were matched in
the previous processed frame (so a weak box extends a track through an occlusion but never
revives a lost one). Only unmatched high-score detections with score >= new_track_threshold
start tracks, and a track never reported is dropped as soon as it misses a frame (ByteTrack's
"unconfirmed" tracks). Prediction, correction, ids and the output rule are SortTracker's.

Convention: as SortTracker; `score` (N,) in [0, 1] decides the rounds (None: all high).
"""
from __future__ import annotations

import numpy as np

from .assignment import associate
from .sort import ID, SINCE, SortTracker, TrackOutput, check_unit


class ByteTracker(SortTracker):
    """SORT plus a second association round for low-score detections."""

    def __init__(self, max_age: int = 30, min_hits: int = 3, iou_threshold: float = 0.3,
                 per_class: bool = False, high_threshold: float = 0.6, low_threshold: float = 0.1,
                 low_iou_threshold: float = 0.5, new_track_threshold: float = 0.7) -> None:
        super().__init__(max_age, min_hits, iou_threshold, per_class)
        self.high_threshold = check_unit("high_threshold", high_threshold)
        self.low_threshold = check_unit("low_threshold", low_threshold)
        self.low_iou_threshold = check_unit("low_iou_threshold", low_iou_threshold)
        self.new_track_threshold = check_unit("new_track_threshold", new_track_threshold)
        if self.low_threshold > self.high_threshold:
            raise ValueError(f"low_threshold: expected <= high_threshold ({self.high_threshold}), "
                             f"got {self.low_threshold}")

    def update(self, xyxy, score=None, class_id=None, frame_gap: int = 1) -> TrackOutput:
        self._gap = frame_gap
        out = super().update(xyxy, score, class_id, frame_gap)
        t = self.table
        if len(t):
            unconfirmed_missed = (t[:, ID] == 0) & (t[:, SINCE] > 0)
            if unconfirmed_missed.any():
                self.table = t[~unconfirmed_missed]
        return out

    def _associate(self, boxes, z, score, class_id, predicted) -> tuple[np.ndarray, np.ndarray]:
        n = boxes.shape[0]
        score = np.ones(n) if score is None else score
        high = np.flatnonzero(score >= self.high_threshold)
        low = np.flatnonzero((score >= self.low_threshold) & (score < self.high_threshold))
        cls = None if class_id is None else class_id[high]
        m1, free_high, free_trk = associate(self._similarity(boxes[high], z[high], cls, predicted),
                                            self.iou_threshold)
        matches = [np.stack([high[m1[:, 0]], m1[:, 1]], axis=1)]
        recent = free_trk[self.table[free_trk, SINCE] <= self._gap]   # matched in the previous frame
        if len(low) and len(recent):
            cls = None if class_id is None else class_id[low]
            m2, _, _ = associate(self._similarity(boxes[low], z[low], cls, predicted, recent),
                                 self.low_iou_threshold)
            matches.append(np.stack([low[m2[:, 0]], recent[m2[:, 1]]], axis=1))
        spawn = high[free_high]
        return np.concatenate(matches), spawn[score[spawn] >= self.new_track_threshold]
