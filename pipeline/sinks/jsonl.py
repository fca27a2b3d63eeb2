"""Per-frame results as JSON lines: one object per frame that reached the end of the chain.

    {"index": 0, "time": 0.0, "detections": [{"box": [x1, y1, x2, y2], "score": .9, "class_id": 0,
     "class": "person", "track_id": 3}, ...], "activities": {"3": "walking"}, "events": [...],
     "plane": {"corners": [[x, y] x4], "valid": true, "inlier_ratio": 0.8} | null, "meta": {...}}

`detections` is [] when no detector ran; `meta` holds the frame.meta entries that are plain JSON
(numbers, strings, lists, dicts, small numpy arrays); others are left out (named once in the log).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frame import Frame
from ..params import param
from .textfile import TextFileSink

log = logging.getLogger("vidpipe.sinks")
MAX_ARRAY = 4096  # numpy arrays in meta up to this many elements are written as lists


def to_jsonable(value: Any) -> Any:
    """json.dumps `default`: numpy scalars and small arrays as plain Python; else TypeError."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size <= MAX_ARRAY:
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _lenient(value: Any) -> Any:
    try:
        return to_jsonable(value)
    except TypeError:
        return repr(value)


def plane_record(plane) -> dict | None:
    if plane is None:
        return None
    corners = None if plane.corners is None else np.round(np.asarray(plane.corners, float), 2).tolist()
    return {"corners": corners, "valid": bool(plane.valid), "inlier_ratio": round(float(plane.inlier_ratio), 4)}


def frame_record(frame: Frame, *, meta: bool = True, timings: bool = False, skipped: set | None = None) -> dict:
    """The JSON object for one frame (see the module docstring)."""
    record = {
        "index": frame.index,
        "time": round(frame.time, 6),
        "detections": frame.detections.to_records() if frame.detections is not None else [],
        "activities": {str(k): v for k, v in frame.activities.items()},
        "events": frame.events,
        "plane": plane_record(frame.plane),
    }
    if meta and frame.meta:
        kept = {}
        for key, value in frame.meta.items():
            try:
                json.dumps(value, default=to_jsonable)
            except (TypeError, ValueError):
                if skipped is not None and key not in skipped:
                    skipped.add(key)
                    log.info("jsonl: frame.meta[%r] (%s) is not JSON; left out", key, type(value).__name__)
                continue
            kept[str(key)] = value
        if kept:
            record["meta"] = kept
    if timings and frame.timings:
        record["timings_ms"] = {k: round(v * 1000, 3) for k, v in frame.timings.items()}
    return record


@dataclass
class JsonlParams:
    path: str = param("out/results.jsonl", path="output", doc="output file, one JSON object per frame")
    flush_every: int = param(30, ge=1, doc="flush to disk every N frames (and on close)")
    meta: bool = param(True, doc="include JSON-serializable frame.meta entries under 'meta'")
    timings: bool = param(False, doc="include per-stage timings in milliseconds under 'timings_ms'")


class JsonlSink(TextFileSink):
    type_name = "jsonl"
    Params = JsonlParams

    def __init__(self, params: JsonlParams | None = None) -> None:
        super().__init__(params)
        self._written = 0
        self._skipped: set = set()

    def write(self, frame: Frame) -> None:
        line = json.dumps(frame_record(frame, meta=self.params.meta, timings=self.params.timings,
                                       skipped=self._skipped), default=_lenient, separators=(",", ":"))
        self._append(line + "\n", frame.index)
        self._written += 1

    def summary(self) -> dict:
        return {"path": self.params.path, "frames": self._written}


def read_jsonl(path) -> list[dict]:
    """Every record of a JSON lines file (a helper for tests and evaluation scripts)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
