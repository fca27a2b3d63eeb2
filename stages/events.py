"""The `events` stage: zones and counting lines from the YAML, events from the tracks.

Reads `tracks`; appends to Frame.events:
  {"type": "line_cross", "line", "direction", "track_id", "index", "time", "count"}
  {"type": "zone_enter", "zone", "track_id", "index", "time"}
  {"type": "zone_exit", "zone", "track_id", "index", "time", "dwell", ("reason": "lost")}
  {"type": "zone_dwell", "zone", "track_id", "index", "time", "dwell"}  (once, past dwell_alert_s)
and writes the running totals to Frame.meta (so the JSON-lines sink carries them every frame):
  meta["line_counts"] = {line: {direction: n}}, meta["zone_counts"] = {zone: tracks inside now},
  meta["zone_dwell"] = {zone: {track_id: seconds inside}}.
Meta["event_geometry"] holds the lines and zones in pixels for the annotate layers (not JSON, so
the sink leaves it out).

Crossings wait for `confirm` frames on each side and survive id flicker (a new id that appears
where an old one vanished inherits its state): see stages.activities.events.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.frame import Frame
from pipeline.params import param
from pipeline.stage import Stage, StageContext
from stages.activities.events import EventDetector, Line, Zone

_DIR_KEYS = ("neg_to_pos", "pos_to_neg")


@dataclass
class LineParams:
    name: str = param(doc="line name (in events and counts)")
    p1: tuple[float, float] = param(doc="first end point [x, y] (pixels, or fractions with normalized: true)")
    p2: tuple[float, float] = param(doc="second end point [x, y]")
    dirs: dict[str, str] = param({"neg_to_pos": "in", "pos_to_neg": "out"},
                                 doc="direction names: neg_to_pos = onto the right-hand side looking from p1 to p2 "
                                 "on screen, pos_to_neg = the other way")

    def validate(self) -> list[str]:
        errors = []
        if set(self.dirs) != set(_DIR_KEYS):
            errors.append(f"dirs: expected exactly the keys neg_to_pos and pos_to_neg, got {sorted(self.dirs)}")
        elif self.dirs["neg_to_pos"] == self.dirs["pos_to_neg"]:
            errors.append("dirs: the two directions need different names")
        if tuple(self.p1) == tuple(self.p2):
            errors.append("p2: expected a point other than p1")
        return errors


@dataclass
class ZoneParams:
    name: str = param(doc="zone name (in events and counts)")
    polygon: list[tuple[float, float]] = param(doc="corners [[x, y], ...] (at least 3)")
    dwell_alert_s: float | None = param(None, gt=0, doc="emit zone_dwell once a track has been inside this long")

    def validate(self) -> list[str]:
        return [] if len(self.polygon) >= 3 else [f"polygon: expected at least 3 points, got {len(self.polygon)}"]


@dataclass
class EventsParams:
    lines: list[LineParams] = param([], doc="counting lines")
    zones: list[ZoneParams] = param([], doc="named polygons")
    normalized: bool = param(False, doc="coordinates are fractions of the frame width and height (0..1)")
    confirm: int = param(3, ge=1, le=100, doc="frames a foot point must stay on a side (or in/out of a zone) "
                         "before and after a crossing (entry, exit) counts")
    band: float = param(0.04, ge=0, le=2, doc="a foot point within this many body heights of a line is on "
                        "neither side (gait bob, box jitter)")
    link_gap_s: float = param(1.0, ge=0, doc="a new id inherits the state of a track that vanished at most this "
                              "long ago nearby (id flicker); tracks gone longer are dropped")
    link_radius: float = param(0.6, ge=0, doc="... within this many body heights of the old track's "
                               "extrapolated foot point")
    classes: list[str] | None = param(None, doc="only tracks of these class names (null: all)")

    def validate(self) -> list[str]:
        errors = []
        names = [ln.name for ln in self.lines] + [z.name for z in self.zones]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            errors.append(f"lines/zones: duplicate names {dup}")
        return errors


class EventsStage(Stage):
    type_name = "events"
    host_stage = True   # numpy/OpenCV work: a worker process helps on a GPU run too
    input_views = True  # keeps no input array past process() (Stage.input_views)
    Params = EventsParams
    reads = frozenset({"tracks"})
    writes = frozenset({"events"})

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        self.detector = None
        self.total = 0
        if context is not None and context.source is not None and context.source.width:
            self._build(context.source.height, context.source.width)

    def _build(self, height: int, width: int) -> None:
        p = self.params
        scale = np.asarray([width, height], np.float64) if p.normalized else np.ones(2)
        lines = [Line(ln.name, tuple(np.asarray(ln.p1) * scale), tuple(np.asarray(ln.p2) * scale), dict(ln.dirs))
                 for ln in p.lines]
        zones = [Zone(z.name, np.asarray(z.polygon, np.float64) * scale, z.dwell_alert_s) for z in p.zones]
        self.detector = EventDetector(lines, zones, p.confirm, p.link_gap_s, p.link_radius, p.band)
        self.size = (height, width)

    def process(self, frame: Frame) -> Frame:
        if self.detector is None or (self.params.normalized and self.size != frame.shape):
            self._build(*frame.shape)
        dets = frame.detections
        if dets is None or dets.track_id is None:
            ids, boxes = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        else:
            keep = dets.track_id >= 0
            if self.params.classes is not None:
                wanted = set(self.params.classes)
                keep &= np.asarray([dets.class_name(i) in wanted for i in range(len(dets))], bool)
            ids, boxes = dets.track_id[keep], dets.xyxy[keep]
        events = self.detector.update(frame.index, frame.time, ids, boxes)
        if events:
            frame.events = list(frame.events) + events
            self.total += len(events)
        d = self.detector
        frame.meta["line_counts"] = {k: dict(v) for k, v in d.counts.items()}
        if d.zones:
            frame.meta["zone_counts"] = d.occupancy()
            frame.meta["zone_dwell"] = {z: {str(t): s for t, s in v.items()} for z, v in d.dwell(frame.time).items()}
        frame.meta["event_geometry"] = EventGeometry(d.lines, d.zones)
        return frame

    def summary(self) -> dict:
        d = self.detector
        return {"events": self.total, "line_counts": {} if d is None else d.counts, "id_links": 0 if d is None else d.links}


@dataclass(frozen=True)
class EventGeometry:
    """Lines and zones in pixels, for drawing (deliberately not JSON: the sink skips it)."""

    lines: list = field(default_factory=list)
    zones: list = field(default_factory=list)
