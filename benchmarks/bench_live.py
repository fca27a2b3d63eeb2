"""Live-source benchmarks (issue 9).

1. Overload: a paced live source (lavfi testsrc2 640x360 `realtime`, --live-fps) feeding a chain
   slower than the source (a stage of --work-ms GIL-free work per frame, then annotate, then the
   H.264 video sink). With `drop_oldest` the end-to-end latency stays bounded and every drop is
   counted; the same chain with `block` shows what happens without dropping (latency grows).
2. Soak: the default pipeline (configs/default.yaml as it stands) on a generated source
   (lavfi testsrc2 640x360, not paced) for --soak-frames frames; resident memory sampled as it
   runs; growth = last sample - the sample after warm-up (10% of the frames).

    OMP_NUM_THREADS=1 python benchmarks/bench_live.py [--seconds 10] [--soak-frames 20000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.api import Pipeline  # noqa: E402
from pipeline.sinks.video import VideoParams, VideoSink  # noqa: E402
from pipeline.sources.lavfi import LavfiParams, LavfiSource  # noqa: E402
from pipeline.stage import Stage  # noqa: E402
from stages.annotate import AnnotateStage  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class SlowStage(Stage):
    """Stands for a heavy model: `ms` of GIL-free work per frame (time.sleep)."""

    type_name = "slow"

    def __init__(self, ms: float) -> None:
        super().__init__(None, "slow")
        self.ms = ms

    def process(self, frame):
        time.sleep(self.ms / 1000)
        return frame


class LagSink:
    """Lag of each written frame behind the live clock: now - (first decode + its stream time).
    Unlike decode->write latency, this sees frames the source was kept from producing on time."""

    type_name = "lag"
    reads = frozenset()

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.t0 = None

    def open(self, info, context) -> None:
        pass

    def write(self, frame) -> None:
        if self.t0 is None:
            self.t0 = frame.decoded_at - frame.time
        self.lags.append(time.perf_counter() - self.t0 - frame.time)

    def close(self) -> None:
        pass


def overload(seconds: float, live_fps: int, work_ms: float, policy: str, out_dir: str) -> dict:
    uri = f"lavfi:testsrc2=size=640x360:rate={live_fps},realtime"
    source = LavfiSource(LavfiParams(uri=uri))
    sink = VideoSink(VideoParams(path=os.path.join(out_dir, f"overload_{policy}.mp4")))
    lag = LagSink()
    pipe = Pipeline(source, [SlowStage(work_ms), AnnotateStage()], [sink, lag], drop_policy=policy,
                    max_frames=int(seconds * live_fps), print_stats=False)
    stats = pipe.run()
    lags = sorted(lag.lags)
    return {"policy": policy, "read": stats["frames_read"], "written": stats["frames_written"],
            "drops": stats["drops"], "fps": stats["fps"], "p50": stats["latency_ms"]["p50"],
            "p95": stats["latency_ms"]["p95"], "lag95": 1000 * lags[int(0.95 * (len(lags) - 1))],
            "lagmax": 1000 * lags[-1]}


def soak(frames: int, config: str, out_dir: str) -> dict:
    samples: list[tuple[int, float]] = []
    last = [0.0]

    def progress(runner) -> None:
        now = time.perf_counter()
        if now - last[0] >= 0.5:
            last[0] = now
            samples.append((runner.stats.frames_written, rss_mb()))

    overrides = ["source=lavfi:testsrc2=size=640x360:rate=30", f"source.max_frames={frames}"]
    pipe = Pipeline.from_yaml(config, overrides=overrides)
    pipe.print_stats = False
    cwd = os.getcwd()
    os.chdir(out_dir)  # the config's relative output paths land in the temp folder
    try:
        stats = pipe.run(progress)
    finally:
        os.chdir(cwd)
    samples.append((stats["frames_written"], rss_mb()))
    warm = next(rss for n, rss in samples if n >= frames // 10)
    return {"frames": stats["frames_written"], "fps": stats["fps"], "rss_warm": warm, "rss_end": samples[-1][1],
            "growth": samples[-1][1] - warm, "rss_max": max(r for _, r in samples), "peak_rss": stats["peak_rss_mb"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each overload run")
    parser.add_argument("--live-fps", type=int, default=60, help="rate of the paced live source")
    parser.add_argument("--work-ms", type=float, default=30.0, help="per-frame work of the slow stage")
    parser.add_argument("--soak-frames", type=int, default=20000)
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--skip-soak", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        print(f"overload: live source {args.live_fps} fps 640x360, chain capacity ~{1000 / args.work_ms:.0f} fps, "
              f"{args.seconds:g} s each")
        print("(latency: decoded -> written; lag: behind the live clock, which also counts frames the "
              "source could not produce on time)")
        print(f"{'policy':<12}{'read':>7}{'written':>9}{'drops':>7}{'fps':>8}{'lat p50':>9}{'lat p95':>9}"
              f"{'lag p95':>9}{'lag max':>9}  (ms)")
        for policy in ("drop_oldest", "block"):
            r = overload(args.seconds, args.live_fps, args.work_ms, policy, out_dir)
            print(f"{r['policy']:<12}{r['read']:>7}{r['written']:>9}{r['drops']:>7}{r['fps']:>8.1f}"
                  f"{r['p50']:>9.0f}{r['p95']:>9.0f}{r['lag95']:>9.0f}{r['lagmax']:>9.0f}")
        if not args.skip_soak:
            t0 = time.perf_counter()
            r = soak(args.soak_frames, args.config, out_dir)
            print(f"\nsoak: {args.config} on lavfi testsrc2 640x360, {r['frames']} frames in "
                  f"{time.perf_counter() - t0:.0f} s ({r['fps']:.0f} fps)")
            print(f"RSS after warm-up {r['rss_warm']:.1f} MB, at the end {r['rss_end']:.1f} MB, "
                  f"growth {r['growth']:+.1f} MB, max sampled {r['rss_max']:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
