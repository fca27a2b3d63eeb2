"""What the PyAV-based sources share: opening a container with one-line errors, reading the stream
description, and the decode loop that keeps every frame that decodes (warning once on errors).

Timestamps: `Frame.time` is (pts - origin) * time_base in seconds, origin being the stream's start
time (or the first frame's pts), so variable frame rate is kept as it is in the container. The
original `pts` and `time_base` travel on the Frame so that the video sink can reuse them.
"""
from __future__ import annotations

import logging
import threading
from fractions import Fraction
from typing import Any, Callable, Iterator

from ..errors import SourceError
from ..frame import Frame

log = logging.getLogger("vidpipe.sources")


def error_text(exc: BaseException) -> str:
    """A short reason from a PyAV/OS error, without the file name that we print ourselves."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).split(": '")[0].strip()


def open_container(target: str, shown: str, *, format: str | None = None, options: dict | None = None,
                   timeout=None):
    """av.open for reading, errors turned into one SourceError line naming `shown`."""
    import av

    try:
        return av.open(target, mode="r", format=format, options=options or {}, timeout=timeout)
    except av.error.InvalidDataError as exc:
        raise SourceError(f"not a readable video ({error_text(exc)}): {shown}") from None
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open {shown}: {error_text(exc)}") from None


def video_stream(container, shown: str, max_pixels: int, threads: int = 0):
    """The first video stream, threaded decode, size checked before anything is decoded."""
    streams = container.streams.video
    if not streams:
        raise SourceError(f"no video stream in {shown}")
    stream = streams[0]
    stream.thread_type = "AUTO"
    if threads:
        stream.codec_context.thread_count = threads
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > max_pixels:
        raise SourceError(f"frame size {width}x{height} exceeds max_pixels={max_pixels}: {shown}")
    return stream


def nominal_fps(stream) -> float:
    """The container's frame rate: the guessed (r_frame_rate) one when it agrees with the average
    within 5% (avoids 29.99 from millisecond timestamps), else the average (variable frame rate)."""
    avg, guessed = stream.average_rate, stream.guessed_rate
    if avg and guessed and abs(float(guessed) - float(avg)) <= 0.05 * float(avg):
        return float(guessed)
    for rate in (avg, guessed, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


class Decoder:
    """Iterates a stream's frames as `Frame`s, counting and warning (once) about decode errors.

    `on_error` decides what a demux error means: a file ends there (truncated), a live source
    treats it as a disconnect. Decode errors of single packets are skipped and counted.
    """

    def __init__(self, shown: str, source_id: str, max_pixels: int) -> None:
        self.shown = shown
        self.source_id = source_id
        self.max_pixels = max_pixels
        self.decode_errors = 0
        self.origin: int | None = None
        self._warned = False
        self._last_time = -1.0

    @property
    def last_time(self) -> float:
        """Time of the last frame converted (seconds), -1 before the first."""
        return self._last_time

    def warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s: %s (frames that decode are kept; further errors are counted)", self.shown, message)

    def packets(self, container, stream, stop_event: threading.Event) -> Iterator[Any]:
        """Demuxed packets; a demux error ends the iteration (truncated or broken input)."""
        import av

        demux = container.demux(stream)
        while not stop_event.is_set():
            try:
                packet = next(demux)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                self.decode_errors += 1
                self.warn_once(f"read error, input ends here ({error_text(exc)})")
                return
            yield packet

    def decode(self, packet) -> list:
        import av

        try:
            return packet.decode()
        except (av.FFmpegError, ValueError) as exc:
            self.decode_errors += 1
            self.warn_once(f"decode error ({error_text(exc)})")
            return []

    def to_frame(self, av_frame, index: int, fps: float, start: float = 0.0,
                 time_of: Callable[[Any], float] | None = None) -> Frame | None:
        """Convert one decoded frame; None if it lies before `start` (after a seek)."""
        tb = av_frame.time_base
        pts = av_frame.pts
        if time_of is not None:
            t = time_of(av_frame)
        elif pts is not None and tb is not None:
            if self.origin is None:
                self.origin = pts
            t = float((pts - self.origin) * tb)
        else:  # no timestamps in the container: continue from the last one at the nominal rate
            t = self._last_time + (1.0 / fps if fps > 0 else 1.0 / 30.0) if self._last_time >= 0 else 0.0
        if t < start - 1e-6:
            return None
        if av_frame.width * av_frame.height > self.max_pixels:
            raise SourceError(f"frame size {av_frame.width}x{av_frame.height} exceeds "
                              f"max_pixels={self.max_pixels}: {self.shown}")
        if av_frame.is_corrupt:
            self.decode_errors += 1
            self.warn_once("corrupt frame data (kept as decoded)")
        self._last_time = t
        image = av_frame.to_ndarray(format="bgr24")
        return Frame(index, t, image, source=self.source_id, pts=pts,
                     time_base=Fraction(tb) if tb is not None else None)


def seek_to(container, stream, seconds: float) -> None:
    """Seek to the keyframe at or before `seconds` from the stream's start (frames before the
    target are then dropped by the decoder loop)."""
    if seconds <= 0:
        return
    tb = stream.time_base
    origin = stream.start_time or 0
    container.seek(origin + int(seconds / tb), stream=stream, backward=True, any_frame=False)
