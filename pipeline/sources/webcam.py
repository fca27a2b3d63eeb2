"""Webcam source (Linux V4L2 through PyAV): a device index (`0`) or path (`/dev/video0`).

The requested width, height, frame rate and pixel format are passed to the driver, which may
pick something else: the obtained values are logged next to the requested ones and reported in
SourceInfo and stats(). An absent, busy or non-camera device gives one clear line. Timestamps
come from the driver (monotonic clock), relative to the first frame.
"""
from __future__ import annotations

import errno
import glob
import logging
import os
import threading
from dataclasses import dataclass
from typing import Iterator

from ..errors import SourceError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo
from .avcommon import Decoder, nominal_fps
from .base import Source

log = logging.getLogger("vidpipe.sources")


@dataclass
class WebcamParams:
    uri: str = param(doc="camera: a device index ('0') or a V4L2 device path ('/dev/video0')")
    width: int | None = param(None, ge=1, le=16384, doc="requested width (the driver may choose another)")
    height: int | None = param(None, ge=1, le=16384, doc="requested height")
    fps: float | None = param(None, gt=0, le=1000, doc="requested frame rate")
    input_format: str | None = param(None, doc="requested pixel format, e.g. mjpeg or yuyv422 (default: the driver's)")
    max_pixels: int = param(8192 * 8192, gt=0, doc="reject cameras with more pixels per frame than this")

    def validate(self) -> list[str]:
        if (self.width is None) != (self.height is None):
            return ["width/height: give both or neither"]
        return []


def device_path(uri) -> str:
    """'0' or 0 -> '/dev/video0'; a path is kept."""
    text = str(uri).strip()
    return f"/dev/video{int(text)}" if text.isdigit() else text


def available_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def _open_error(path: str, exc: BaseException) -> SourceError:
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or isinstance(exc, FileNotFoundError):
        found = available_devices()
        where = f"cameras present: {', '.join(found)}" if found else "no camera (/dev/video*) on this machine"
        return SourceError(f"camera not found: {path} ({where})")
    if code == errno.EBUSY:
        return SourceError(f"camera busy (used by another program): {path}")
    if code in (errno.EACCES, errno.EPERM):
        return SourceError(f"camera not accessible (permission denied; is the user in the 'video' group?): {path}")
    if code in (errno.ENOTTY, errno.EISDIR, errno.ENODEV, errno.EINVAL):
        return SourceError(f"not a V4L2 camera ({os.strerror(code)}): {path}")
    text = getattr(exc, "strerror", None) or str(exc)
    return SourceError(f"cannot open camera ({str(text).split(': ')[0]}): {path}")


class WebcamSource(Source):
    type_name = "webcam"
    Params = WebcamParams
    live = True

    def __init__(self, params: WebcamParams | None = None) -> None:
        super().__init__(params)
        self.path = device_path(self.params.uri)
        self._container = None
        self._decoder: Decoder | None = None
        self._frames_out = 0
        self.obtained: dict = {}

    def options(self) -> dict:
        p = self.params
        options = {}
        if p.width and p.height:
            options["video_size"] = f"{p.width}x{p.height}"
        if p.fps:
            options["framerate"] = f"{p.fps:g}"
        if p.input_format:
            options["input_format"] = p.input_format
        return options

    def open(self) -> SourceInfo:
        import av

        if "video4linux2,v4l2" not in av.formats_available:
            raise SourceError(f"this FFmpeg build has no V4L2 input; cannot open camera {self.path}")
        if not os.path.exists(self.path):
            raise _open_error(self.path, FileNotFoundError(errno.ENOENT, "not found"))
        try:
            container = av.open(self.path, mode="r", format="v4l2", options=self.options())
        except (av.FFmpegError, OSError) as exc:
            raise _open_error(self.path, exc) from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"camera gives no video stream: {self.path}")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.width * ctx.height > self.params.max_pixels:
            container.close()
            raise SourceError(f"frame size {ctx.width}x{ctx.height} exceeds max_pixels={self.params.max_pixels}: {self.path}")
        self._container, self._stream = container, stream
        self._decoder = Decoder(self.path, "0", self.params.max_pixels)
        fps = nominal_fps(stream)
        self.obtained = {"width": ctx.width, "height": ctx.height, "fps": round(fps, 3),
                         "format": ctx.pix_fmt or ctx.name}
        requested = self.options()
        log.info("camera %s: requested %s, obtained %dx%d at %.2f fps (%s)", self.path,
                 ", ".join(f"{k}={v}" for k, v in requested.items()) or "driver defaults",
                 ctx.width, ctx.height, fps, self.obtained["format"])
        return SourceInfo(uri=self.path, width=ctx.width, height=ctx.height, fps=fps or 30.0, live=True,
                          frame_count=None, time_base=stream.time_base, codec=ctx.name)

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        decoder = self._decoder
        fps = nominal_fps(self._stream)
        for packet in decoder.packets(self._container, self._stream, stop_event):
            for av_frame in decoder.decode(packet):
                yield decoder.to_frame(av_frame, self._frames_out, fps)
                self._frames_out += 1
                if stop_event.is_set():
                    return
        if not stop_event.is_set():
            raise SourceError(f"camera stopped delivering frames (unplugged?): {self.path}")

    def stats(self) -> dict:
        errors = self._decoder.decode_errors if self._decoder else 0
        return {"frames": self._frames_out, "decode_errors": errors,
                **{f"obtained_{k}": v for k, v in self.obtained.items()}}

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
