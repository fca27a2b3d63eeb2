"""Annotate layers for activities and events (see stages/annotate.py, LAYERS).

- draw_activities: each labelled track's activity on a dark label under its box, in a colour per
  activity.
- draw_zones: zone polygons (translucent fill, outline) with name and occupancy.
- draw_lines: counting lines with their name and counts per direction; a line flashes for a few
  frames after a crossing.
- draw_events: the most recent events, newest first, bottom left.

Convention: canvas (H,W,3) uint8 BGR drawn in place; `params` is the annotate stage's dict (common
knobs, the layer's options, `state` kept across frames).
"""
from __future__ import annotations

from collections import deque

import cv2
import numpy as np

ACTIVITY_COLOURS = {  # BGR
    "standing": (200, 200, 200), "walking": (80, 200, 80), "running": (40, 40, 240),
    "waving": (230, 160, 30), "loitering": (40, 200, 240),
}


def _label(canvas, text, x, y, colour, params, above=False, border=None):
    from stages.annotate import put_label

    put_label(canvas, text, x, y, colour, float(params.get("font_scale", 0.5)), above=above, border=border)


def draw_activities(canvas: np.ndarray, frame, params: dict) -> None:
    """The activity label under each tracked box (options: colours {label: [b, g, r]})."""
    dets = frame.detections
    if not frame.activities or dets is None or dets.track_id is None:
        return
    colours = {**ACTIVITY_COLOURS, **{k: tuple(v) for k, v in params.get("colours", {}).items()}}
    for i, tid in enumerate(dets.track_id.tolist()):
        label = frame.activities.get(int(tid))
        if label is None:
            continue
        x1, _, _, y2 = (int(round(v)) for v in dets.xyxy[i])
        _label(canvas, label, x1, y2 + 2, colours.get(label, (255, 255, 255)), params)


def _geometry(frame):
    return frame.meta.get("event_geometry")


def draw_zones(canvas: np.ndarray, frame, params: dict) -> None:
    """Zone polygons, translucent (options: alpha, colour [b, g, r])."""
    geo = _geometry(frame)
    if geo is None or not geo.zones:
        return
    alpha = float(params.get("alpha", 0.2))
    colour = tuple(params.get("colour", (0, 180, 255)))
    counts = frame.meta.get("zone_counts", {})
    overlay = canvas.copy()
    polys = [np.round(np.asarray(z.polygon)).astype(np.int32) for z in geo.zones]
    cv2.fillPoly(overlay, polys, colour)
    cv2.addWeighted(overlay, alpha, canvas, 1 - alpha, 0, dst=canvas)
    thickness = max(1, int(params.get("thickness", 2)) - 1)
    for z, poly in zip(geo.zones, polys):
        cv2.polylines(canvas, [poly], True, colour, thickness, cv2.LINE_AA)
        x, y = poly.min(0)
        _label(canvas, f"{z.name}: {counts.get(z.name, 0)}", int(x), int(y), (255, 255, 255), params, border=colour)


def draw_lines(canvas: np.ndarray, frame, params: dict) -> None:
    """Counting lines with counts per direction; a line flashes for `flash` frames after a crossing."""
    geo = _geometry(frame)
    if geo is None or not geo.lines:
        return
    state = params["state"]
    flash_until = state.setdefault("flash", {})
    for ev in frame.events:
        if ev.get("type") == "line_cross":
            flash_until[ev["line"]] = frame.index + int(params.get("flash", 8))
    counts = frame.meta.get("line_counts", {})
    thickness = int(params.get("thickness", 2))
    for ln in geo.lines:
        hot = flash_until.get(ln.name, -1) >= frame.index
        colour = (0, 255, 255) if hot else tuple(params.get("colour", (255, 0, 255)))
        p1 = tuple(int(round(v)) for v in ln.p1)
        p2 = tuple(int(round(v)) for v in ln.p2)
        cv2.line(canvas, p1, p2, colour, thickness + (2 if hot else 0), cv2.LINE_AA)
        c = counts.get(ln.name, {})
        text = f"{ln.name}: " + "  ".join(f"{d} {n}" for d, n in c.items())
        _label(canvas, text, p1[0], p1[1], (255, 255, 255), params, above=True, border=colour)


def _event_text(ev: dict) -> str:
    kind = ev.get("type", "")
    tid = ev.get("track_id", "?")
    if kind == "line_cross":
        return f"#{tid} crossed {ev['line']} {ev['direction']}"
    if kind == "zone_enter":
        return f"#{tid} entered {ev['zone']}"
    if kind == "zone_exit":
        return f"#{tid} left {ev['zone']} after {ev.get('dwell', 0):.1f}s"
    if kind == "zone_dwell":
        return f"#{tid} in {ev['zone']} for {ev.get('dwell', 0):.1f}s"
    if kind == "activity_start":
        return f"#{tid} started {ev['activity']}"
    if kind == "activity_end":
        return f"#{tid} stopped {ev['activity']} ({ev.get('duration', 0):.1f}s)"
    return f"{kind} #{tid}"


def draw_events(canvas: np.ndarray, frame, params: dict) -> None:
    """The last `count` events (options: count (default: one line per 80 rows of picture, 2 to 6),
    keep_s, types: which event types)."""
    state = params["state"]
    count = int(params.get("count", min(6, max(2, canvas.shape[0] // 80))))
    recent: deque = state.setdefault("recent", deque(maxlen=count))
    types = params.get("types")
    for ev in frame.events:
        if types is None or ev.get("type") in types:
            recent.append((frame.time, _event_text(ev)))
    keep = float(params.get("keep_s", 4.0))
    shown = [text for when, text in reversed(recent) if frame.time - when <= keep]
    if not shown:
        return
    h = canvas.shape[0]
    step = int(round(22 * float(params.get("font_scale", 0.5)) / 0.5))
    for k, text in enumerate(shown):
        _label(canvas, text, 4, h - 4 - k * step, (255, 255, 255), params, above=True)
