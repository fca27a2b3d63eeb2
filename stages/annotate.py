"""The `annotate` stage: draws the frame's results on a copy of its picture with OpenCV.

Drawing is split into layers. LAYERS maps a layer name to "module:function"; each function is
`draw_<thing>(canvas, frame, params) -> None | ndarray` (draw in place on the BGR uint8 canvas, or
return a new canvas), and draws nothing when the frame lacks its data. `params` is a dict: the
stage's common knobs (thickness, font_scale, trail_length, show_score, show_class), the layer's
own `options` from the YAML, `state` (a dict kept across frames for that layer), and `fps` and
`latency_ms` measured by the stage. Other areas add their layers (flow, plane, events, activity
labels) to LAYERS with a one-line edit; the YAML picks them with `layers: [boxes, trails, ...]`.
"""
from __future__ import annotations

import colorsys
import importlib
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pipeline.params import param, suggest
from pipeline.stage import Stage

LAYERS: dict[str, str] = {
    "mask": "stages.segmentation.draw:draw_mask",  # foreground tint and outline (background stage)
    "flow": "stages.opticalflow.draw:draw_flow",  # first: a colour overlay under the boxes
    "plane": "stages.planar.draw:draw_plane",  # tracked surface outline and inlier ratio
    "zones": "stages.activities.draw:draw_zones",  # event zones with occupancy (events stage)
    "lines": "stages.activities.draw:draw_lines",  # counting lines with counts per direction
    "boxes": "stages.annotate:draw_boxes",
    "activities": "stages.activities.draw:draw_activities",  # activity label under each box
    "trails": "stages.annotate:draw_trails",
    "events": "stages.activities.draw:draw_events",  # the most recent events, bottom left
    "hud": "stages.annotate:draw_hud",
}

FONT = cv2.FONT_HERSHEY_SIMPLEX
GOLDEN = 0.6180339887498949


@lru_cache(maxsize=4096)
def color_for_id(key: int, salt: int = 0) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per id: hue = frac(id * golden ratio) (Fibonacci hashing,
    so consecutive ids get far-apart hues), value alternating in three steps.

    Convention: returns (B, G, R) ints in [0, 255]; the same key always gives the same colour."""
    key = int(key)
    hue = (key * GOLDEN + salt * 0.5) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, (0.95, 0.8, 0.65)[key % 3])
    return int(b * 255), int(g * 255), int(r * 255)


def class_color(class_id: int) -> tuple[int, int, int]:
    return color_for_id(int(class_id), salt=1)


def put_label(canvas: np.ndarray, text: str, x: int, y: int, color=(255, 255, 255), font_scale: float = 0.5,
              background=(24, 24, 24), above: bool = True, border=None) -> tuple[int, int, int, int]:
    """Text on a filled dark box (readable on any picture), its corner near (x, y), kept inside
    the image; `border` (BGR) outlines the box, e.g. in the track's colour. Returns the box drawn.

    Convention: canvas (H,W,3) uint8 BGR, drawn in place; (x, y) pixels; `above` puts the box's
    bottom edge at y (a label over a box) instead of its top edge; returns (x0, y0, x1, y1) pixels."""
    thickness = 1 if font_scale < 0.8 else 2
    x0, y0, x1, y1 = label_rect(canvas.shape, text, x, y, font_scale, above)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), background, -1)
    if border is not None:
        cv2.rectangle(canvas, (x0, y0), (x1, y1), border, 1)
    (_, th), _ = cv2.getTextSize(text, FONT, font_scale, thickness)
    cv2.putText(canvas, text, (x0 + 3, y0 + 3 + th), FONT, font_scale, color, thickness, cv2.LINE_AA)
    return x0, y0, x1, y1


def label_rect(shape, text: str, x: int, y: int, font_scale: float = 0.5, above: bool = True) -> tuple[int, int, int, int]:
    """Where put_label draws `text`: (x0, y0, x1, y1) pixels, kept inside an image of `shape`."""
    thickness = 1 if font_scale < 0.8 else 2
    (tw, th), base = cv2.getTextSize(text, FONT, font_scale, thickness)
    h, w = shape[:2]
    pad = 3
    box_h = th + base + 2 * pad
    x0 = int(min(max(0, x), max(0, w - tw - 2 * pad)))
    y0 = int(y - box_h if above else y)
    y0 = int(min(max(0, y0), max(0, h - box_h)))
    return x0, y0, x0 + tw + 2 * pad, y0 + box_h


def _free_spot(shape, text: str, x: int, y: int, font_scale: float, thickness: int, taken) -> tuple[int, bool]:
    """(y, above) for a box label at the box's top-left corner (x, y) that covers no label in
    `taken`: above the box, else just inside its top edge, else next to the labels in the way
    (a short search); above the box when nothing is free."""
    candidates = [(y, True), (y + thickness, False)]
    for k in range(16):
        if k >= len(candidates):
            break
        cy, above = candidates[k]
        x0, y0, x1, y1 = label_rect(shape, text, x, cy, font_scale, above)
        hits = [b for b in taken if x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1]
        if not hits:
            return cy, above
        candidates += [c for b in hits for c in ((b[3], False), (b[1], True)) if c not in candidates]
    return y, True


def _box_label(dets, i: int, params: dict) -> str:
    parts = []
    if dets.track_id is not None and dets.track_id[i] >= 0:
        parts.append(f"#{int(dets.track_id[i])}")
    if params.get("show_class", True):
        parts.append(dets.class_name(i))
    if params.get("show_score", True):
        parts.append(f"{float(dets.score[i]):.2f}")
    return " ".join(parts)


def draw_boxes(canvas: np.ndarray, frame, params: dict) -> None:
    """Boxes with class and score; tracked boxes in their track's colour with '#id'."""
    dets = frame.detections
    if dets is None or len(dets) == 0:
        return
    thickness = int(params.get("thickness", 2))
    font_scale = float(params.get("font_scale", 0.5))
    boxes = np.round(dets.xyxy).astype(np.int32)
    tracked = dets.track_id is not None
    colors = []
    for i in range(len(dets)):
        tid = int(dets.track_id[i]) if tracked else -1
        colors.append(color_for_id(tid) if tid >= 0 else class_color(int(dets.class_id[i])))
        x1, y1, x2, y2 = boxes[i].tolist()
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colors[i], thickness)
    taken: list[tuple[int, int, int, int]] = []   # labels after every box (no box line crosses one),
    for i in range(len(dets)):                     # and no label covers another
        label = _box_label(dets, i, params)
        if label:
            x1, y1 = boxes[i, :2].tolist()
            y, above = _free_spot(canvas.shape, label, x1, y1, font_scale, thickness, taken)
            taken.append(put_label(canvas, label, x1, y, (255, 255, 255), font_scale, border=colors[i], above=above))


def draw_trails(canvas: np.ndarray, frame, params: dict) -> None:
    """Short motion trails: the last `trail_length` centres (bottom-centre) of every track."""
    state = params["state"]
    trails: dict[int, deque] = state.setdefault("trails", {})
    last_seen: dict[int, int] = state.setdefault("last_seen", {})
    length = int(params.get("trail_length", 20))
    dets = frame.detections
    if dets is not None and dets.track_id is not None:
        xyxy = dets.xyxy
        points = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)
        for tid, point in zip(dets.track_id.tolist(), points):
            if tid < 0:
                continue
            trail = trails.get(tid)
            if trail is None or trail.maxlen != length:
                trail = trails[tid] = deque(trail or (), maxlen=length)
            trail.append((int(round(point[0])), int(round(point[1]))))
            last_seen[tid] = frame.index
    for tid in [t for t, seen in last_seen.items() if frame.index - seen > length]:
        trails.pop(tid, None)
        last_seen.pop(tid, None)
    thickness = max(1, int(params.get("thickness", 2)))
    for tid, trail in trails.items():
        if len(trail) > 1:
            cv2.polylines(canvas, [np.array(trail, np.int32)], False, color_for_id(tid), thickness, cv2.LINE_AA)


def hud_text(frame, params: dict) -> str:
    """'frame 60  2.00s  44.4 fps  latency 618 ms': index, time, the pipeline's recent rate and
    this frame's age since it was decoded (each number says what it is)."""
    return f"frame {frame.index}  {frame.time:.2f}s  {params.get('fps', 0.0):.1f} fps  " \
           f"latency {params.get('latency_ms', 0.0):.0f} ms"


def draw_hud(canvas: np.ndarray, frame, params: dict) -> None:
    """Frame index, time, pipeline fps and latency so far, top left."""
    put_label(canvas, hud_text(frame, params), 4, 4, (255, 255, 255), float(params.get("font_scale", 0.5)), above=False)


def auto_font_scale(height: int) -> float:
    """0.5 at 720p, scaled with the height, kept readable: within [0.35, 1.2]."""
    return float(np.clip(0.5 * height / 720 if height else 0.5, 0.35, 1.2))


def default_order() -> list[str]:
    """Every registered layer: other areas' overlays first, then trails, boxes and the HUD on top."""
    top = ["trails", "boxes", "hud"]
    return [n for n in LAYERS if n not in top] + [n for n in top if n in LAYERS]


def resolve_layer(name: str):
    module, _, attr = LAYERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class AnnotateParams:
    layers: list[str] | None = param(None, doc="layers to draw, in order (default: every registered layer, "
                                     "overlays first, then trails, boxes, hud; each draws only what the frame has)")
    options: dict[str, dict[str, Any]] = param({}, doc="per-layer options, e.g. {flow: {alpha: 0.5}}")
    thickness: int | None = param(None, ge=1, le=20, doc="line thickness in pixels (default: 2, 3 at 1080p)")
    font_scale: float | None = param(None, gt=0, le=4, doc="OpenCV font scale of labels and HUD "
                                     "(default: from the picture height, 0.5 at 720p)")
    trail_length: int = param(20, ge=0, le=1000, doc="motion trail length in frames (0 = no trail)")
    show_score: bool = param(True, doc="write the detection score in box labels")
    show_class: bool = param(True, doc="write the class name in box labels")

    def validate(self) -> list[str]:
        errors = []
        for i, name in enumerate(self.layers or ()):
            if name not in LAYERS:
                errors.append(f"layers[{i}]: unknown layer {name!r}{suggest(name, LAYERS)}; known: {', '.join(LAYERS)}")
        for name in self.options:
            if name not in LAYERS:
                errors.append(f"options.{name}: unknown layer{suggest(name, LAYERS)}; known: {', '.join(LAYERS)}")
        return errors


class AnnotateStage(Stage):
    """Draws boxes, track ids, trails, a HUD and every other registered layer; writes 'image'."""

    type_name = "annotate"
    Params = AnnotateParams
    optional_reads = frozenset({"detections", "tracks", "flow", "plane", "events", "activities", "mask"})
    writes = frozenset({"image"})
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def setup(self, context) -> None:
        super().setup(context)
        names = list(self.params.layers) if self.params.layers is not None else default_order()
        self._layers = [(name, resolve_layer(name)) for name in names]
        height = context.source.height if context and context.source else 0
        font_scale = self.params.font_scale or auto_font_scale(height)
        thickness = self.params.thickness or int(np.clip(round(height / 360), 2, 6))
        common = {"thickness": thickness, "font_scale": font_scale,
                  "trail_length": self.params.trail_length, "show_score": self.params.show_score,
                  "show_class": self.params.show_class}
        self._params = {name: {**common, **self.params.options.get(name, {}), "state": {}} for name in names}
        self._arrivals: deque = deque(maxlen=30)

    def process(self, frame):
        now = time.perf_counter()
        self._arrivals.append(now)
        span = self._arrivals[-1] - self._arrivals[0]
        fps = (len(self._arrivals) - 1) / span if span > 0 else 0.0
        latency_ms = (now - frame.decoded_at) * 1000.0
        canvas = frame.image.copy()
        for name, draw in self._layers:
            params = self._params[name]
            params["fps"], params["latency_ms"] = fps, latency_ms
            out = draw(canvas, frame, params)
            if out is not None:
                canvas = out
        frame.set_image(canvas)
        return frame
