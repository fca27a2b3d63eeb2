"""Labelled per-track data from generated street scenes, run through the real stages.

A scene (scenes.render_street, in memory) goes frame by frame through: boxes (the ground truth
boxes with detector-like jitter and misses, `detector="gt"`; or the `background` + `motion` stages;
or the `detect` stage, YOLOX-Nano) -> the `track` stage -> the `flow` stage (when registered; else
the Lucas-Kanade kernel at quarter resolution, the same numbers the flow stage is built on) -> the
`activity` stage. Every frame's tracks are matched to the ground truth by IoU (Hungarian), which
gives each track row its true label. `evaluate` scores the stage's labels; `train` learns from the
features the stage computed (Detections.data["activity_features"]).

Convention: seeds >= 1000 are for evaluation only (never tune or train on them).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from . import LABELS

EVAL_SEED_MIN = 1000


@dataclass
class SceneSpec:
    """A generated street scene: seed, size (w, h), frames, fps, noise sigma, figure count."""

    seed: int
    size: tuple = (640, 360)
    n_frames: int = 300
    fps: int = 30
    noise: float = 2.0
    n_figures: int | None = None


@dataclass
class FrameResult:
    """One processed frame: track ids, boxes, predicted labels and features, and the matched truth.
    gt_label / gt_visibility / gt_id are per track row ('' / 0 / -1 when unmatched); `truth` is the
    frame's FrameTruth and `gt_track` maps each truth row to its matched track row (-1 if none)."""

    index: int
    track_ids: np.ndarray
    boxes: np.ndarray
    predicted: list
    features: np.ndarray | None
    age: np.ndarray
    gt_label: list
    gt_visibility: np.ndarray
    gt_id: np.ndarray
    truth: object = None
    gt_track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    events: list = field(default_factory=list)
    fps: float = 30.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box pair. Convention: a (N,4), b (M,4) xyxy -> (N,M) float64 in [0,1]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(gt: np.ndarray, pred: np.ndarray, iou_min: float = 0.5) -> np.ndarray:
    """One-to-one matching maximising total IoU. Returns for every gt row the matched pred row or -1."""
    from scipy.optimize import linear_sum_assignment

    out = np.full(len(gt), -1, np.int64)
    if len(gt) == 0 or len(pred) == 0:
        return out
    iou = iou_matrix(gt, pred)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= iou_min
    out[rows[keep]] = cols[keep]
    return out


class GroundTruthBoxes:
    """A stand-in detector: the truth's clipped boxes with jitter (Gaussian, `jitter` x box height
    per coordinate, smoothed over time like a real detector's), dropped below `min_visibility`
    and at random with probability `miss`. Writes Frame.detections (class 0 'person')."""

    writes = frozenset({"detections"})
    name = "gt_boxes"

    def __init__(self, seed: int, jitter: float = 0.02, min_visibility: float = 0.3, miss: float = 0.03,
                 smooth: float = 0.6) -> None:
        self.rng = np.random.default_rng(10_000 + seed)
        self.jitter, self.min_visibility, self.miss, self.smooth = jitter, min_visibility, miss, smooth
        self.noise: dict[int, np.ndarray] = {}
        self.truth = None

    def setup(self, context) -> None:
        pass

    def close(self) -> None:
        pass

    def process(self, frame):
        from pipeline.frame import Detections

        tr = self.truth
        keep = (tr.visibility >= self.min_visibility) & (self.rng.random(len(tr)) >= self.miss)
        boxes = tr.boxes_clipped[keep].astype(np.float64)
        h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        for i, fid in enumerate(tr.ids[keep]):
            prev = self.noise.get(int(fid), np.zeros(4))
            cur = self.smooth * prev + np.sqrt(1 - self.smooth ** 2) * self.rng.standard_normal(4)
            self.noise[int(fid)] = cur
            boxes[i] += cur * self.jitter * h[i]
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 2)
        frame.detections = Detections(boxes.astype(np.float32), np.full(len(boxes), 0.9, np.float32),
                                      np.zeros(len(boxes), np.int32), names=("person",))
        return frame


class KernelFlow:
    """Fallback when no `flow` stage is registered: dense Lucas-Kanade (stages.opticalflow) between
    the previous and this frame at 1/`scale` resolution, upsampled to (2,H,W) full-res px/frame."""

    name = "flow_kernel"

    def __init__(self, scale: int = 4) -> None:
        self.scale, self.prev = scale, None

    def setup(self, context) -> None:
        self.prev = None

    def close(self) -> None:
        pass

    def process(self, frame):
        import cv2
        import torch

        from stages.opticalflow.lucas_kanade import lucas_kanade_dense

        h, w = frame.shape
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (w // self.scale, h // self.scale), interpolation=cv2.INTER_AREA)
        cur = torch.from_numpy(small).float()[None, None]
        if self.prev is not None:
            f = lucas_kanade_dense(self.prev, cur, levels=3, warps=1)[0].numpy() * self.scale
            frame.flow = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in f])
        self.prev = cur
        return frame


def _context(size, fps, device: str = "cpu"):
    from pipeline.stage import SourceInfo, StageContext

    info = SourceInfo("generated:street", int(size[0]), int(size[1]), float(fps), False)
    return StageContext(device, info, threading.Event(), logging.getLogger("vidpipe.activity"))


# The stages of a pipeline config that make and follow the boxes the activity stage sees.
BOX_SOURCES = ("background", "motion", "detect")
CHAIN_TYPES = BOX_SOURCES + ("track", "flow", "activity")


@dataclass
class ChainConfig:
    """The stages of a pipeline config (pipeline.config specs) that `--config` runs: background,
    motion, detect, track, flow and activity, in the config's order, with its params (`process:`
    is ignored: everything runs in-thread). `activity` is the config's first activity stage's
    params (None when it has none); `boxes` names the box stages ("motion", "detect")."""

    specs: list
    origin: str
    activity: object = None

    @property
    def boxes(self) -> str:
        return "+".join(s.type for s in self.specs if s.type in BOX_SOURCES) or "none"

    def digest(self) -> str:
        """A short hash of the chain's types and params (keys a feature cache)."""
        import hashlib

        text = repr([(s.type, s.params) for s in self.specs if s.type != "activity"]) + repr(self.activity)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def describe(self, detector: str = "config") -> str:
        kept = [s for s in self.specs if not (detector == "gt" and s.type in BOX_SOURCES)]
        return " -> ".join((["gt_boxes"] if detector == "gt" else []) + [s.name for s in kept])


def load_chain(path, overrides=()) -> ChainConfig:
    """Read and validate a pipeline config (pipeline.config.load: every error names its key, a
    ConfigError) and keep the stages the activity scoring runs. `overrides`: `--set` lines in the
    config's own syntax (e.g. ``stages[4].hysteresis_k=4``), applied before validation. The files
    those stages name (model weights) must exist."""
    from pipeline import config
    from pipeline.errors import ConfigError
    from pipeline.params import Note, file_errors

    cfg = config.load(path, overrides)
    specs = [s for s in cfg.stages if s.type in CHAIN_TYPES]
    missing = [line for s in specs for line in file_errors(s.params, s.path) if not isinstance(line, Note)]
    if missing:
        raise ConfigError([f"{path}: {line}" for line in missing])
    activity = next((s.params for s in specs if s.type == "activity"), None)
    return ChainConfig(specs, str(path), activity)


def activity_index(path) -> int | None:
    """Index in `stages:` of a config file's first activity stage (None: it has none)."""
    from pipeline import config

    items = config.load_yaml(path).get("stages")
    for i, item in enumerate(items if isinstance(items, list) else ()):
        kind = item.get("type") if isinstance(item, dict) else item
        if kind == "activity":
            return i
    return None


def _config_stages(chain: ChainConfig, detector: str, activity_params, seed: int, jitter: float) -> list:
    out = [GroundTruthBoxes(seed, jitter=jitter)] if detector == "gt" else []
    placed = False
    for spec in chain.specs:
        if spec.type == "activity":
            if activity_params is not None and not placed:
                out.append(spec.cls(activity_params, name=spec.name))
                placed = True
        elif not (detector == "gt" and spec.type in BOX_SOURCES):
            out.append(spec.cls(spec.params, name=spec.name))
    if activity_params is not None and not placed:
        from stages.activity import ActivityStage

        out.append(ActivityStage(activity_params))
    return out


def build_stages(detector: str, activity_params=None, *, seed: int = 0, flow: bool = True,
                 track_params: dict | None = None, detect_params: dict | None = None,
                 jitter: float = 0.02, chain: ChainConfig | None = None):
    """The chain: boxes -> track -> flow -> activity (None: no activity stage). With `chain` (a
    pipeline config's stages, `load_chain`): those stages in the config's order with its params,
    the activity stage given `activity_params` in its place (appended when the config has none);
    `detector="gt"` puts the jittered truth boxes in place of the config's box stages (background,
    motion, detect); any other value keeps them; `flow`, `track_params`, `detect_params` are unused."""
    if chain is not None:
        return _config_stages(chain, detector, activity_params, seed, jitter)
    from pipeline.params import build_or_raise
    from pipeline.registry import stage_registry
    reg = stage_registry()

    def make(name, raw):
        cls = reg.get(name)
        return cls(build_or_raise(cls.Params, raw or {}, name))

    if detector == "gt":
        chain = [GroundTruthBoxes(seed, jitter=jitter)]
    elif detector == "motion":
        chain = [make("background", {}), make("motion", {})]
    elif detector == "yolox":
        chain = [make("detect", detect_params or {})]
    else:
        raise ValueError(f"detector: expected 'gt', 'motion' or 'yolox', got {detector!r}")
    chain.append(make("track", track_params or {}))
    if flow:
        try:
            from stages.flow import FlowStage
        except ImportError:  # no flow stage in this build: the kernel at quarter resolution
            chain.append(KernelFlow())
        else:
            chain.append(FlowStage(build_or_raise(FlowStage.Params, {}, "flow")))
    if activity_params is not None:
        from stages.activity import ActivityStage

        chain.append(ActivityStage(activity_params))
    return chain


def scene_frames(spec):
    """(size, fps, iterator of (image, FrameTruth)) of a SceneSpec (rendered in memory) or of a
    generated street scene on disk (path of its .mp4 / .json / stem)."""
    import scenes

    if isinstance(spec, SceneSpec):
        return spec.size, float(spec.fps), scenes.render_street(spec.seed, spec.size, spec.n_frames, spec.fps,
                                                                spec.noise, 0, spec.n_figures)
    truth = scenes.load_street(spec)
    if truth.video_path is None:
        raise FileNotFoundError(f"{spec}: the scene's .mp4 is missing")

    def frames():
        import av

        with av.open(str(truth.video_path)) as container:
            for t, f in enumerate(container.decode(video=0)):
                if t >= truth.n_frames:
                    break
                yield f.to_ndarray(format="bgr24"), truth.frames[t]
    return truth.size, truth.fps, frames()


def run_scene(spec, chain, *, iou_min: float = 0.5, device: str = "cpu"):
    """Run the chain over a scene (SceneSpec or a path); yield a FrameResult per frame."""
    from pipeline.frame import Frame

    size, fps, frames = scene_frames(spec)
    ctx = _context(size, fps, device)
    for st in chain:
        st.setup(ctx)
    activity = next((st for st in chain if getattr(st, "type_name", "") == "activity"), None)
    try:
        for t, (img, truth) in enumerate(frames):
            frame = Frame(t, t / fps, img)
            for st in chain:
                if isinstance(st, GroundTruthBoxes):
                    st.truth = truth
                frame = st.process(frame)
            result = _result(frame, truth, activity, iou_min)
            result.fps = fps
            yield result
    finally:
        for st in chain:
            st.close()


def _result(frame, truth, activity, iou_min: float) -> FrameResult:
    dets = frame.detections
    if dets is None or dets.track_id is None:
        ids, boxes = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    else:
        keep = dets.track_id >= 0
        dets = dets[keep]
        ids, boxes = dets.track_id, dets.xyxy
    feats = dets.data.get("activity_features") if dets is not None and len(ids) else None
    gt_track = match_boxes(truth.boxes_clipped, boxes, iou_min)
    gt_label, gt_vis, gt_id = [""] * len(ids), np.zeros(len(ids), np.float32), np.full(len(ids), -1, np.int64)
    for g, p in enumerate(gt_track):
        if p >= 0:
            gt_label[p], gt_vis[p], gt_id[p] = truth.labels[g], truth.visibility[g], truth.ids[g]
    predicted = [frame.activities.get(int(i), "") for i in ids]
    age = activity.extractor.age(ids) if activity is not None else np.zeros(len(ids))
    return FrameResult(frame.index, ids, boxes, predicted, feats, age, gt_label, gt_vis, gt_id, truth,
                       gt_track, list(frame.events))


def label_index(labels) -> np.ndarray:
    """Label strings -> indices into LABELS (-1 for '' or unknown)."""
    lut = {name: i for i, name in enumerate(LABELS)}
    return np.asarray([lut.get(x, -1) for x in labels], np.int64)
