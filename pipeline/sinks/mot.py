"""Tracks in MOTChallenge format, one line per tracked box:
`frame (1-based), id, x, y, w, h, score, -1, -1, -1` (see pipeline/mot_format.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SinkError
from ..frame import Frame
from ..mot_format import mot_lines
from ..params import param
from ..stage import SourceInfo, StageContext
from .base import Sink
from .video import check_output_path


@dataclass
class MotParams:
    path: str = param("out/tracks.txt", doc="output MOT text file")
    flush_every: int = param(30, ge=1, doc="flush to disk every N frames (and on close)")
    frame_offset: int = param(0, doc="added to frame.index before the 1-based shift (e.g. when source.start skipped frames)")


class MotSink(Sink):
    type_name = "mot"
    Params = MotParams
    reads = frozenset({"tracks"})

    def __init__(self, params: MotParams | None = None) -> None:
        super().__init__(params)
        self._file = None
        self._pending = 0
        self._lines = 0

    def open(self, info: SourceInfo, context: StageContext | None = None) -> None:
        check_output_path(self.params.path)
        try:
            self._file = open(self.params.path, "w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write ({exc.strerror or exc}): {self.params.path}") from None

    def write(self, frame: Frame) -> None:
        dets = frame.detections
        if dets is None or dets.track_id is None:
            lines = []
        else:
            lines = mot_lines(frame.index + self.params.frame_offset, dets[dets.track_id >= 0])
        try:
            if lines:
                self._file.write("".join(line + "\n" for line in lines))
                self._lines += len(lines)
            self._pending += 1
            if self._pending >= self.params.flush_every:
                self._file.flush()
                self._pending = 0
        except OSError as exc:
            raise SinkError(f"cannot write frame {frame.index} ({exc.strerror or exc}): {self.params.path}") from None

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                raise SinkError(f"cannot finalize ({exc.strerror or exc}): {self.params.path}") from None

    def summary(self) -> dict:
        return {"path": self.params.path, "lines": self._lines}
