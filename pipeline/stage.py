"""The stage contract.

A stage is built from its typed params, then the runner calls, from the stage's own thread:
`setup(context)` once, `process(frame)` (or `process_batch(frames)`) for every frame in order,
and `close()` exactly once whenever `setup()` succeeded, also after an error or a stop.
`process` is never called concurrently on one instance. Returning None drops the frame (counted).

A stage declares what it reads and writes as field keys of `Frame` (see FIELDS). Building the graph
checks that every key a stage reads is written by a stage before it, so that a tracker before a
detector, or placement without a plane, is rejected before the first frame is decoded.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from .frame import Frame
from .params import NoParams

# Keys that stages may read and write. "image" is always present (written by the source).
FIELDS = {
    "image": "the picture (BGR uint8); stages that draw write it",
    "detections": "Frame.detections: boxes, scores, classes",
    "tracks": "Frame.detections with track_id filled (a tracker ran)",
    "mask": "Frame.mask: foreground mask (H,W)",
    "flow": "Frame.flow: dense optical flow (2,H,W), channel 0 = dx",
    "track_flow": "per-box flow statistics in Frame.detections.data (flow_mean, flow_std, flow_mag)",
    "activities": "Frame.activities: track_id -> activity label",
    "events": "Frame.events: zone, line and activity events",
    "plane": "Frame.plane: tracked planar surface (homography, corners, validity)",
}


@dataclass
class SourceInfo:
    """What a source knows once opened. fps is nominal (timestamps come from each frame)."""

    uri: str
    width: int
    height: int
    fps: float
    live: bool
    frame_count: int | None = None  # None when unknown (live, or not in the container)
    time_base: Any = None
    codec: str = ""


@dataclass
class StageContext:
    """What a stage gets at setup: the device, the source's description, a logger, the stop event,
    and `shared`, a dict for resources that several stages use (one model, one CUDA stream)."""

    device: str
    source: SourceInfo
    stop_event: threading.Event
    logger: logging.Logger
    shared: dict[str, Any] = field(default_factory=dict)


class Stage:
    """Base class. Subclasses set `type_name`, `Params`, `reads`, `writes` and override `process`."""

    type_name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    reads: ClassVar[frozenset[str]] = frozenset()
    optional_reads: ClassVar[frozenset[str]] = frozenset()  # used when present, never required
    writes: ClassVar[frozenset[str]] = frozenset()
    host_stage: ClassVar[bool] = False   # its work is on the host whatever the device (numpy, OpenCV):
    #                                      `process: true` gives it a worker on a GPU run too
    input_views: ClassVar[bool] = False  # True: process() keeps no reference to the arrays it reads (image,
    #                                      mask, flow) once it returns, and writes into none it does not
    #                                      declare: a worker process then hands it read-only views of its
    #                                      shared-memory blocks instead of copies (6 MB a 1080p picture)
    batch_size: int = 1        # > 1: the runner calls process_batch with up to this many frames
    max_wait: float = 0.0      # seconds the runner may wait to fill a batch (bounds live latency)

    def __init__(self, params: Any = None, name: str | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.name = name or self.type_name
        self.context: StageContext | None = None

    def setup(self, context: StageContext) -> None:
        self.context = context

    def process(self, frame: Frame) -> Frame | None:
        raise NotImplementedError

    def process_batch(self, frames: Sequence[Frame]) -> list[Frame | None]:
        return [self.process(f) for f in frames]

    def close(self) -> None:
        pass

    def external_cpu(self) -> float:
        """CPU seconds this stage used outside its own thread since the last call (a worker
        process, see pipeline.isolation); the runner adds it to the stage's CPU time."""
        return 0.0

    # Frames in, frames out: the stage's summary for the stats table (e.g. counts, model name).
    def summary(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
