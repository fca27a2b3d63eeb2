"""Errors a user sees as one line. ConfigError (exit 2) is a mistake in the config or command
line; SourceError and SinkError name the file, stream or path; StageError names the stage and the
frame it failed on and chains the original exception."""
from __future__ import annotations

from .params import ConfigError

__all__ = ["ConfigError", "PipelineError", "SourceError", "SinkError", "StageError"]


class PipelineError(Exception):
    """Base of the run-time errors the CLI reports in one line (exit code 1)."""


class SourceError(PipelineError):
    """The source cannot be opened or read: names the file or (credential-masked) stream."""


class SinkError(PipelineError):
    """An output cannot be written: names the path."""


class StageError(PipelineError):
    def __init__(self, stage: str, frame_index: int | None, cause: BaseException | None = None) -> None:
        self.stage = stage
        self.frame_index = frame_index
        self.cause = cause
        where = f"on frame {frame_index}" if frame_index is not None else "during setup/close"
        kind = getattr(cause, "type_name", None) or type(cause).__name__   # WorkerError: the worker's type
        detail = f": {kind}: {cause}" if cause is not None else ""
        super().__init__(f"stage {stage!r} failed {where}{detail}")
