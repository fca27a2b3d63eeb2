"""RTSP source against a real RTSP server (GStreamer, started here on 127.0.0.1): connect and
process frames; kill the server mid-stream and bring it back (reconnect, output holds frames from
before and after); a server that never comes back; a frozen server (timeouts, never a hang); a
first connect that fails (clean end, stoppable); credentials never shown."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from avgen import decode_all
from rtsp_server import ServerProcess, unavailable_reason

from pipeline.api import Pipeline
from pipeline.errors import SourceError
from pipeline.sinks.jsonl import JsonlParams, JsonlSink, read_jsonl
from pipeline.sinks.video import VideoParams, VideoSink
from pipeline.sources.rtsp import RtspParams, RtspSource, mask_credentials

ROOT = Path(__file__).resolve().parents[1]
FPS = 30


@pytest.mark.parametrize("text,masked", [
    ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
    ("rtsp://admin@cam/live", "rtsp://***@cam/live"),
    ("rtsp://cam/live", "rtsp://cam/live"),
    ("cannot open rtsp://u:p%40ss@cam/x: 401", "cannot open rtsp://***@cam/x: 401"),
    ("http://cam/video?user=bob&password=s3cret&res=hd", "http://cam/video?user=***&password=***&res=hd"),
    ("rtsps://a:b@h/x and rtmp://c:d@h/y", "rtsps://***@h/x and rtmp://***@h/y"),
])
def test_mask_credentials(text, masked):
    assert mask_credentials(text) == masked


# ---------------- against a real server ----------------

@pytest.fixture(scope="module")
def gst():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def server(gst):
    srv = ServerProcess(fps=FPS, size="320x240").start()
    yield srv
    srv.stop()


def source(url, **params) -> RtspSource:
    defaults = dict(open_timeout=2.0, read_timeout=1.5, backoff_initial=0.2, backoff_max=1.0)
    return RtspSource(RtspParams(uri=url, **{**defaults, **params}))


def pipeline(src, tmp_path, max_frames=None):
    sinks = [VideoSink(VideoParams(path=str(tmp_path / "out.mp4"))), JsonlSink(JsonlParams(path=str(tmp_path / "out.jsonl")))]
    return Pipeline(src, [], sinks, max_frames=max_frames, print_stats=False, drain_timeout=3.0)


def no_threads_left(before: set) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("vidpipe") and t not in before]:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_connect_and_process_frames(server, tmp_path, transport):
    stats = pipeline(source(server.url, transport=transport), tmp_path, max_frames=45).run()
    assert stats["frames_written"] == 45 and stats["drop_policy"] == "drop_oldest"
    assert stats["source"]["uri"] == server.url and stats["source"]["reconnects"] == 0
    images, times, facts = decode_all(tmp_path / "out.mp4")
    assert len(images) == 45 and (facts["width"], facts["height"]) == (320, 240)
    assert np.allclose(np.diff(times), 1 / FPS, atol=0.004)  # the stream's own timestamps
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["index"] for r in records] == list(range(45))


def test_server_killed_and_restarted_reconnects(server, tmp_path, caplog, capsys):
    src = source(server.url)
    events = {}

    def outage():
        time.sleep(1.5)
        server.kill()
        events["killed"] = time.monotonic()
        time.sleep(1.0)
        server.start()
        events["restarted"] = time.monotonic()

    pipe = pipeline(src, tmp_path, max_frames=110)
    chaos = threading.Thread(target=outage)
    chaos.start()
    with caplog.at_level(logging.INFO, logger="vidpipe"):
        stats = pipe.run()
    chaos.join()
    s = stats["source"]
    assert s["disconnects"] == 1 and s["reconnects"] == 1 and stats["frames_written"] == 110
    assert "stream lost after frame" in caplog.text and "reconnected on attempt" in caplog.text
    records = read_jsonl(tmp_path / "out.jsonl")
    times = np.array([r["time"] for r in records])
    gaps = np.diff(times)
    assert np.all(gaps > 0)  # monotonic across the reconnect
    k = int(np.argmax(gaps))
    assert gaps[k] > 0.9 and k >= 20 and len(times) - k - 1 >= 20  # frames from before and after the outage
    _, video_times, _ = decode_all(tmp_path / "out.mp4")
    assert len(video_times) == 110 and np.allclose(video_times, times - times[0], atol=2e-3)
    with capsys.disabled():
        print(f"\n  RTSP kill-and-restart: outage {s['outage_s']:.2f} s (server down {events['restarted'] - events['killed']:.2f} s), "
              f"about {s['lost_frames_est']} frames lost, gap in the output {gaps[k]:.2f} s, "
              f"{s['reconnect_attempts']} reconnect attempt(s); {k + 1} frames before, {len(times) - k - 1} after")


def test_server_never_comes_back_clear_error_and_finalized_output(server, tmp_path, caplog):
    src = source(server.url, max_attempts=3)
    threading.Timer(1.5, server.kill).start()
    before = set(threading.enumerate())
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="vidpipe"), pytest.raises(SourceError) as err:
        pipeline(src, tmp_path).run()
    elapsed = time.monotonic() - t0
    assert f"stream lost: {server.url}: 3 reconnect attempts failed" in str(err.value)
    assert "Connection refused" in str(err.value) and "\n" not in str(err.value)
    assert caplog.text.count("reconnect attempt") == 3
    assert elapsed < 1.5 + 1.5 + 3 * (0.2 + 1.0 + 2.0) + 2  # bounded by backoff and timeouts
    images, _, _ = decode_all(tmp_path / "out.mp4")
    assert len(images) >= 10 and len(images) == len(read_jsonl(tmp_path / "out.jsonl"))
    assert no_threads_left(before)


def test_frozen_server_times_out_instead_of_hanging(server, tmp_path, caplog):
    src = source(server.url, max_attempts=2, open_timeout=1.0, read_timeout=1.0)
    threading.Timer(1.5, server.freeze).start()
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="vidpipe"), pytest.raises(SourceError, match="2 reconnect attempts failed"):
        pipeline(src, tmp_path).run()
    assert time.monotonic() - t0 < 15
    assert len(decode_all(tmp_path / "out.mp4")[0]) >= 10


def test_first_connect_fails_ends_cleanly(gst, tmp_path):
    port = ServerProcess().start()
    port.stop()  # a port where nothing listens now
    url = f"rtsp://bob:hunter2@127.0.0.1:{port.port}/test"
    before = set(threading.enumerate())
    t0 = time.monotonic()
    with pytest.raises(SourceError) as err:
        pipeline(source(url, connect_attempts=2), tmp_path).run()
    assert time.monotonic() - t0 < 3
    text = str(err.value)
    assert text == f"cannot connect to rtsp://***@127.0.0.1:{port.port}/test: Connection refused (after 2 attempts)"
    assert not (tmp_path / "out.mp4").exists() and no_threads_left(before)


def test_cli_stops_on_ctrl_c_while_connecting(server, tmp_path):
    """A frozen server accepts the TCP connection and never answers: Ctrl-C must still stop."""
    server.freeze()
    config = tmp_path / "live.yaml"
    config.write_text(f"source: {{uri: '{server.url}', open_timeout: 30, connect_attempts: 5}}\n"
                      f"sinks: [{{type: video, path: '{tmp_path / 'o.mp4'}'}}]\n")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert time.monotonic() - t0 < 5
    assert proc.returncode != 0 and "Traceback" not in err


def test_credentials_never_shown(gst, tmp_path, caplog):
    srv = ServerProcess(user="bob", password="hunter2", fps=FPS).start()
    try:
        url = srv.url.replace("rtsp://", "rtsp://bob:hunter2@")
        src = source(url, max_attempts=2)
        threading.Timer(1.0, srv.kill).start()
        with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
            stats_holder = pipeline(src, tmp_path)
            stats_holder.run()
        wrong = url.replace("hunter2", "wrong")
        srv.start()
        with pytest.raises(SourceError) as err2:
            pipeline(source(wrong), tmp_path / "w").run()
    finally:
        srv.stop()
    shown = caplog.text + str(err.value) + str(err2.value) + str(stats_holder.stats)
    assert "hunter2" not in shown and "wrong" not in shown and "bob" not in shown
    assert "rtsp://***@127.0.0.1" in str(err.value) and "401" in str(err2.value) or "Unauthorized" in str(err2.value)
    assert len(decode_all(tmp_path / "out.mp4")[0]) >= 10  # it did connect with the right password


def test_rtsp_source_registered_and_inferred():
    from pipeline.sources import SOURCES, infer_type

    assert SOURCES["rtsp"] == "pipeline.sources.rtsp:RtspSource" and infer_type("rtsp://x/y") == "rtsp"
    assert os.path.exists(ROOT / "tests" / "rtsp_server.py")
