#!/usr/bin/python3
"""A small RTSP server for the live-source tests: GStreamer's RTSP server (Debian packages
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-{base,good,bad,ugly}), serving a
generated H.264 clip (a moving test pattern with a running clock) in an endless loop.

Run it with Debian's /usr/bin/python3 (its `gi` module is not in a virtualenv):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /test [--user u --password p]

It prints `READY <port>` once it listens on 127.0.0.1 and stops on SIGTERM or SIGINT.
SIGSTOP freezes it (connections stay open, no data flows), which is how the tests make a
server that hangs its clients.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL = ("apt-get install -y gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
           "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly")


def unavailable_reason() -> str | None:
    """None when the server can run here, else why not (for pytest.skip)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found (the GStreamer RTSP server runs under Debian's python3)"
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'x264enc', 'rtph264pay', 'timeoverlay'))")
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return f"GStreamer RTSP server not installed (install: {INSTALL})"
    return None


class ServerProcess:
    """The server as a child process of the tests: start, kill (SIGKILL), freeze (SIGSTOP), restart
    on the same port."""

    def __init__(self, port: int = 0, mount: str = "/test", **options) -> None:
        self.port, self.mount, self.options = port, mount, options
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout: float = 15.0) -> "ServerProcess":
        args = [SYSTEM_PYTHON, os.path.abspath(__file__), "--port", str(self.port), "--mount", self.mount]
        for key, value in self.options.items():
            args += [f"--{key}", str(value)]
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = self.proc.stdout.readline()  # "READY <port>" or nothing if it exits
            if line.startswith("READY"):
                self.port = int(line.split()[1])
                return self
            self.proc.wait(timeout=5)
            error = self.proc.stderr.read().strip()
            self._close_pipes()
            if time.monotonic() > deadline:  # e.g. the port is not free again yet
                raise RuntimeError(f"RTSP server did not start: {error}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            stream.close()

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._close_pipes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8554, help="TCP port (0: any free port, printed)")
    parser.add_argument("--mount", default="/test", help="stream path")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--keyint", type=int, default=15, help="frames between keyframes")
    parser.add_argument("--user", default="", help="require basic auth with this user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    width, height = (int(v) for v in args.size.lower().split("x"))
    launch = (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
        f"framerate={args.fps}/1 ! timeoverlay halignment=left valignment=bottom ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.keyint} ! "
        f"rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda *_: (loop.quit(), False)[1])
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
