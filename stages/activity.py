"""The `activity` stage: what each tracked object is doing, over a sliding window of its track.

Reads `tracks` (and, when present, the dense `flow` or the per-track `track_flow` statistics);
writes `activities` (Frame.activities: track_id -> label, for tracks at least `min_age_s` old) and
`events` (activity_start / activity_end, appended to Frame.events).

Features (stages.activities.features) are scale-invariant: speed in body heights per second from
the foot point and the frames' times, speed towards or away from the camera from the box's robust
scale rate where the foot confirms it (`focal`), net displacement, area covered and path
straightness over a long window (loitering), box shape oscillation, and the flow spread in the upper and lower box
relative to the box's own motion (waving: limbs move, body still). A classifier turns them into
class scores (`rules`: thresholds below, the default; `temporal`: a small causal conv net trained
with `vidpipe train activity`), and a hysteresis keeps labels from flickering: a label changes
only after the new one wins `hysteresis_k` frames in a row, or at once with a score margin of
`hysteresis_margin`.

Ground-plane calibration (`ground`, off by default): four image points of the ground and their
ground coordinates in metres give the image -> ground homography (stages.activities.ground); the
foot point's motion is then measured on the ground in metres and divided by `person_height`, so the
speeds stay in body heights per second (every threshold and the temporal weights keep their units)
but a walk towards or away from a high camera is as fast as one across the view (see
stages.activities.features for which features move to the ground).

Events: {"type": "activity_start", "track_id", "activity", "index", "time"} and
{"type": "activity_end", ..., "duration": seconds, "reason": "changed" | "lost"}.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.frame import Frame
from pipeline.params import field_file_errors, param
from pipeline.stage import Stage, StageContext
from stages.activities import LABELS
from stages.activities.features import FEATURES, FeatureExtractor, box_motion_energy, region_flow_stats
from stages.activities.ground import ground_homography
from stages.activities.rules import Hysteresis, RuleClassifier, RuleThresholds


@dataclass
class RulesParams:
    run_speed: float = param(1.15, gt=0, doc="running at or above this speed, body heights per second")
    walk_speed: float = param(0.34, gt=0, doc="walking at or above this speed (bh/s)")
    move_speed: float = param(0.14, gt=0, doc="below walk_speed: loitering at or above this speed (or with "
                              "moving legs), else standing or waving (bh/s)")
    wave_energy: float = param(0.25, gt=0, doc="waving when slow and the motion energy of the upper box exceeds "
                               "the lower box's by this much (contrast units per frame at 30 fps)")
    leg_energy: float = param(0.52, gt=0, doc="loitering when slow but the lower box's motion energy (legs) is "
                              "at least this")
    loiter_extent: float = param(0.12, gt=0, doc="loitering also when, for loiter_s, the foot point stayed "
                                 "within this RMS radius (body heights) while moving a little")
    loiter_s: float = param(3.0, gt=0, doc="seconds of history the long-stay loitering rule needs (<= long_s)")
    softness: float = param(0.15, gt=0, le=2, doc="width of each threshold's soft step, as a fraction of it")
    depth_deadzone: float = param(0.05, ge=0, doc="speed towards or away from the camera (from the box's growth "
                                  "where the foot confirms it) counts only above this (bh/s) ...")
    depth_noise: float = param(1.0, ge=0, doc="... plus this many standard errors of its own estimate (the box "
                               "height's jitter about its robust trend)")


@dataclass
class GroundParams:
    image: list[list[float]] = param(default_factory=list, doc="4 [x, y] image points (pixels) on the ground")
    world: list[list[float]] = param(default_factory=list, doc="the same 4 points' ground coordinates [X, Y] in "
                                     "metres (X across the view, Y away from the camera keep speed_x / speed_y's "
                                     "image meaning)")

    def validate(self) -> list[str]:
        try:
            ground_homography(self.image, self.world)
        except ValueError as exc:
            return [str(exc)]
        return []


@dataclass
class ActivityParams:
    classifier: str = param("rules", choices=("rules", "temporal"),
                            doc="rules: thresholds below; temporal: the learned model in `weights`")
    weights: str | None = param(None, path="file", doc="temporal: weights file written by `vidpipe train activity`")
    rules: RulesParams = param(default_factory=RulesParams, doc="thresholds of the rule classifier")
    classes: list[str] | None = param(None, doc="label only tracks of these class names (null: every track)")
    short_s: float = param(0.5, gt=0, le=10, doc="short window (speed now), seconds")
    medium_s: float = param(1.0, gt=0, le=20, doc="medium window (box shape, scale change), seconds")
    long_s: float = param(3.0, gt=0, le=60, doc="long window (loitering: displacement, area, path), seconds")
    step_s: float = param(0.2, gt=0, le=5, doc="step of the long window's path length, seconds")
    capacity: int = param(192, ge=8, le=4096, doc="frames of history kept per track (caps the long window)")
    min_age_s: float = param(0.3, ge=0, doc="a track is labelled once it is this old (seconds)")
    forget_s: float = param(1.0, gt=0, doc="a track unseen this long is forgotten (its activity ends)")
    hysteresis_k: int = param(6, ge=1, le=300, doc="frames in a row a new label must win before it is taken")
    hysteresis_margin: float = param(0.95, gt=0, le=1, doc="a new label is taken at once when its score beats "
                                     "the current label's by this much")
    focal: float = param(0.9, gt=0, le=20, doc="camera focal length in image widths (0.9: about a 58 degree "
                         "horizontal view); turns a box's growth into speed towards the camera")
    use_flow: bool = param(True, doc="use the flow stage's output when present (in-box flow spread)")
    compensate_camera: bool = param(True, doc="with dense flow: positions are taken relative to the background "
                                    "(the median flow, summed over frames), so a panning camera does not make "
                                    "everyone walk")
    motion_energy: bool = param(True, doc="limb motion from the frame difference inside each box (crops "
                                "resized to 16x40; about 20 us a box)")
    events: bool = param(True, doc="emit activity_start / activity_end events")
    write_features: bool = param(False, doc="also write the window features and class scores to "
                                 "Frame.detections.data (activity_features, activity_scores; for training)")
    device: str | None = param(None, doc="temporal model device (null: the pipeline's)")
    ground: GroundParams | None = param(None, doc="ground-plane calibration, {image: [[x, y] x 4] pixels, "
                                        "world: [[X, Y] x 4] metres}: speeds measured on the ground (metres "
                                        "/ person_height per second) instead of in the image (null: off)")
    person_height: float = param(1.7, gt=0, le=10, doc="with ground: one body height in metres (ground "
                                 "speeds in m/s are divided by it)")

    def validate(self) -> list[str]:
        errors = []
        if not self.short_s <= self.medium_s <= self.long_s:
            errors.append(f"short_s, medium_s, long_s: expected short_s <= medium_s <= long_s, got "
                          f"{self.short_s}, {self.medium_s}, {self.long_s}")
        if self.classifier == "temporal" and not self.weights:
            errors.append("weights: required with classifier: temporal (train with `vidpipe train activity`)")
        r = self.rules
        if not r.move_speed < r.walk_speed < r.run_speed:
            errors.append(f"rules: expected move_speed < walk_speed < run_speed, got "
                          f"{r.move_speed}, {r.walk_speed}, {r.run_speed}")
        if r.loiter_s > self.long_s:
            errors.append(f"rules.loiter_s: expected <= long_s ({self.long_s}), got {r.loiter_s}")
        return errors

    def check_files(self) -> list[str]:
        """The weights file only matters to the temporal classifier (the rules ignore it)."""
        return field_file_errors(self, skip=() if self.classifier == "temporal" else ("weights",))


class ActivityStage(Stage):
    type_name = "activity"
    host_stage = True   # numpy/OpenCV work: a worker process helps on a GPU run too
    Params = ActivityParams
    reads = frozenset({"tracks"})
    optional_reads = frozenset({"track_flow", "flow"})
    writes = frozenset({"activities", "events"})

    def __init__(self, params: ActivityParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        p = self.params
        if p.write_features:   # it then writes detections.data too (which a worker process must send back)
            self.writes = self.writes | {"tracks"}
        homography = None if p.ground is None else ground_homography(p.ground.image, p.ground.world)
        self.extractor = FeatureExtractor(p.short_s, p.medium_s, p.long_s, p.step_s, p.forget_s, p.capacity,
                                          homography, p.person_height)
        self.hysteresis = Hysteresis(p.hysteresis_k, p.hysteresis_margin)
        self.classifier = None
        self.counts = {name: 0 for name in LABELS}
        self.frames = 0

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        p = self.params
        if p.classifier == "temporal":
            from pathlib import Path

            from pipeline.errors import ConfigError
            from stages.activities.temporal import TemporalClassifier

            if not Path(p.weights).is_file():
                raise ConfigError(f"{self.name}.weights: file not found: {p.weights}")
            device = p.device or (context.device if context is not None else "cpu")
            try:
                self.classifier = TemporalClassifier.from_file(p.weights, device)
            except (ValueError, RuntimeError, KeyError) as exc:
                raise ConfigError(f"{self.name}.weights: {exc}") from None
        else:
            r = p.rules
            self.classifier = RuleClassifier(RuleThresholds(r.run_speed, r.walk_speed, r.move_speed, r.wave_energy,
                                                            r.leg_energy, r.loiter_extent, r.loiter_s,
                                                            r.softness, r.depth_deadzone, r.depth_noise), p.long_s)
        self.labels = tuple(self.classifier.labels)
        self._prev_image = None
        self._camera = np.zeros(2)  # summed background motion (px), see compensate_camera
        self._step = np.zeros(2)    # this frame's background motion
        self.extractor.reset()
        self.hysteresis.reset()
        self.history: dict[int, np.ndarray] = {}
        self.seen: dict[int, tuple[float, int]] = {}   # tid -> (last time, frame index)
        self.started: dict[int, float] = {}           # tid -> time its current label started

    def _rows(self, dets) -> np.ndarray:
        keep = dets.track_id >= 0
        if self.params.classes is not None:
            wanted = set(self.params.classes)
            keep &= np.asarray([dets.class_name(i) in wanted for i in range(len(dets))], bool)
        return np.nonzero(keep)[0]

    def _flow_stats(self, frame: Frame, dets, rows) -> np.ndarray | None:
        if not self.params.use_flow:
            return None
        if frame.flow is not None:
            flow = frame.flow  # (2,h,w), full-resolution px/frame, maybe at a working scale
            h, w = frame.shape
            scale = np.asarray([flow.shape[2] / w, flow.shape[1] / h] * 2, np.float32)
            return region_flow_stats(flow, dets.xyxy[rows] * scale)
        if "flow_mean" in dets.data and "flow_std" in dets.data:  # per-track stats of the flow stage
            mean = np.asarray(dets.data["flow_mean"], np.float32)[rows].reshape(-1, 2)
            spread = np.hypot(*np.asarray(dets.data["flow_std"], np.float32)[rows].reshape(-1, 2).T)
            return np.concatenate([spread[:, None], spread[:, None], mean, np.ones((len(rows), 1), np.float32)], 1)
        return None

    def _camera_shift(self, flow) -> np.ndarray:
        """Add this frame's background motion (median flow over a sparse grid) to the running sum."""
        step = max(1, int(flow.shape[1]) // 45)
        grid = flow[:, ::step, ::step]
        grid = grid.cpu().numpy() if not isinstance(grid, np.ndarray) else grid
        self._step = np.median(grid.reshape(2, -1), axis=1)
        self._camera += self._step
        return self._camera

    def _sequences(self, ids, feats) -> np.ndarray:
        t = int(self.classifier.history)
        if t == 1:
            return feats[:, None, :]
        out = np.empty((len(ids), t, feats.shape[1]), np.float32)
        for k, tid in enumerate(ids.tolist()):
            h = self.history.get(tid)
            if h is None:
                h = self.history[tid] = np.repeat(feats[k:k + 1], t, axis=0)
            else:
                h[:-1] = h[1:]
                h[-1] = feats[k]
            out[k] = h
        return out

    def process(self, frame: Frame) -> Frame:
        self.frames += 1
        dets = frame.detections
        events = []
        camera, self._step = self._camera, np.zeros(2)
        if self.params.compensate_camera and self.params.use_flow and frame.flow is not None:
            camera = self._camera_shift(frame.flow)
        if dets is None or dets.track_id is None or len(dets) == 0:
            rows, ids, feats = np.zeros(0, int), np.zeros(0, np.int64), self.extractor.update(frame.time, [], [])
        else:
            rows = self._rows(dets)
            ids = dets.track_id[rows]
            boxes = dets.xyxy[rows] - np.tile(camera, 2).astype(np.float32)
            energy = None
            if self.params.motion_energy:
                energy = box_motion_energy(self._prev_image, frame.image, dets.xyxy[rows], shift=self._step)
            feats = self.extractor.update(frame.time, ids, boxes, self._flow_stats(frame, dets, rows), energy,
                                          self.params.focal * frame.shape[1])
        if self.params.motion_energy:
            self._prev_image = frame.image
        for tid in ids.tolist():
            self.seen[tid] = (frame.time, frame.index)
        seq = self._sequences(ids, feats)
        ready = self.extractor.age(ids) >= self.params.min_age_s - 1e-9
        scores = np.zeros((len(ids), len(self.labels)), np.float32)
        activities = dict(frame.activities)
        if ready.any():
            scores[ready] = self.classifier.scores(seq[ready])
            labels, changes = self.hysteresis.update(ids[ready], scores[ready])
            for tid, lab in zip(ids[ready].tolist(), labels.tolist()):
                activities[tid] = self.labels[lab]
                self.counts[self.labels[lab]] = self.counts.get(self.labels[lab], 0) + 1
            for tid, old, new in changes:
                if old >= 0:
                    events.append(self._end(tid, self.labels[old], frame, "changed"))
                self.started[tid] = frame.time
                events.append({"type": "activity_start", "track_id": int(tid), "activity": self.labels[new],
                               "index": frame.index, "time": round(frame.time, 4)})
        for tid in [t for t, (when, _) in self.seen.items() if frame.time - when > self.params.forget_s]:
            self.seen.pop(tid)
            self.history.pop(tid, None)
            last = self.hysteresis.forget(tid)
            if last is not None:
                events.append(self._end(tid, self.labels[last], frame, "lost"))
            self.started.pop(tid, None)
        frame.activities = activities
        if self.params.events and events:
            frame.events = list(frame.events) + events
        if self.params.write_features and dets is not None and dets.track_id is not None:
            full = np.zeros((len(dets), len(FEATURES)), np.float32)
            full[rows] = feats
            sc = np.zeros((len(dets), len(self.labels)), np.float32)
            sc[rows] = scores
            frame.detections = dets.with_data(activity_features=full, activity_scores=sc)
        return frame

    def _end(self, tid: int, label: str, frame: Frame, reason: str) -> dict:
        start = self.started.get(tid, frame.time)
        return {"type": "activity_end", "track_id": int(tid), "activity": label, "index": frame.index,
                "time": round(frame.time, 4), "duration": round(frame.time - start, 4), "reason": reason}

    def summary(self) -> dict:
        return {"classifier": self.params.classifier, "labelled": {k: v for k, v in self.counts.items() if v}}
