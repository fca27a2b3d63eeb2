"""A line-oriented text output shared by the jsonl and mot sinks: the path checked and opened at
open(), text appended per frame with a flush every `params.flush_every` frames, every OS error
one SinkError line naming the path, the file finalized on close()."""
from __future__ import annotations

from ..errors import SinkError
from ..stage import SourceInfo, StageContext
from .base import Sink
from .video import check_output_path


class TextFileSink(Sink):
    """Subclasses' Params have `path` and `flush_every`; their write() calls `_append`."""

    def __init__(self, params=None) -> None:
        super().__init__(params)
        self._file = None
        self._pending = 0

    def open(self, info: SourceInfo, context: StageContext | None = None) -> None:
        path = self.params.path
        check_output_path(path)
        try:
            self._file = open(path, "w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write ({exc.strerror or exc}): {path}") from None

    def _append(self, text: str, frame_index: int) -> None:
        """Write `text` (may be empty) for one frame; flush every flush_every frames."""
        try:
            if text:
                self._file.write(text)
            self._pending += 1
            if self._pending >= self.params.flush_every:
                self._file.flush()
                self._pending = 0
        except OSError as exc:
            raise SinkError(f"cannot write frame {frame_index} ({exc.strerror or exc}): {self.params.path}") from None

    def close(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()
        except OSError as exc:
            raise SinkError(f"cannot finalize ({exc.strerror or exc}): {self.params.path}") from None
