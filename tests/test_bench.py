"""`vidpipe bench`: the looping source (indices, times and pts continue; every pass decoded in full),
the bound arithmetic on known stats, and the command end to end (table + JSON)."""
from __future__ import annotations

import json
import threading

import av
import pytest
from avgen import index_of, make_video

from pipeline.bench import LoopSource, analyze, format_report, steady_state
from pipeline.cli import main
from pipeline.sources.file import FileParams, FileSource


def test_loop_source_continues_indices_times_and_pts(tmp_path):
    path = make_video(tmp_path / "clip.mp4", n=10, fps=25)
    loop = LoopSource(lambda: FileSource(FileParams(uri=str(path))), passes=3)
    info = loop.open()
    assert info.frame_count == 30 and not info.live
    frames = list(loop.frames(threading.Event()))
    loop.close()
    assert [f.index for f in frames] == list(range(30))
    assert [index_of(f.image) for f in frames] == list(range(10)) * 3  # every pass is the whole clip
    times = [f.time for f in frames]
    assert times == pytest.approx([i / 25 for i in range(30)], abs=1e-6)
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert loop.stats() == {"passes": 3, "frames": 30}


def test_loop_source_stops_on_request(tmp_path):
    path = make_video(tmp_path / "clip.mp4", n=5)
    loop = LoopSource(lambda: FileSource(FileParams(uri=str(path))))
    loop.open()
    stop, got = threading.Event(), 0
    for frame in loop.frames(stop):
        got += 1
        if got == 12:
            stop.set()
    loop.close()
    assert got == 12


def _stats(fps=90.0, cpu_s=2.0, device="cpu"):
    """100 frames; stage a: 5 ms CPU (8 ms wall), stage b: 2 ms CPU; sinks 1 ms."""
    stage = lambda name, busy, cpu: {"name": name, "type": name, "frames_in": 100, "frames_out": 100,  # noqa: E731
                                     "busy_s": busy, "cpu_s": cpu, "p50_ms": 1.0, "p95_ms": 2.0}
    return {"frames_read": 100, "frames_written": 100, "wall_s": 100 / fps, "fps": fps,
            "latency_ms": {"p50": 10.0, "p95": 20.0}, "drops": 0, "peak_rss_mb": 100.0, "cpu_s": cpu_s,
            "source_cpu_s": 0.1, "device": device, "source": {"type": "file"},
            "stages": [stage("a", 0.8, 0.5), stage("b", 0.3, 0.2), stage("sinks", 0.1, 0.1)],
            "queues": [{"edge": e, "size": 8, "high_water": 3, "drops": 0} for e in ("s->a", "a->b", "b->sinks")]}


@pytest.mark.parametrize("fps, cpu_s, cores, run_device, bound, limit", [
    (90.0, 2.0, 2, "cpu", 100.0, "CPU (2 cores)"),       # 20 ms CPU/frame on 2 cores; a needs 5 ms
    (90.0, 0.5, 2, "cpu", 200.0, "stage a"),             # 5 ms CPU/frame: the slowest stage (5 ms CPU) binds
    (90.0, 0.5, 2, "cuda", 125.0, "stage a"),            # on a GPU run a stage's wall time (8 ms) counts
])
def test_bound(fps, cpu_s, cores, run_device, bound, limit):
    a = analyze(_stats(fps, cpu_s, run_device), n_cores=cores)
    assert a["bound_fps"] == pytest.approx(bound)
    assert a["limited_by"] == limit
    assert a["efficiency"] == pytest.approx(fps / bound)
    assert a["slowest"] == "a"
    assert [r["name"] for r in a["rows"]] == ["source", "a", "b", "sinks"]
    assert sum(r["share_pct"] for r in a["rows"]) == pytest.approx(100.0)
    assert a["rows"][1]["queue_high_water"] == 3


def test_bound_on_cores_left():
    a = analyze(_stats(fps=45.0, cpu_s=2.0), n_cores=2, others_cores=1.0)  # one core left: 50 fps
    assert a["bound_left_fps"] == pytest.approx(50.0)
    assert a["efficiency_left"] == pytest.approx(0.9)
    assert "other processes left 1.00 of 2 cores" in format_report(a)


def test_steady_state_window_leaves_out_warm_up_and_drain():
    """Samples (t, machine busy, run CPU, read, written): a slow start (10 frames in 1 s), 100 fps
    at 16 ms CPU per frame from frame 50, the source done at 400, then a drain."""
    samples, t, cpu, written = [], 0.0, 0.0, 0
    while written < 420:
        rate = 10 if t < 1.0 else 100
        t += 0.1
        written += rate // 10
        cpu += (rate // 10) * (0.05 if rate == 10 else 0.016)
        read = min(written + 8, 400)
        samples.append((t, 0.4 * t + cpu, cpu, read, written))
    st = steady_state(samples, warmup=50, total=400, n_cores=2, serial_fps=500.0)
    assert st["from_frame"] >= 50 and st["to_frame"] < 400
    assert st["fps"] == pytest.approx(100.0) and st["cpu_ms_per_frame"] == pytest.approx(16.0)
    assert st["bound_fps"] == pytest.approx(125.0) and st["efficiency"] == pytest.approx(0.8)
    assert st["cores_left"] == pytest.approx(1.6)          # others kept 0.4 cores busy
    assert st["efficiency_left"] == pytest.approx(1.0)     # 1.6 cores / 16 ms = 100 fps
    assert steady_state(samples[:5], warmup=50, total=400, n_cores=2, serial_fps=500.0) is None


def test_bench_command_writes_table_and_json(tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mp4", n=8, size=(96, 64))
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"source: {clip}\nstages: [annotate]\nsinks:\n  - {{type: video, path: {tmp_path / 'o.mp4'}}}\n")
    out = tmp_path / "r.json"
    assert main(["bench", str(cfg), "--frames", "20", "--loop", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "throughput" in text and "bound min(" in text and "annotate" in text
    report = json.loads(out.read_text())
    assert report["frames"] == 20 and report["stats"]["frames_written"] == 20
    assert report["bound_fps"] > 0 and 0 < report["efficiency"]
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert c.streams.video[0].frames == 20


def test_bench_loop_needs_frames(tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mp4", n=4, size=(64, 48))
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"source: {clip}\nstages: [annotate]\n")
    assert main(["bench", str(cfg), "--loop"]) == 2
    assert "--loop needs --frames" in capsys.readouterr().err


class _SlowSource:
    """n frames; frame `stall_at` takes `stall` seconds to arrive (a decoder hiccup)."""

    type_name = "slow"
    live = False

    def __init__(self, n, stall_at=-1, stall=0.0):
        self.n, self.stall_at, self.stall = n, stall_at, stall

    def open(self):
        from pipeline.stage import SourceInfo

        return SourceInfo("slow", 8, 8, 30.0, False, self.n)

    def frames(self, stop_event):
        import time

        import numpy as np

        from pipeline.frame import Frame

        for i in range(self.n):
            if i == self.stall_at:
                time.sleep(self.stall)
            yield Frame(i, i / 30, np.zeros((8, 8, 3), np.uint8))

    def close(self):
        pass


def test_paced_source_keeps_the_rate_and_skips_late_frames():
    import time

    from pipeline.bench import PacedSource

    paced = PacedSource(_SlowSource(30), fps=100)
    info = paced.open()
    assert info.live and info.fps == 100
    t0 = time.perf_counter()
    frames = list(paced.frames(threading.Event()))
    took = time.perf_counter() - t0
    assert len(frames) == 30 and 0.27 <= took < 0.6  # 29 periods of 10 ms, never faster
    assert [f.time for f in frames] == pytest.approx([i / 100 for i in range(30)])
    late = PacedSource(_SlowSource(30, stall_at=10, stall=0.055), fps=100)  # ~5 periods late
    late.open()
    got = list(late.frames(threading.Event()))
    assert 3 <= late.skipped <= 6 and len(got) == 30 - late.skipped
    assert late.stats() == {"delivered": len(got), "skipped_late": late.skipped}
    assert all(b.index > a.index for a, b in zip(got, got[1:]))  # indices keep the gaps
