"""`vidpipe bench`: run a config on a video for N frames and report what limits its speed.

    vidpipe bench configs/default.yaml --frames 900 --loop --json out/bench.json

Reports throughput, end-to-end latency p50/p95, per-stage time (wall and thread CPU) and share,
queue high-water marks, peak memory, and the bound the run could reach:

    bound = min(1 / slowest stage time, cores / CPU time per frame)

The slowest stage time is the largest per-frame time of any thread in the chain (source, each
stage, the sinks): its thread CPU time on a CPU run (wall time there also counts waiting for a
core), its wall time on a GPU run (waiting for the device is real serial time). The CPU time
per frame is the whole process's (every thread, the encoder's and decoder's own threads
included) during the run. `efficiency` = throughput / bound.

`--loop` plays a finite source again and again (`LoopSource`), so that a short clip gives a long
run; frame indices and timestamps continue across passes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .frame import Frame
from .sources.base import Source
from .stage import SourceInfo


class LoopSource(Source):
    """Plays a finite source `passes` times (None: until stopped). `make()` builds a fresh inner
    source for every pass; indices, times and pts continue across passes (one frame period apart)."""

    live = False

    def __init__(self, make: Callable[[], Source], passes: int | None = None) -> None:
        super().__init__(None)
        if passes is not None and passes < 1:
            raise ValueError(f"passes: expected 1 <= x or None, got {passes}")
        self.make, self.passes = make, passes
        self.inner = make()
        self.type_name = f"loop({getattr(self.inner, 'type_name', '')})"
        self.info: SourceInfo | None = None
        self._opened = False
        self._done_passes = 0
        self._frames = 0

    def open(self) -> SourceInfo:
        if getattr(self.inner, "live", False):
            raise ValueError("--loop needs a finite source (a file or a generator), not a live one")
        info = self.inner.open()
        self._opened = True
        count = info.frame_count * self.passes if (info.frame_count and self.passes) else None
        self.info = SourceInfo(uri=info.uri, width=info.width, height=info.height, fps=info.fps, live=False,
                               frame_count=count, time_base=info.time_base, codec=info.codec)
        return self.info

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        fps = self.info.fps if self.info and self.info.fps > 0 else 30.0
        t_off, pts0 = 0.0, None
        while not stop_event.is_set() and (self.passes is None or self._done_passes < self.passes):
            if not self._opened:
                self.inner = self.make()
                self.inner.open()
                self._opened = True
            last_t = None
            for frame in self.inner.frames(stop_event):
                last_t = frame.time
                frame.index = self._frames
                frame.time = t_off + frame.time
                if frame.pts is not None and frame.time_base:
                    pts0 = frame.pts if pts0 is None else pts0
                    frame.pts = pts0 + round(frame.time / frame.time_base)
                self._frames += 1
                yield frame
            self.inner.close()
            self._opened = False
            self._done_passes += 1
            if last_t is None:
                return  # an empty pass would loop forever
            t_off += last_t + 1.0 / fps

    def stats(self) -> dict:
        return {"passes": self._done_passes, "frames": self._frames}

    def close(self) -> None:
        if self._opened:
            self.inner.close()
            self._opened = False


class PacedSource(Source):
    """Delivers a finite (or looped) source's frames at `fps` like a camera: live (drop_oldest
    queues), never waiting for the pipeline; a frame whose time has passed by more than one period
    when it is decoded is skipped and counted (a camera's driver would have overwritten it)."""

    live = True

    def __init__(self, inner: Source, fps: float) -> None:
        super().__init__(None)
        if not fps > 0:
            raise ValueError(f"fps: expected 0 < x, got {fps}")
        self.inner, self.fps = inner, float(fps)
        self.type_name = f"paced({getattr(inner, 'type_name', '')})"
        self.skipped = 0
        self._delivered = 0

    def open(self) -> SourceInfo:
        info = self.inner.open()
        return SourceInfo(uri=info.uri, width=info.width, height=info.height, fps=self.fps, live=True,
                          frame_count=None, time_base=info.time_base, codec=info.codec)

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        period, start, n = 1.0 / self.fps, None, 0
        for frame in self.inner.frames(stop_event):
            now = time.perf_counter()
            start = now if start is None else start
            due = start + n * period
            n += 1
            if now > due + period:
                self.skipped += 1
                continue
            if due > now and stop_event.wait(due - now):
                return
            frame.index, frame.time, frame.pts = n - 1, (n - 1) * period, None
            frame.decoded_at = time.perf_counter()
            self._delivered += 1
            yield frame

    def stats(self) -> dict:
        return {"delivered": self._delivered, "skipped_late": self.skipped}

    def close(self) -> None:
        self.inner.close()


# ---- analysis ----
def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_busy() -> float | None:
    """CPU seconds all processes of the machine have used so far (/proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def analyze(stats: dict, n_cores: int | None = None, others_cores: float | None = None) -> dict[str, Any]:
    """Per-thread times per frame, shares and the bound, from a runner stats dict. `others_cores`:
    cores other processes kept busy during the run on average (a shared machine): adds the bound
    on the cores that were left to this run."""
    n_cores = n_cores or cores()
    gpu = str(stats.get("device", "cpu")).startswith("cuda")
    frames = max(stats["frames_written"], 1)
    rows = [{"name": "source", "type": stats.get("source", {}).get("type", ""), "frames": stats["frames_read"],
             "wall_ms": None, "cpu_ms": 1000 * stats.get("source_cpu_s", 0.0) / max(stats["frames_read"], 1),
             "p50_ms": None, "p95_ms": None}]
    for s in stats["stages"]:
        n = max(s["frames_in"], 1)
        rows.append({"name": s["name"], "type": s["type"], "frames": s["frames_in"],
                     "wall_ms": 1000 * s["busy_s"] / n, "cpu_ms": 1000 * s.get("cpu_s", 0.0) / n,
                     "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"]})
    queues = stats.get("queues", [])
    for row, q in zip(rows[1:], queues):  # the queue feeding each stage and the sinks
        row["queue_high_water"] = q["high_water"]
        row["queue_size"] = q["size"]
    total_wall = sum(r["wall_ms"] or 0.0 for r in rows) or 1.0
    total_thread_cpu = sum(r["cpu_ms"] for r in rows)
    cpu_per_frame = 1000 * stats.get("cpu_s", 0.0) / frames
    for r in rows:
        r["share_pct"] = 100 * (r["wall_ms"] or 0.0) / total_wall
        r["cpu_share_pct"] = 100 * r["cpu_ms"] / cpu_per_frame if cpu_per_frame else None
        r["time_ms"] = max(r["wall_ms"] or 0.0, r["cpu_ms"]) if gpu else r["cpu_ms"]
    slowest = max(rows, key=lambda r: r["time_ms"])
    serial = 1000 / slowest["time_ms"] if slowest["time_ms"] > 0 else float("inf")
    parallel = 1000 * n_cores / cpu_per_frame if cpu_per_frame > 0 else float("inf")
    bound = min(serial, parallel)
    fps = stats.get("fps") or 0.0
    shared = {}
    if others_cores is not None:
        left = max(0.1, min(n_cores, n_cores - others_cores))
        used = stats.get("cpu_s", 0.0) / stats["wall_s"] if stats["wall_s"] > 0 else 0.0
        bound_left = min(serial, 1000 * left / cpu_per_frame) if cpu_per_frame > 0 else serial
        shared = {"cores_left": left, "cores_used": used, "cores_idle": max(0.0, left - used),
                  "bound_left_fps": bound_left, "efficiency_left": fps / bound_left if bound_left else None}
    return {
        "fps": fps, "frames": stats["frames_written"], "wall_s": stats["wall_s"], "cores": n_cores,
        "latency_ms": stats["latency_ms"], "peak_rss_mb": stats["peak_rss_mb"],
        "peak_pss_mb": stats.get("peak_pss_mb"), "drops": stats["drops"],
        "cpu_ms_per_frame": cpu_per_frame, "thread_cpu_ms_per_frame": total_thread_cpu,
        "other_cpu_ms_per_frame": cpu_per_frame - total_thread_cpu,  # library worker threads (x264, FFmpeg, OpenMP)
        "stage_time": "wall" if gpu else "thread_cpu",
        "slowest": slowest["name"], "slowest_ms": slowest["time_ms"],
        "bound_serial_fps": serial, "bound_cpu_fps": parallel, "bound_fps": bound,
        "limited_by": f"stage {slowest['name']}" if serial <= parallel else f"CPU ({n_cores} cores)",
        "efficiency": fps / bound if bound and bound != float("inf") else None,
        **shared, "rows": rows,
    }


def _f(v, nd=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def format_report(a: dict, title: str = "") -> str:
    head = ["thread", "type", "frames", "wall ms", "cpu ms", "share %", "cpu %", "p50 ms", "p95 ms", "queue hw"]
    cells = [head]
    for r in a["rows"]:
        hw = f"{r['queue_high_water']}/{r['queue_size']}" if "queue_high_water" in r else "-"
        cells.append([r["name"], r["type"][:28], _f(r["frames"]), _f(r["wall_ms"], 2), _f(r["cpu_ms"], 2),
                      _f(r["share_pct"]), _f(r["cpu_share_pct"]), _f(r["p50_ms"], 2), _f(r["p95_ms"], 2), hw])
    cells.append(["(library threads)", "x264/FFmpeg/OpenMP", "-", "-", _f(a["other_cpu_ms_per_frame"], 2), "-",
                  _f(100 * a["other_cpu_ms_per_frame"] / a["cpu_ms_per_frame"] if a["cpu_ms_per_frame"] else None),
                  "-", "-", "-"])
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = [title] if title else []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lat = a["latency_ms"]
    eff = a["efficiency"]
    lines += [
        f"throughput {a['fps']:.1f} fps ({a['frames']} frames in {a['wall_s']:.2f} s); end-to-end latency "
        f"p50 {_f(lat['p50'])} ms, p95 {_f(lat['p95'])} ms; {a['drops']} dropped in queues; peak RSS {a['peak_rss_mb']} MiB"
        + (f" (PSS {a['peak_pss_mb']:.0f} MiB: pages the processes share counted once)" if a.get("peak_pss_mb") else ""),
        f"CPU {a['cpu_ms_per_frame']:.2f} ms/frame on {a['cores']} cores; slowest thread {a['slowest']} "
        f"{a['slowest_ms']:.2f} ms/frame ({a['stage_time'].replace('_', ' ')})",
        f"bound min({a['bound_serial_fps']:.1f} serial, {a['bound_cpu_fps']:.1f} CPU) = {a['bound_fps']:.1f} fps, "
        f"limited by {a['limited_by']}; throughput / bound = " + (f"{100 * eff:.0f} %" if eff is not None else "-"),
    ]
    st = a.get("steady")
    if st:
        line = (f"steady state (frames {st['from_frame']}-{st['to_frame']}: after the warm-up, before the drain): "
                f"{st['fps']:.1f} fps, CPU {st['cpu_ms_per_frame']:.2f} ms/frame, bound {st['bound_fps']:.1f} fps, "
                f"throughput / bound = {100 * st['efficiency']:.0f} %")
        if "bound_left_fps" in st:
            line += f"; on the {st['cores_left']:.2f} cores left {100 * st['efficiency_left']:.0f} %"
        lines.append(line)
    if "cores_left" in a:
        lines.append(f"other processes left {a['cores_left']:.2f} of {a['cores']} cores (this run used "
                     f"{a['cores_used']:.2f}, {a['cores_idle']:.2f} stayed idle): bound on those "
                     f"{a['bound_left_fps']:.1f} fps, throughput / that bound = {100 * a['efficiency_left']:.0f} %"
                     + (" (a saturated machine: idle time, not this ratio, shows the chain's own losses)"
                        if a["cores_idle"] < 0.05 and a["cores_left"] < a["cores"] - 0.2 else ""))
    return "\n".join(lines)


def environment() -> dict:
    env = {"python": platform.python_version(), "machine": platform.machine(), "cores": cores(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "loadavg": list(os.getloadavg())}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    if "cv2" in sys.modules:
        env["cv2_threads"] = sys.modules["cv2"].getNumThreads()
    return env


# ---- running ----
def build_pipeline(cfg, loop: bool = False):
    from .api import Pipeline

    pipe = Pipeline.from_config(cfg)
    if loop:
        pipe.source = LoopSource(cfg.source.build)
    return pipe


def steady_state(samples: list, warmup: int, total: int | None, n_cores: int, serial_fps: float) -> dict | None:
    """Throughput and CPU between the first sample with `warmup` frames written and the last one
    taken while the source was still reading (so the one-time costs of the first frames, the fill
    and the drain of a finite run are left out). samples: (time, machine busy s, run CPU s,
    frames read, frames written). None when the window is too short to say."""
    start = next((x for x in samples if x[4] >= warmup), None)
    reading = [x for x in samples if total is None or x[3] < total]
    end = reading[-1] if reading else None
    if start is None or end is None or end[0] - start[0] < 1.0 or end[4] - start[4] < 10:
        return None
    frames, dt = end[4] - start[4], end[0] - start[0]
    fps = frames / dt
    cpu_ms = 1000 * (end[2] - start[2]) / frames
    bound = min(serial_fps, 1000 * n_cores / cpu_ms) if cpu_ms > 0 else serial_fps
    out = {"from_frame": start[4], "to_frame": end[4], "seconds": dt, "fps": fps, "cpu_ms_per_frame": cpu_ms,
           "bound_fps": bound, "efficiency": fps / bound if bound else None}
    if start[1] is not None and end[1] is not None:
        others = max(0.0, (end[1] - start[1]) - (end[2] - start[2])) / dt
        left = max(0.1, min(n_cores, n_cores - others))
        bound_left = min(serial_fps, 1000 * left / cpu_ms) if cpu_ms > 0 else serial_fps
        out.update(cores_left=left, cores_used=(end[2] - start[2]) / dt, bound_left_fps=bound_left,
                   efficiency_left=fps / bound_left if bound_left else None)
    return out


def bench(cfg, loop: bool = False, progress=None, warmup: int | None = None) -> tuple[dict, dict]:
    """Run a validated config once; returns (stats dict, analysis dict). warmup: frames written
    before the steady-state window opens (default a tenth of the run, at least 30)."""
    pipe = build_pipeline(cfg, loop)
    load0 = os.getloadavg()[0]
    samples: list = []

    def sample(runner) -> None:  # the first call comes once the threads run (setup excluded)
        st = runner.stats
        samples.append((time.perf_counter(), machine_busy(), runner.cpu_time(), st.frames_read, st.frames_written))
        if progress is not None:
            progress(runner)

    stats = pipe.run(sample)
    end = (time.perf_counter(), machine_busy(), pipe.runner.cpu_time() if pipe.runner else time.process_time())
    first = samples[:1]
    others = None
    if first and first[0][1] is not None and end[1] is not None and end[0] - first[0][0] > 0.5:
        others = max(0.0, (end[1] - first[0][1]) - (end[2] - first[0][2])) / (end[0] - first[0][0])
    a = analyze(stats, others_cores=others)
    total = cfg.max_frames
    if warmup is None:
        warmup = max(30, (total or stats["frames_written"]) // 10)
    a["steady"] = steady_state(samples, warmup, total, a["cores"], a["bound_serial_fps"])
    a["environment"] = environment()
    a["environment"]["loadavg_before"] = load0
    return stats, a


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="pipeline YAML file")
    parser.add_argument("--source", metavar="URI", help="video file (or any source uri) instead of the config's")
    parser.add_argument("--frames", type=int, metavar="N", dest="max_frames", help="stop after N frames")
    parser.add_argument("--loop", action="store_true", help="play a finite source again and again (with --frames)")
    parser.add_argument("--json", metavar="OUT.json", help="write the report (and the raw stats) as JSON")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config value, e.g. stages.flow.scale=0.25 (repeatable)")
    parser.add_argument("--output", metavar="PATH", help="path of the first video sink")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--warmup", type=int, metavar="N", default=None,
                        help="frames before the steady-state window opens (default: a tenth of --frames, >= 30)")


def run(args) -> int:
    from . import config
    from .cli import _cli_edits

    if args.loop and not args.max_frames:
        raise config.ConfigError("--loop needs --frames N (else it never ends)")
    if args.max_frames is not None and args.max_frames < 1:
        raise config.ConfigError(f"--frames: expected 1 <= N, got {args.max_frames}")
    cfg = config.load(args.config, args.set or (), edit=_cli_edits(args))
    stats, a = bench(cfg, args.loop, warmup=args.warmup)
    title = f"vidpipe bench {args.config}" + (f" --source {args.source}" if args.source else "") + \
            (f" ({' '.join(args.set)})" if args.set else "")
    print(format_report(a, title))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        report = {"config": str(args.config), "overrides": list(args.set or ()), "source": args.source,
                  "loop": bool(args.loop), "time": time.strftime("%Y-%m-%d %H:%M:%S"), **a, "stats": stats}
        Path(args.json).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    from .cli import run_module, setup_logging

    setup_logging(quiet=True)
    sys.exit(run_module("vidpipe bench", "pipeline.bench", sys.argv[1:]))
