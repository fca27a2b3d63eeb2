"""Annotated video through PyAV: H.264 (libx264) in mp4, yuv420p, fast-start, the input's
timestamps. Live runs write fragmented mp4 so that even a killed process leaves a playable file.

Pictures go to yuv420p through OpenCV (BT.601, limited range: the matrix FFmpeg's swscale uses for
bgr24 by default, at half its CPU time). The x264 preset `auto` picks by picture size, so that
encoding a 1080p camera does not take a third of a small machine (benchmarks/RESULTS.md)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from ..errors import SinkError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo, StageContext
from .base import Sink

log = logging.getLogger("vidpipe.sinks")
FALLBACK_CODECS = ("libx264", "libopenh264", "mpeg4")
MP4_LIKE = (".mp4", ".m4v", ".mov")
FRAGMENTED_FLAGS = "frag_keyframe+empty_moov+default_base_moof"


@dataclass
class VideoParams:
    path: str = param("out/annotated.mp4", path="output", doc="output file; the extension picks the container (mp4, mkv, mov, ts)")
    codec: str = param("libx264", doc="encoder; falls back to libopenh264, then mpeg4 (with a warning) if missing")
    preset: str = param("auto", choices=("auto", "ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                         "slow", "slower", "veryslow"),
                        doc="x264 speed/size trade-off; auto: veryfast up to 1280x720 pixels, superfast up to "
                            "1920x1080, ultrafast above (same quality at a given crf, bigger files)")
    crf: int = param(23, ge=0, le=51, doc="x264 constant quality (lower = better, bigger)")
    threads: int = param(0, ge=0, doc="encoder threads (0 = the encoder's choice)")
    fragmented: bool | Literal["auto"] = param("auto", doc="fragmented mp4, no B-frames (playable after a "
                                               "crash or kill); auto: on for live sources")
    keyframe_interval: float = param(2.0, gt=0, doc="seconds between keyframes (a fragment per keyframe when fragmented)")


AUTO_PRESETS = ((1280 * 720, "veryfast"), (1920 * 1080, "superfast"))   # (most pixels, preset)


def auto_preset(width: int, height: int) -> str:
    """The x264 preset `auto` takes for pictures of this size (see VideoParams.preset)."""
    return next((preset for pixels, preset in AUTO_PRESETS if width * height <= pixels), "ultrafast")


def to_yuv420p(picture: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 BGR, H and W even -> (3H/2,W) uint8 I420 planes (Y, then U, then V), BT.601
    limited range: what av.VideoFrame.from_ndarray(..., format="yuv420p") takes."""
    import cv2

    return cv2.cvtColor(picture, cv2.COLOR_BGR2YUV_I420)


def pick_codec(wanted: str) -> str:
    """`wanted` if this FFmpeg can encode it, else the first available fallback (warned)."""
    import av

    for name in (wanted, *FALLBACK_CODECS):
        try:
            av.Codec(name, "w")
        except Exception:  # noqa: BLE001 - unknown or decoder-only
            continue
        if name != wanted:
            log.warning("video encoder %r not available; using %r instead", wanted, name)
        return name
    raise SinkError(f"no video encoder available (tried {wanted}, {', '.join(FALLBACK_CODECS)})")


def check_output_path(path: str) -> None:
    """Create the parent folder; one-line SinkError if the path cannot be a writable file."""
    if not path:
        raise SinkError("output path is empty")
    if os.path.isdir(path):
        raise SinkError(f"output path is a folder, expected a file: {path}")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create output folder ({exc.strerror or exc}): {parent}") from None
    if not os.access(parent, os.W_OK):
        raise SinkError(f"output folder not writable: {parent}")


class VideoSink(Sink):
    type_name = "video"
    Params = VideoParams
    reads = frozenset()

    def __init__(self, params: VideoParams | None = None) -> None:
        super().__init__(params)
        self._container = None
        self._stream = None
        self._size = (0, 0)
        self._tb: Fraction | None = None
        self._pts0: int | None = None
        self._t0 = 0.0
        self._last_pts = -1
        self._written = 0
        self._resized_warned = False
        self._broken = False
        self.fragmented = False
        self.codec = ""
        self.preset = ""          # the x264 preset in use (auto resolved at the first frame)

    def open(self, info: SourceInfo, context: StageContext | None = None) -> None:
        import av

        path = self.params.path
        check_output_path(path)
        ext = os.path.splitext(path)[1].lower()
        frag = self.params.fragmented
        self.fragmented = bool(info.live) if frag == "auto" else bool(frag)
        options = {}
        if ext in MP4_LIKE:
            options["movflags"] = FRAGMENTED_FLAGS if self.fragmented else "+faststart"
        if self.fragmented:
            # hand each fragment to the OS as soon as it is complete, its moof in the first write,
            # so a killed process leaves whole fragments (plus at most a partial mdat, which
            # players skip) and never a cut moof
            options["flush_packets"] = "1"
        self.codec = pick_codec(self.params.codec)
        try:
            self._container = av.open(path, mode="w", options=options)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise SinkError(f"cannot write video ({getattr(exc, 'strerror', None) or exc}): {path}") from None
        self._fps = info.fps if info.fps and info.fps > 0 else 30.0
        self._size = (info.width + info.width % 2, info.height + info.height % 2)
        try:
            self._stream = self._container.add_stream(self.codec, rate=Fraction(self._fps).limit_denominator(1001))
        except Exception as exc:
            self._container.close()
            self._container = None
            raise SinkError(f"cannot add a {self.codec} stream ({exc}): {path}") from None
        self._stream.pix_fmt = "yuv420p"
        self._stream.width, self._stream.height = self._size

    def _configure(self, frame: Frame) -> None:
        """At the first frame: size and time base from the frame, encoder options."""
        h, w = frame.shape
        self._size = (w + w % 2, h + h % 2)
        ctx = self._stream.codec_context
        ctx.width, ctx.height = self._size
        if frame.pts is not None and frame.time_base:
            self._tb, self._pts0 = Fraction(frame.time_base), int(frame.pts)
        else:
            self._tb, self._pts0 = Fraction(1, 90000), None
        self._t0 = frame.time
        ctx.time_base = self._tb
        self._stream.time_base = self._tb
        ctx.gop_size = max(1, round(self.params.keyframe_interval * self._fps))
        if self.fragmented:
            ctx.max_b_frames = 0  # a fragmented file has no edit list to hide B-frame delay; less latency too
        if self.params.threads:
            ctx.thread_count = self.params.threads
        if self.codec == "libx264":
            preset = self.params.preset
            self.preset = auto_preset(*self._size) if preset == "auto" else preset
            ctx.options = {"preset": self.preset, "crf": str(self.params.crf)}

    def _pts(self, frame: Frame) -> int:
        if self._pts0 is not None and frame.pts is not None and frame.time_base == self._tb:
            pts = int(frame.pts) - self._pts0
        else:
            pts = round((frame.time - self._t0) / self._tb)
        pts = max(pts, self._last_pts + 1)  # the encoder needs strictly increasing pts
        self._last_pts = pts
        return pts

    def _picture(self, frame: Frame) -> np.ndarray:
        image = frame.image
        h, w = image.shape[:2]
        tw, th = self._size
        if (w, h) == (tw, th):
            return image
        if (tw - w, th - h) in ((0, 0), (1, 0), (0, 1), (1, 1)):  # odd size: replicate the last row/column
            return np.pad(image, ((0, th - h), (0, tw - w), (0, 0)), mode="edge")
        import cv2

        if not self._resized_warned:
            self._resized_warned = True
            log.warning("%s: frame %d is %dx%d, the video is %dx%d; resizing", self.params.path, frame.index,
                        w, h, tw, th)
        return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)

    def _video_frame(self, picture: np.ndarray):
        import av

        return av.VideoFrame.from_ndarray(to_yuv420p(picture), format="yuv420p")

    def write(self, frame: Frame) -> None:
        import av

        if self._container is None or self._broken:
            raise SinkError(f"video sink not open{' (an earlier write failed)' if self._broken else ''}: "
                            f"{self.params.path}")
        if self._tb is None:
            self._configure(frame)
        vf = self._video_frame(self._picture(frame))
        vf.pts = self._pts(frame)
        vf.time_base = self._tb
        try:
            self._container.mux(self._stream.encode(vf))
        except (av.FFmpegError, OSError) as exc:
            self._broken = True  # PyAV may crash if a failed muxer is used again: only close it
            raise SinkError(f"cannot write video frame {frame.index} "
                            f"({getattr(exc, 'strerror', None) or exc}): {self.params.path}") from None
        self._written += 1

    def close(self) -> None:
        import av

        container, self._container = self._container, None
        if container is None:
            return
        if self._tb is None:  # FFmpeg creates the file at the first frame: no frame, no file
            log.warning("no frame reached the video sink; %s not written", self.params.path)
            container.close()
            return
        if self._broken:  # already reported by write(); release what can be released
            try:
                container.close()
            except Exception:  # noqa: BLE001
                pass
            return
        try:
            container.mux(self._stream.encode(None))
            container.close()
        except (av.FFmpegError, OSError) as exc:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise SinkError(f"cannot finalize video ({getattr(exc, 'strerror', None) or exc}): {self.params.path}") from None
        log.info("wrote %d frames to %s (%s%s)", self._written, self.params.path, self.codec,
                 ", fragmented" if self.fragmented else "")

    def summary(self) -> dict:
        out = {"path": self.params.path, "frames": self._written, "codec": self.codec, "fragmented": self.fragmented}
        if self.preset:
            out["preset"] = self.preset
        return out
