"""The `track` stage: SORT (or ByteTrack-style) multi-object tracking of Frame.detections.

Reads `detections`, writes `tracks`: Frame.detections becomes a new Detections of the tracks
reported in this frame, each row the detection that updated the track (its class, score and
extra data kept) with `track_id` filled, `data["det_index"]` its row in the detector's output,
and by default the Kalman filter's box (`box: filtered`, as SORT reports).

Output rule (SORT's, kept for MOT-score parity): a track is reported only in frames where a
detection updated it, once it has been matched `min_hits` frames in a row after the detection
that started it (or while the stream is in its first `min_hits` frames); it is deleted after
more than `max_age` frames without a detection. So a new object appears after min_hits + 1
frames, and a track shows no box in the frames it coasts through.

Frames dropped upstream are seen as jumps of Frame.index: the filter then predicts that many
steps and ages tracks by as many frames. An index that goes backwards (a new stream) resets the
tracker. One stage instance tracks one source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.frame import Detections, Frame
from pipeline.params import param
from pipeline.stage import Stage, StageContext
from stages.tracking.bytetrack import ByteTracker
from stages.tracking.sort import SortTracker

_DEFAULT_MAX_AGE = {"sort": 1, "bytetrack": 30}


@dataclass
class TrackParams:
    algorithm: str = param("sort", choices=("sort", "bytetrack"),
                           doc="sort: one IoU association round; bytetrack: a second round for low-score detections")
    max_age: int | None = param(None, ge=0, doc="frames a track survives without a detection; "
                                "null: the algorithm's usual value (sort 1, bytetrack 30)")
    min_hits: int = param(3, ge=0, doc="matches in a row, after the detection that starts a track, before it is "
                          "reported (in a stream's first min_hits frames tracks are reported at once)")
    iou_threshold: float = param(0.3, gt=0, le=1, doc="least IoU of a detection with a predicted track to match it")
    per_class: bool = param(False, doc="match detections only to tracks of their own class")
    high_threshold: float = param(0.6, gt=0, le=1, doc="bytetrack: detections scoring at least this match in round 1")
    low_threshold: float = param(0.1, gt=0, le=1, doc="bytetrack: lower scores are ignored; [low, high) go to round 2")
    low_iou_threshold: float = param(0.5, gt=0, le=1, doc="bytetrack: least IoU to match in round 2")
    new_track_threshold: float = param(0.7, gt=0, le=1, doc="bytetrack: least score of a detection to start a track")
    box: str = param("filtered", choices=("filtered", "detection"),
                     doc="box reported: the Kalman filter's (SORT) or the matched detection's own")
    keep_untracked: bool = param(False, doc="also pass on the detections not reported as tracks, with track_id -1")
    split: bool = param(False, doc="before matching, split a detection (a motion blob) that holds the predicted "
                        "boxes of two or more confirmed tracks into one box per track, and join fragments that lie "
                        "inside one track's box (stages/tracking/split.py); uses Frame.mask when present")
    split_cover: float = param(0.6, gt=0, le=1, doc="split: a track is in a blob that holds this fraction of its "
                               "predicted box; a fragment is in a track's box when this fraction of it is")
    split_same: float = param(0.7, gt=0, le=1, doc="split: two tracks whose predicted boxes share this fraction of "
                              "the narrower one's columns count as one (the wider, else the one with fewer hits, "
                              "is left out: torso and legs of one person, a hidden person coasting)")
    split_snap: float = param(0.2, ge=0, le=1, doc="split: a box whose edge is within this fraction of its size of "
                              "the outermost is moved onto the blob's edge")
    split_min_fill: float = param(0.2, ge=0, le=1, doc="split: a track box with less foreground (Frame.mask) is "
                                  "left out (0: no check)")
    split_join: bool = param(True, doc="split: also join fragments that lie inside one track's predicted box")
    split_max_since: int = param(2, ge=0, doc="split: only tracks reported and matched within this many frames")

    def validate(self) -> list[str]:
        if self.low_threshold > self.high_threshold:
            return [f"low_threshold: expected <= high_threshold ({self.high_threshold}), got {self.low_threshold}"]
        return []


def build_tracker(params: TrackParams) -> SortTracker:
    """The tracker kernel described by the stage's params."""
    max_age = _DEFAULT_MAX_AGE[params.algorithm] if params.max_age is None else params.max_age
    common = dict(max_age=max_age, min_hits=params.min_hits, iou_threshold=params.iou_threshold,
                  per_class=params.per_class)
    if params.algorithm == "bytetrack":
        return ByteTracker(**common, high_threshold=params.high_threshold, low_threshold=params.low_threshold,
                           low_iou_threshold=params.low_iou_threshold,
                           new_track_threshold=params.new_track_threshold)
    return SortTracker(**common)


class TrackStage(Stage):
    type_name = "track"
    host_stage = True   # numpy/OpenCV work: a worker process helps on a GPU run too
    input_views = True  # keeps no input array past process() (Stage.input_views)
    Params = TrackParams
    reads = frozenset({"detections"})
    writes = frozenset({"tracks"})

    def __init__(self, params: TrackParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self.tracker = build_tracker(self.params)
        if self.params.split:
            self.optional_reads = frozenset({"mask"})
        self.last_detections: Detections | None = None  # what the tracker matched in the last frame (after split)
        self.splits = 0
        self.last_index: int | None = None
        self.resets = 0
        self.dropped_frames = 0

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        self.tracker.reset()
        self.last_index = None

    def process(self, frame: Frame) -> Frame:
        gap = 1 if self.last_index is None else frame.index - self.last_index
        if gap <= 0:
            if self.context is not None:
                self.context.logger.warning("%s: frame index went from %d to %d; tracks reset",
                                            self.name, self.last_index, frame.index)
            self.tracker.reset()
            self.resets += 1
            gap = 1
        self.dropped_frames += gap - 1
        self.last_index = frame.index
        dets = frame.detections if frame.detections is not None else Detections.empty()
        if self.params.split and len(dets):
            dets = self._split(dets, frame.mask, gap)
        self.last_detections = dets
        out = self.tracker.update(dets.xyxy, dets.score, dets.class_id, frame_gap=gap)
        tracks = dets[out.det_index]
        xyxy = out.xyxy.astype(np.float32) if self.params.box == "filtered" else tracks.xyxy
        tracks = tracks.replace(xyxy=xyxy, track_id=out.track_id).with_data(det_index=out.det_index)
        if self.params.keep_untracked:
            rest = np.setdiff1d(np.arange(len(dets)), out.det_index)
            untracked = dets[rest]
            untracked = untracked.replace(track_id=np.full(len(rest), -1, np.int64)).with_data(det_index=rest)
            tracks = Detections.concatenate([tracks, untracked])
        frame.detections = tracks
        return frame

    def _split(self, dets: Detections, mask, gap: int) -> Detections:
        """Detections split/joined by the confirmed tracks' predictions (stages/tracking/split.py)."""
        from stages.tracking.split import box_fill, split_by_tracks

        p = self.params
        pred, ids, hits, since = self.tracker.peek(gap)
        ok = (ids > 0) & (since <= p.split_max_since + gap)
        if ok.sum() == 0:
            return dets
        boxes, origin = split_by_tracks(dets.xyxy, pred[ok], hits[ok], mask, p.split_cover, p.split_same,
                                        p.split_snap, p.split_min_fill, p.split_join)
        if len(origin) == len(dets) and (origin == np.arange(len(dets))).all():
            return dets
        self.splits += 1
        out = dets[origin].replace(xyxy=boxes)
        if mask is not None and "fill" in out.data:
            fill = box_fill(mask, boxes).astype(np.float32)
            area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
            out = out.with_data(fill=fill, pixels=np.rint(fill * area).astype(out.data.get("pixels", fill).dtype))
        return out

    def summary(self) -> dict:
        out = {"algorithm": self.params.algorithm, "tracks": self.tracker.next_id - 1,
               "live": len(self.tracker), "dropped_frames": self.dropped_frames, "resets": self.resets}
        if self.params.split:
            out["split_frames"] = self.splits
        return out
