"""The `motion` stage: moving objects as boxes, from the foreground mask of a `background` stage
before it (no weights; any static-camera video). Writes Frame.detections with one class, "moving"
by default, score 1, and per-box `pixels` (foreground pixel count) and `fill` (pixels / box area).

The mask is reduced on its own device (a GPU mask never crosses to the host at full size), then
connected components, speck removal, merging of fragments and (split_ratio) splitting of wide blobs
at column valleys run on the small host mask (stages.detection.blobs). Its pixel sizes are pixels
of a `ref_width` (640) wide frame, scaled to the frame at hand: a 1080p camera on the same view
gets the boxes a 640x360 one gets, scaled by 3. People who cross or overlap
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
    ref_width: int | None = param(640, ge=8, doc="min_fragment, merge_gap and min_area are pixels of a frame this "
                                  "wide: a frame W wide scales lengths by W / ref_width and areas by its square "
                                  "(1920 wide: x3, x9), so one setting fits every size of camera on one view; "
                                  "null: pixels of the frame itself (before 2026-11-26 always so)")
    downscale: int = param(2, ge=1, le=16, doc="work on the mask reduced by this integer factor (speed; frame "
                           "pixels: not scaled by ref_width, see max_width)")
    max_width: int | None = param(None, ge=8, doc="cap on the working width in pixels: a wider mask is reduced by "
                                  "ceil(width / max_width) instead of downscale (like background's max_width; "
                                  "set both alike, the mask holds no finer detail); null: no cap")
    fill: float = param(0.5, gt=0, le=1, doc="a reduced cell is foreground when at least this fraction of its pixels is")
    min_fragment: int = param(16, ge=1, doc="fragments below this many foreground pixels (of a ref_width frame) are "
                              "noise, dropped before merging")
    merge_gap: float | None = param(2.0, ge=0, doc="unite fragments whose boxes overlap or lie within this many "
                                    "pixels (of a ref_width frame) in x and y (null: no merging); raise it (8-16) for "
                                    "masks that break people into pieces, at the cost of joining people who walk "
                                    "close together")
    min_area: int = param(150, ge=1, doc="objects below this many foreground pixels (of a ref_width frame) are dropped")
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
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def __init__(self, params: MotionParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._sizes: tuple[int, dict] | None = None  # (mask width, its sizes in mask pixels)

    def process(self, frame: Frame) -> Frame | None:
        from stages.detection.blobs import motion_boxes, scaled_sizes

        p = self.params
        names = (p.class_name,)
        if frame.mask is None:
            frame.detections = Detections.empty(names)
            return frame
        width = int(frame.mask.shape[1])
        if self._sizes is None or self._sizes[0] != width:
            self._sizes = width, scaled_sizes(width, p.ref_width, p.downscale, p.max_width, p.min_fragment, p.merge_gap,
                                                p.min_area)
        z = self._sizes[1]
        boxes, pixels = motion_boxes(frame.mask, z["factor"], p.fill, z["min_fragment"], z["merge_gap"], z["min_area"],
                                     p.max_area, split_ratio=p.split_ratio, split_valley=p.split_valley,
                                     split_min_width=z["split_min_width"])
        area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
        n = len(boxes)
        frame.detections = Detections(boxes, np.ones(n, np.float32), np.zeros(n, np.int32), names=names,
                                      data={"pixels": pixels, "fill": (pixels / area).astype(np.float32)})
        return frame
