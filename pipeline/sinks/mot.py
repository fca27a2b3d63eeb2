"""Tracks in MOTChallenge format, one line per tracked box:
`frame (1-based), id, x, y, w, h, score, -1, -1, -1` (see pipeline/mot_format.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..frame import Frame
from ..mot_format import mot_lines
from ..params import param
from .textfile import TextFileSink


@dataclass
class MotParams:
    path: str = param("out/tracks.txt", path="output", doc="output MOT text file")
    flush_every: int = param(30, ge=1, doc="flush to disk every N frames (and on close)")
    frame_offset: int = param(0, doc="added to frame.index before the 1-based shift (e.g. when source.start skipped frames)")


class MotSink(TextFileSink):
    type_name = "mot"
    Params = MotParams
    reads = frozenset({"tracks"})

    def __init__(self, params: MotParams | None = None) -> None:
        super().__init__(params)
        self._lines = 0

    def write(self, frame: Frame) -> None:
        dets = frame.detections
        if dets is None or dets.track_id is None:
            lines = []
        else:
            lines = mot_lines(frame.index + self.params.frame_offset, dets[dets.track_id >= 0])
        self._append("".join(line + "\n" for line in lines), frame.index)
        self._lines += len(lines)

    def summary(self) -> dict:
        return {"path": self.params.path, "lines": self._lines}
