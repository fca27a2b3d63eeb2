"""Small in-test sources, stages and sinks for the engine tests, and a Registries of them."""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np

from pipeline.config import Registries
from pipeline.frame import Detections, Frame
from pipeline.params import param
from pipeline.registry import Registry
from pipeline.sinks.base import Sink
from pipeline.sources.base import Source
from pipeline.stage import SourceInfo, Stage


@dataclass
class FakeSourceParams:
    uri: str = param("fake://", doc="ignored")
    count: int = param(20, ge=0, doc="frames to produce")
    width: int = param(32, ge=1)
    height: int = param(24, ge=1)
    fps: float = param(25.0, gt=0)
    live: bool = param(False)
    interval: float = param(0.0, ge=0, doc="seconds between frames (a live camera's pace)")
    fail_at: int | None = param(None, ge=0, doc="raise while reading this frame")


class FakeSource(Source):
    type_name = "fake"
    Params = FakeSourceParams

    def __init__(self, params=None, **kw) -> None:
        super().__init__(params if params is not None else FakeSourceParams(**kw))
        self.produced = 0
        self.alive = 0  # images not yet garbage-collected: frames held anywhere in the chain
        self.opens = self.closes = 0
        self._lock = threading.Lock()

    def _count(self, delta: int) -> None:
        with self._lock:
            self.alive += delta

    def open(self) -> SourceInfo:
        self.opens += 1
        p = self.params
        return SourceInfo(p.uri, p.width, p.height, p.fps, p.live, None if p.live else p.count)

    def frames(self, stop_event: threading.Event):
        p = self.params
        for i in range(p.count):
            if stop_event.is_set():
                return
            if p.fail_at is not None and i == p.fail_at:
                raise OSError("fake read error")
            if p.interval:
                time.sleep(p.interval)
            image = np.full((p.height, p.width, 3), i % 256, np.uint8)
            self._count(1)
            weakref.finalize(image, self._count, -1)
            self.produced += 1
            yield Frame(i, i / p.fps, image, pts=i, source=p.uri)

    def stats(self) -> dict:
        return {"produced": self.produced}

    def close(self) -> None:
        self.closes += 1


@dataclass
class NoopParams:
    sleep: float = param(0.0, ge=0, doc="seconds of work per frame")
    fail_at: int | None = param(None, ge=0, doc="raise on this frame index")
    drop_every: int | None = param(None, ge=1, doc="return None for every n-th frame")
    iou_threshold: float = param(0.5, gt=0, le=1, doc="a ranged param for config tests")


class NoopStage(Stage):
    type_name = "noop"
    Params = NoopParams

    def __init__(self, params=None, name=None, **kw) -> None:
        super().__init__(params if params is not None else NoopParams(**kw), name)
        self.seen: list[int] = []
        self.setups = self.closes = 0
        self.threads: set[str] = set()

    def setup(self, context) -> None:
        super().setup(context)
        self.setups += 1

    def process(self, frame):
        self.threads.add(threading.current_thread().name)
        p = self.params
        if p.fail_at is not None and frame.index == p.fail_at:
            raise ValueError(f"boom at {frame.index}")
        if p.sleep:
            time.sleep(p.sleep)
        self.seen.append(frame.index)
        if p.drop_every and (frame.index + 1) % p.drop_every == 0:
            return None
        return frame

    def close(self) -> None:
        self.closes += 1


class BatchStage(NoopStage):
    type_name = "batch"

    def __init__(self, params=None, name=None, batch_size=4, max_wait=0.05, **kw) -> None:
        super().__init__(params, name, **kw)
        self.batch_size, self.max_wait = batch_size, max_wait
        self.batches: list[int] = []

    def process_batch(self, frames):
        self.batches.append(len(frames))
        return [self.process(f) for f in frames]


class DetectStage(NoopStage):
    type_name = "detect"
    writes = frozenset({"detections"})

    def process(self, frame):
        frame.detections = Detections.empty()
        return super().process(frame)


class TrackStage(NoopStage):
    type_name = "track"
    reads = frozenset({"detections"})
    writes = frozenset({"tracks"})


class FailSetupStage(NoopStage):
    type_name = "failsetup"

    def setup(self, context) -> None:
        raise RuntimeError("cannot load model")


@dataclass
class FakeSinkParams:
    path: str = param("out/fake", doc="where (nothing is written)")
    delay: float = param(0.0, ge=0, doc="seconds per write")
    fail_at: int | None = param(None, ge=0)


class FakeSink(Sink):
    type_name = "memory"
    Params = FakeSinkParams

    def __init__(self, params=None, source: FakeSource | None = None, **kw) -> None:
        super().__init__(params if params is not None else FakeSinkParams(**kw))
        self.indices: list[int] = []
        self.times: list[float] = []
        self.opens = self.closes = 0
        self.closed_with: int | None = None
        self.source = source
        self.max_in_flight = 0

    def open(self, info, context) -> None:
        self.opens += 1
        self.info = info

    def write(self, frame) -> None:
        if self.params.fail_at is not None and frame.index == self.params.fail_at:
            raise OSError("disk full")
        if self.params.delay:
            time.sleep(self.params.delay)
        self.indices.append(frame.index)
        self.times.append(frame.time)
        if self.source is not None:
            self.max_in_flight = max(self.max_in_flight, self.source.alive)

    def close(self) -> None:
        self.closes += 1
        self.closed_with = len(self.indices)


class TrackSink(FakeSink):
    type_name = "mot"
    reads = frozenset({"tracks"})


def registries() -> Registries:
    return Registries(
        Registry("stage", {"noop": "fakes:NoopStage", "detect": "fakes:DetectStage", "track": "fakes:TrackStage",
                           "batch": "fakes:BatchStage", "failsetup": "fakes:FailSetupStage"}),
        Registry("source", {"fake": "fakes:FakeSource", "file": "fakes:FakeSource", "folder": "fakes:FakeSource"}),
        Registry("sink", {"memory": "fakes:FakeSink", "mot": "fakes:TrackSink"}),
    )
