"""Run statistics: per stage frames in/out, drops, p50/p95 latency of process, busy time; queue
high-water marks and drops per edge; whole-run fps, end-to-end latency (decoded -> written by the
sinks) p50/p95 and peak RSS. `RunStats.to_dict()` for the API and benchmarks, `format_table` for the CLI.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
import time
from array import array
from typing import Any

import numpy as np


def _pct(values: array, q: float) -> float | None:
    if not len(values):
        return None
    return round(float(np.percentile(np.frombuffer(values, dtype=np.float64), q)) * 1000.0, 3)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def _descendants(pid: int) -> list[int]:
    """pid's children, theirs, and so on (Linux /proc; empty elsewhere)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def tree_pss_mb(pid: int | None = None, descendants: bool = True) -> float | None:
    """Proportional set size of a process and (by default) all its descendants together, MiB: each
    shared page is split between the processes that map it, so the pages worker processes share
    with their fork server (numpy, OpenCV, torch) count once, where summing their RSS counts them
    in each. None where /proc/PID/smaps_rollup cannot be read (not Linux)."""
    pid = os.getpid() if pid is None else pid
    total, read = 0.0, False
    for p in [pid] + (_descendants(pid) if descendants else []):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024
                        read = True
                        break
        except OSError:
            continue          # gone meanwhile, or not ours to read
    return round(total, 1) if read else None


class StageStats:
    """Counters of one thread's work. Written only by that thread; read at the end (or for progress)."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0     # the stage returned None
        self.discarded = 0   # thrown away after a stop or an error upstream of it
        self.busy = 0.0
        self.cpu = 0.0       # CPU seconds of this thread inside process()/write() (time.thread_time)
        self.latency = array("d")  # seconds per frame of process()/write()

    def record(self, n_in: int, n_out: int, seconds: float) -> None:
        self.frames_in += n_in
        self.frames_out += n_out
        self.dropped += n_in - n_out
        self.busy += seconds
        per_frame = seconds / max(n_in, 1)
        self.latency.extend([per_frame] * n_in)

    def to_dict(self, wall: float) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, "frames_in": self.frames_in, "frames_out": self.frames_out,
                "dropped": self.dropped, "discarded": self.discarded,
                "p50_ms": _pct(self.latency, 50), "p95_ms": _pct(self.latency, 95),
                "busy_s": round(self.busy, 4), "cpu_s": round(self.cpu, 4), "busy_pct": round(100.0 * self.busy / wall, 1) if wall > 0 else None}


class RunStats:
    def __init__(self) -> None:
        self.stages: list[StageStats] = []
        self.e2e = array("d")
        self.frames_read = 0
        self.frames_written = 0
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.cpu_started = time.process_time()
        self.cpu_ended: float | None = None
        self.source_cpu = 0.0  # CPU seconds of the source thread (decode calls, colour conversion)
        self._lock = threading.Lock()

    def add_stage(self, name: str, kind: str) -> StageStats:
        stats = StageStats(name, kind)
        self.stages.append(stats)
        return stats

    def written(self, latency: float) -> None:
        self.e2e.append(latency)
        self.frames_written += 1

    @property
    def wall(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def to_dict(self, edges=(), source: dict | None = None, summaries: dict | None = None,
                **extra) -> dict[str, Any]:
        wall = self.wall
        stages = [s.to_dict(wall) for s in self.stages]
        for row in stages:
            if summaries and summaries.get(row["name"]):
                row["summary"] = summaries[row["name"]]
        queues = [e.stats() for e in edges]
        return {
            "frames_read": self.frames_read, "frames_written": self.frames_written,
            "wall_s": round(wall, 4), "fps": round(self.frames_written / wall, 2) if wall > 0 else None,
            "latency_ms": {"p50": _pct(self.e2e, 50), "p95": _pct(self.e2e, 95)},
            "drops": sum(q["drops"] for q in queues), "peak_rss_mb": peak_rss_mb(),
            "cpu_s": round((self.cpu_ended or time.process_time()) - self.cpu_started, 4),
            "source_cpu_s": round(self.source_cpu, 4),
            **extra, "source": source or {}, "stages": stages, "queues": queues,
        }


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    cells = [header] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(stats: dict) -> str:
    """The end-of-run summary: stages, queues, and one line for the whole run."""
    rows = [[s["name"], s["frames_in"], s["frames_out"], s["dropped"], s["p50_ms"], s["p95_ms"], s["busy_pct"]]
            for s in stats["stages"]]
    lines = _table(["stage", "in", "out", "dropped", "p50 ms", "p95 ms", "busy %"], rows)
    for s in stats["stages"]:
        if s.get("summary"):
            lines.append(f"  {s['name']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in s["summary"].items()))
    lines.append("")
    lines += _table(["queue", "size", "policy", "high water", "drops"],
                    [[q["edge"], q["size"], q["policy"], q["high_water"], q["drops"]] for q in stats["queues"]])
    src = {k: v for k, v in stats.get("source", {}).items() if k not in ("uri", "type")}
    if src:
        lines.append("source: " + ", ".join(f"{k}={_fmt(v)}" for k, v in src.items()))
    for out in stats.get("outputs", ()):
        fields = {k: v for k, v in out.items() if k != "type"}
        if fields:
            lines.append(f"sink {out['type']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in fields.items()))
    lat = stats["latency_ms"]
    lines.append(f"{stats['frames_written']} frames written of {stats['frames_read']} read in {stats['wall_s']:.2f} s: "
                 f"{_fmt(stats['fps'])} fps, end-to-end latency p50 {_fmt(lat['p50'])} ms, p95 {_fmt(lat['p95'])} ms, "
                 f"{stats['drops']} dropped in queues, peak RSS {stats['peak_rss_mb']} MiB"
                 + (f" (PSS {stats['peak_pss_mb']:.0f} MiB: shared pages once)" if stats.get("peak_pss_mb") else ""))
    return "\n".join(lines)
