"""RTSP (and other network stream) source through PyAV, built to be trusted unattended:

- every network wait is bounded: `open_timeout` for connecting, `read_timeout` for each read
  (a frozen server otherwise hangs FFmpeg forever);
- a stream that ends (the server closed it: FFmpeg reports a normal end of file) or fails is a
  disconnect: reconnect with exponential backoff (`backoff_initial` doubling up to `backoff_max`),
  giving up with a clear error after `max_attempts` consecutive failures; every wait is cut short
  by the stop event;
- `Frame.time` stays monotonic across reconnects: each connection's timestamps continue from the
  last frame plus the wall-clock length of the outage; `pts` is in 1/90000 s;
- credentials in the URL never reach a log line or an error (`mask_credentials`);
- stats: disconnects, reconnects, outage seconds, an estimate of the frames lost, decode errors.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Literal

from ..errors import SourceError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo
from .base import Source

log = logging.getLogger("vidpipe.sources")
TIME_BASE = Fraction(1, 90000)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/@\s]*)@", re.I)
_SECRET_QUERY = re.compile(r"(?P<key>[?&;](?:user(?:name)?|pass(?:word)?|pwd|token|key|secret|auth|sig)\w*=)[^&;#\s]*", re.I)


def mask_credentials(text: str) -> str:
    """Hide credentials in any text holding URLs: `rtsp://user:pw@host` -> `rtsp://***@host`,
    and secret query values (`?password=...`, `&token=...`) -> `***`."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", str(text))
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", text)


@dataclass
class RtspParams:
    uri: str = param(doc="stream URL: rtsp://[user:password@]host[:port]/path (also rtsps, rtmp, http(s), udp, srt)")
    transport: Literal["tcp", "udp"] = param("tcp", doc="RTSP transport (tcp is reliable through NAT and firewalls)")
    open_timeout: float = param(5.0, gt=0, le=600, doc="seconds allowed to connect")
    read_timeout: float = param(5.0, gt=0, le=600, doc="seconds without data before the stream counts as lost")
    reconnect: bool = param(True, doc="reconnect after a disconnect (false: the run ends at the first one)")
    max_attempts: int = param(10, ge=1, doc="consecutive failed reconnect attempts before giving up")
    backoff_initial: float = param(0.5, gt=0, doc="seconds before the first reconnect attempt")
    backoff_max: float = param(10.0, gt=0, doc="cap of the doubling wait between attempts")
    connect_attempts: int = param(1, ge=1, doc="attempts for the first connection (Ctrl-C stops between them)")
    low_latency: bool = param(True, doc="probe little (analyzeduration=0, probesize=32) and decode without frame threading")
    max_pixels: int = param(8192 * 8192, gt=0, doc="reject streams with more pixels per frame than this")


class RtspSource(Source):
    type_name = "rtsp"
    Params = RtspParams
    live = True

    def __init__(self, params: RtspParams | None = None) -> None:
        super().__init__(params)
        self.shown = mask_credentials(self.params.uri)
        self._container = None
        self._stream = None
        self._first = None          # the frame decoded while opening (gives the true size)
        self._fps = 0.0
        self._size = (0, 0)
        self._last_time = -1.0
        self._last_wall = 0.0
        self._offset = 0.0
        self._origin = None
        self._new_connection = True
        self._first_wall = 0.0
        self._frames_out = 0
        self._reason = ""
        self._warned = False
        self.counters = {"frames": 0, "disconnects": 0, "reconnects": 0, "reconnect_attempts": 0,
                         "outage_s": 0.0, "lost_frames_est": 0, "decode_errors": 0}

    # ---- connection ----
    def _options(self) -> dict:
        options = {}
        if self.params.uri.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.params.transport
        if self.params.low_latency:
            options.update({"analyzeduration": "0", "probesize": "32", "fflags": "nobuffer"})
        return options

    def _safe(self, exc: BaseException) -> str:
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return mask_credentials(str(text).replace(self.params.uri, self.shown)).split(": '")[0]

    def _connect(self) -> None:
        """Open the stream and decode its first frame (bounded by the timeouts); SourceError if not."""
        import av

        self._disconnect()
        try:
            container = av.open(self.params.uri, mode="r", options=self._options(),
                                timeout=(self.params.open_timeout, self.params.read_timeout))
        except (av.FFmpegError, OSError) as exc:
            self._reason = self._safe(exc)
            raise SourceError(f"cannot connect to {self.shown}: {self._reason}") from None
        try:
            if not container.streams.video:
                self._reason = "no video stream"
                raise SourceError(f"no video stream in {self.shown}")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE" if self.params.low_latency else "AUTO"
            self._container, self._stream = container, stream
            self._packets = container.demux(stream)
            first = next(self._decoded(), None)
            if first is None:
                self._reason = "stream ended before its first frame"
                raise SourceError(f"stream ended before its first frame: {self.shown}")
        except BaseException:
            self._disconnect()
            raise
        if first.width * first.height > self.params.max_pixels:
            self._disconnect()
            self._reason = "frame too large"
            raise SourceError(f"frame size {first.width}x{first.height} exceeds max_pixels="
                              f"{self.params.max_pixels}: {self.shown}")
        self._first, self._first_wall = first, time.perf_counter()
        self._new_connection = True
        for rate in (stream.average_rate, stream.guessed_rate):
            if rate and not self._fps:
                self._fps = float(rate)

    def _connect_abandonable(self, stopped) -> bool:
        """_connect() in a helper thread, so that Ctrl-C (in the main thread) or `stopped()` need
        not wait for FFmpeg, which ignores both until its own timeout. True when connected, False
        when abandoned (the helper then closes whatever it opens); SourceError as _connect()."""
        result: dict = {}
        lock = threading.Lock()

        def work() -> None:
            try:
                self._connect()
                result["ok"] = True
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                result["error"] = exc
            with lock:
                if result.get("abandoned") and result.get("ok"):
                    self._disconnect()

        worker = threading.Thread(target=work, name="vidpipe-rtsp-connect", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.05)
                if stopped():
                    break
        finally:
            with lock:
                if worker.is_alive():
                    result["abandoned"] = True
        if result.get("abandoned"):
            return False
        if "error" in result:
            raise result["error"]
        return True

    def _disconnect(self) -> None:
        container, self._container = self._container, None
        self._stream, self._packets, self._first = None, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - a dead connection may not close cleanly
                pass

    def _decoded(self):
        """Decoded frames of the current connection; ends on end of stream or a read error."""
        import av

        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                log.warning("%s: read failed: %s", self.shown, self._safe(exc))
                return
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                self.counters["decode_errors"] += 1
                if not self._warned:
                    self._warned = True
                    log.warning("%s: decode error (%s); frames that decode are kept, further errors counted",
                                self.shown, self._safe(exc))
                continue
            yield from frames

    # ---- contract ----
    def open(self) -> SourceInfo:
        delay = self.params.backoff_initial
        for attempt in range(1, self.params.connect_attempts + 1):
            try:
                self._connect_abandonable(lambda: False)  # Ctrl-C interrupts the wait
                break
            except SourceError as exc:
                if attempt == self.params.connect_attempts:
                    raise SourceError(f"{exc} (after {attempt} attempt{'s' * (attempt > 1)})") from None
                log.warning("%s; retrying in %.1f s (attempt %d/%d)", exc, delay, attempt + 1,
                            self.params.connect_attempts)
                time.sleep(delay)
                delay = min(delay * 2, self.params.backoff_max)
        self._size = (self._first.width, self._first.height)
        log.info("connected to %s: %dx%d at %.1f fps", self.shown, *self._size, self._fps)
        return SourceInfo(uri=self.shown, width=self._size[0], height=self._size[1], fps=self._fps or 30.0,
                          live=True, frame_count=None, time_base=TIME_BASE,
                          codec=self._stream.codec_context.name)

    def _reconnect(self, stop_event: threading.Event) -> bool:
        """After a disconnect: True once connected again, False if stopped; SourceError when every attempt failed."""
        self.counters["disconnects"] += 1
        lost_at = time.perf_counter()
        if not self.params.reconnect:
            raise SourceError(f"stream ended: {self.shown} (reconnect is off)")
        delay, last = self.params.backoff_initial, ""
        log.warning("%s: stream lost after frame %d; reconnecting (up to %d attempts)", self.shown,
                    self._frames_out - 1, self.params.max_attempts)
        for attempt in range(1, self.params.max_attempts + 1):
            if stop_event.wait(delay):
                return False
            self.counters["reconnect_attempts"] += 1
            try:
                if not self._connect_abandonable(stop_event.is_set):
                    return False
            except SourceError:
                last = self._reason
                log.warning("%s: reconnect attempt %d/%d failed: %s", self.shown, attempt, self.params.max_attempts, last)
                delay = min(delay * 2, self.params.backoff_max)
                continue
            outage = time.perf_counter() - lost_at
            lost = max(0, round(outage * (self._fps or 30.0)) - 1)
            self.counters["reconnects"] += 1
            self.counters["outage_s"] = round(self.counters["outage_s"] + outage, 3)
            self.counters["lost_frames_est"] += lost
            log.warning("%s: reconnected on attempt %d after a %.2f s outage (about %d frames lost)",
                        self.shown, attempt, outage, lost)
            return True
        outage = time.perf_counter() - lost_at
        self.counters["outage_s"] = round(self.counters["outage_s"] + outage, 3)
        raise SourceError(f"stream lost: {self.shown}: {self.params.max_attempts} reconnect attempts failed "
                          f"over {outage:.1f} s (last: {last})")

    def _to_frame(self, av_frame, wall: float) -> Frame:
        """Timestamps: within a connection from pts; a new connection starts at the last time
        plus the wall-clock gap (at least one frame interval), so time never goes back."""
        step = 1.0 / (self._fps or 30.0)
        pts, tb = av_frame.pts, av_frame.time_base
        if self._new_connection:
            self._new_connection = False
            self._origin = pts
            self._offset = 0.0 if self._last_time < 0 else self._last_time + max(step, wall - self._last_wall)
            t = self._offset
        elif pts is not None and tb is not None:
            if self._origin is None:  # the connection's first frames had no pts: anchor here
                self._origin, self._offset = pts, self._last_time + step
            t = self._offset + float((pts - self._origin) * tb)
        else:
            t = self._last_time + step
        if t <= self._last_time:  # a discontinuity inside a connection: keep time moving forward
            t = self._last_time + step
        self._last_time, self._last_wall = t, wall
        image = av_frame.to_ndarray(format="bgr24")
        frame = Frame(self._frames_out, t, image, pts=round(t / TIME_BASE), time_base=TIME_BASE)
        self._frames_out += 1
        self.counters["frames"] = self._frames_out
        return frame

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        while not stop_event.is_set():
            if self._container is None and not self._reconnect(stop_event):
                return
            first, self._first = self._first, None
            if first is not None:
                yield self._to_frame(first, self._first_wall)
            for av_frame in self._decoded():
                if stop_event.is_set():
                    return
                yield self._to_frame(av_frame, time.perf_counter())
            self._disconnect()  # the stream ended or failed: a disconnect on a live source

    def stats(self) -> dict:
        return dict(self.counters)

    def close(self) -> None:
        self._disconnect()
