"""Stages for tests/test_isolation.py, importable by a spawned worker process."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from pipeline.frame import Detections
from pipeline.params import param
from pipeline.stage import Stage


@dataclass
class WorkerParams:
    burn: float = param(0.0, ge=0, doc="CPU seconds to spend per frame")
    die_at: int | None = param(None, ge=0, doc="exit the process on this frame")
    fail_at: int | None = param(None, ge=0, doc="raise on this frame")
    drop_every: int | None = param(None, ge=1, doc="return None for every n-th frame")


class MarkStage(Stage):
    """Writes detections (one box at the frame index), paints pixel (0,0) and notes its pid."""

    type_name = "mark"
    Params = WorkerParams
    optional_reads = frozenset({"detections"})
    writes = frozenset({"detections", "image"})

    def setup(self, context) -> None:
        super().setup(context)
        self.frames = 0

    def process(self, frame):
        p = self.params
        if p.die_at is not None and frame.index == p.die_at:
            os._exit(3)
        if p.fail_at is not None and frame.index == p.fail_at:
            raise ValueError(f"boom at {frame.index}")
        if p.burn:
            end = time.thread_time() + p.burn
            while time.thread_time() < end:
                pass
        if p.drop_every and (frame.index + 1) % p.drop_every == 0:
            return None
        self.frames += 1
        i = float(frame.index)
        frame.detections = Detections(np.array([[i, i, i + 2, i + 2]], np.float32), np.ones(1, np.float32),
                                      np.zeros(1, np.int32))
        image = frame.image.copy()
        image[0, 0] = (frame.index % 256, 7, 9)
        frame.set_image(image)
        frame.meta["pid"] = os.getpid()
        frame.meta["device"] = str(self.context.device) if self.context else None
        return frame

    def summary(self) -> dict:
        return {"frames": self.frames}


class BadSetupStage(MarkStage):
    type_name = "badsetup"

    def setup(self, context) -> None:
        raise FileNotFoundError("weights.pt not found")


class HostMarkStage(MarkStage):
    """A host stage (numpy work only): on a GPU run it still gets a worker, on the CPU."""

    type_name = "hostmark"
    host_stage = True


class UnpicklableStage(MarkStage):
    """Puts something that cannot cross a pipe into Frame.meta."""

    type_name = "unpicklable"

    def process(self, frame):
        frame = super().process(frame)
        frame.meta["lock"] = __import__("threading").Lock()
        return frame


class MaskFlowStage(Stage):
    """Writes a mask and a flow field made from the picture (large arrays that cross in shared memory)."""

    type_name = "maskflow"
    Params = WorkerParams
    writes = frozenset({"mask", "flow"})

    def process(self, frame):
        image = frame.image
        frame.mask = (image[..., 0] > (frame.index * 17) % 256).astype(np.uint8) * 255
        frame.flow = np.stack([image[::4, ::4, 1], image[::4, ::4, 2]]).astype(np.float32) / (1 + frame.index)
        return frame


class MaskFlowReader(Stage):
    """Reads the mask and the flow; writes a box summing them and the picture with the mask drawn in."""

    type_name = "maskflow_reader"
    Params = WorkerParams
    reads = frozenset({"mask", "flow"})
    writes = frozenset({"detections", "image"})

    def process(self, frame):
        s = float(frame.mask.sum(dtype=np.int64)) / 255
        f = float(frame.flow.sum(dtype=np.float64))
        frame.detections = Detections(np.array([[0, 0, s, f]], np.float32), np.ones(1, np.float32),
                                      np.zeros(1, np.int32))
        image = frame.image.copy()
        image[..., 2] = frame.mask
        frame.set_image(image)
        return frame


class InputProbe(Stage):
    """Reports (in meta) whether the picture and the mask it got can be written and own their memory."""

    type_name = "input_probe"
    Params = WorkerParams
    reads = frozenset({"mask"})
    writes = frozenset({"detections"})

    def process(self, frame):
        for name, array in (("image", frame.image), ("mask", frame.mask)):
            frame.meta[f"{name}_writeable"] = bool(array.flags.writeable)
            frame.meta[f"{name}_owned"] = bool(array.flags.owndata)
        frame.meta["image_sum"] = int(frame.image.sum(dtype=np.int64))
        if self.params.fail_at is not None and frame.index == self.params.fail_at:
            frame.image[0, 0] = 0          # writes into an input it did not declare
        return frame


class ViewProbe(InputProbe):
    """The same with Stage.input_views: read-only views of the shared blocks."""

    type_name = "view_probe"
    input_views = True


class ViewDrawer(ViewProbe):
    """input_views, but declares `image` written: its picture is a copy it may draw on."""

    type_name = "view_drawer"
    writes = frozenset({"detections", "image"})

    def process(self, frame):
        frame = super().process(frame)
        frame.image[0, 0] = (1, 2, 3)
        return frame
