"""Video file source through PyAV: threaded decode, timestamps from the container (variable frame
rate kept), seek to a start time, every frame that decodes kept when the file is damaged."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Iterator, Literal

from ..errors import SourceError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo
from .avcommon import Decoder, log, nominal_fps, open_container, seek_to, video_stream
from .base import Source

MAX_PIXELS = 8192 * 8192


@dataclass
class FileParams:
    uri: str = param(path="file", doc="path of the video file (anything FFmpeg reads: mp4, mkv, avi, mov, ts, ...)")
    start: float = param(0.0, ge=0, doc="start time in seconds from the beginning (seeks to the keyframe before it)")
    max_pixels: int = param(MAX_PIXELS, gt=0, doc="reject videos with more pixels per frame than this, before decoding")
    threads: int = param(0, ge=0, doc="decoder threads (0 = FFmpeg's choice)")
    on_damage: Literal["error", "warn"] = param("error", doc="a damaged or cut-short file: every frame that "
                                                "decodes is processed, then 'error' ends the run with a non-zero "
                                                "exit, 'warn' only warns")


def check_file(path: str) -> None:
    """One-line SourceError for the usual mistakes, before FFmpeg sees the path."""
    if not os.path.exists(path):
        where = "" if os.path.isabs(path) else f" (relative to the working directory {os.getcwd()})"
        raise SourceError(f"file not found: {path}{where}")
    if os.path.isdir(path):
        raise SourceError(f"is a folder, not a video file (use source type 'folder' for images): {path}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"file not readable (permission denied): {path}")
    if os.path.getsize(path) == 0:
        raise SourceError(f"empty file (0 bytes): {path}")


class FileSource(Source):
    """Decodes a video file frame by frame; `Frame.time` is pts * time_base from the first frame."""

    type_name = "file"
    Params = FileParams
    live = False

    def __init__(self, params: FileParams | None = None) -> None:
        super().__init__(params)
        self._container = None
        self._stream = None
        self._decoder: Decoder | None = None
        self._frames_out = 0
        self._expected: int | None = None

    def open(self) -> SourceInfo:
        path = self.params.uri
        check_file(path)
        container = open_container(path, path)
        try:
            stream = video_stream(container, path, self.params.max_pixels, self.params.threads)
            seek_to(container, stream, self.params.start)
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._decoder = Decoder(path, "0", self.params.max_pixels)
        if self.params.start > 0:
            self._decoder.origin = stream.start_time or 0
        fps = nominal_fps(stream)
        ctx = stream.codec_context
        self._expected = self._frame_count(container, stream, fps)
        return SourceInfo(uri=path, width=ctx.width, height=ctx.height, fps=fps, live=False,
                          frame_count=self._expected, time_base=stream.time_base, codec=ctx.name)

    def _frame_count(self, container, stream, fps: float) -> int | None:
        count = stream.frames or 0
        if not count and fps > 0:  # not in the container: estimate from the duration
            if stream.duration and stream.time_base:
                count = round(float(stream.duration * stream.time_base) * fps)
            elif container.duration:
                count = round(container.duration / 1_000_000 * fps)
        if not count:
            return None
        return max(0, count - round(self.params.start * fps))

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        decoder, stream = self._decoder, self._stream
        fps = nominal_fps(stream)
        for packet in decoder.packets(self._container, stream, stop_event):
            for av_frame in decoder.decode(packet):
                frame = decoder.to_frame(av_frame, self._frames_out, fps, self.params.start)
                if frame is None:
                    continue
                self._frames_out += 1
                yield frame
                if stop_event.is_set():
                    return
        if stop_event.is_set():
            return
        if self._frames_out == 0:
            where = f" at or after start={self.params.start}s" if self.params.start > 0 else ""
            raise SourceError(f"no frame could be decoded{where}: {self.params.uri}")
        damage = self._damage(fps)
        if damage and self.params.on_damage == "error":
            raise SourceError(f"damaged video ({damage}); the {self._frames_out} frames that decoded were "
                              f"processed: {self.params.uri}")

    def _damage(self, fps: float) -> str:
        """What is wrong with the file, judged after reading it ('' when nothing is known wrong).
        Certain: decode errors, fewer frames than an mp4 index lists, a Matroska file ending well
        before its stated duration. A shortfall against an estimate (no index) is only warned."""
        decoder, stream, n = self._decoder, self._stream, self._frames_out
        fmt = self._container.format.name if self._container is not None else ""
        problems = []
        if decoder.decode_errors:
            problems.append(f"{decoder.decode_errors} decode error(s)")
        if self.params.start == 0 and stream.frames and n < stream.frames:
            problems.append(f"cut short: {n} of {stream.frames} frames")
        elif "matroska" in fmt and self._container.duration and stream.time_base and decoder.origin is not None:
            end = self._container.duration / 1_000_000  # the segment's end, stated in its header
            last = float(decoder.origin * stream.time_base) + decoder.last_time
            step = 1.0 / fps if fps > 0 else 0.1
            if last + 3 * step + 0.1 < end:
                problems.append(f"cut short at {last:.2f} s of {end:.2f} s")
        expected = self._expected
        if problems:
            decoder.warn_once("; ".join(problems))
        elif expected and n < 0.98 * expected - 1:
            decoder.warn_once(f"input ended after {n} of about {expected} frames (truncated?)")
        return "; ".join(problems)

    def stats(self) -> dict:
        return {"frames": self._frames_out, "decode_errors": self._decoder.decode_errors if self._decoder else 0,
                "expected": self._expected}

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
