"""The `motion` stage: moving objects as boxes, from the foreground mask of a `background` stage
before it (no weights; any static-camera video). Writes Frame.detections with one class, "moving"
by default, score 1, and per-box `pixels` (foreground pixel count) and `fill` (pixels / box area).

The mask is reduced on its own device (a GPU mask never crosses to the host at full size), then
connected components, speck removal, merging of fragments and (split_ratio) splitting of wide blobs
at column valleys run on the small host mask (stages.detection.blobs). People who cross or overlap
in depth stay one blob here: the track stage's `split` divides such a blob by the tracks'
predictions (stages/tracking/split.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.frame import Detections, Frame
from pipeline.params import param
from pipeline.stage import Stage


@dataclass
class MotionParams:
    downscale: int = param(2, ge=1, le=16, doc="work on the mask reduced by this integer factor (speed)")
    fill: float = param(0.5, gt=0, le=1, doc="a reduced cell is foreground when at least this fraction of its pixels is")
    min_fragment: int = param(16, ge=1, doc="fragments below this many foreground pixels are noise, dropped before merging")
    merge_gap: float | None = param(2.0, ge=0, doc="unite fragments whose boxes overlap or lie within this many "
                                    "pixels in x and y (null: no merging); raise it (8-16) for masks that break "
                                    "people into pieces, at the cost of joining people who walk close together")
    min_area: int = param(150, ge=1, doc="objects below this many foreground pixels are dropped")
    max_area: float = param(0.5, gt=0, le=1, doc="objects whose box covers more than this fraction of the frame "
                            "are dropped (a light change, a camera shake)")
    split_ratio: float | None = param(None, gt=0, doc="split a blob wider than this fraction of its height (a person "
                                      "is ~0.4 of their height wide; the valley test keeps one person whole; 0.3 "
                                      "did best on generated scenes) at the deepest valley of its column "
                                      "foreground counts (null: no splitting)")
    split_valley: float = param(0.4, ge=0, lt=1, doc="split_ratio: a valley splits when it is at most this fraction "
                                "of the lower peak beside it")
    class_name: str = param("moving", doc="the class name of every box (class_id 0)")

    def validate(self) -> list[str]:
        if not self.class_name.strip():
            return ["class_name: expected a non-empty name"]
        return []


class MotionStage(Stage):
    type_name = "motion"
    Params = MotionParams
    reads = frozenset({"mask"})
    writes = frozenset({"detections"})

    def process(self, frame: Frame) -> Frame | None:
        from stages.detection.blobs import motion_boxes

        p = self.params
        names = (p.class_name,)
        if frame.mask is None:
            frame.detections = Detections.empty(names)
            return frame
        boxes, pixels = motion_boxes(frame.mask, p.downscale, p.fill, p.min_fragment, p.merge_gap, p.min_area,
                                     p.max_area, split_ratio=p.split_ratio, split_valley=p.split_valley)
        area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
        n = len(boxes)
        frame.detections = Detections(boxes, np.ones(n, np.float32), np.zeros(n, np.int32), names=names,
                                      data={"pixels": pixels, "fill": (pixels / area).astype(np.float32)})
        return frame
