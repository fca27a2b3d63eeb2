"""Overload (issues 9 and 10): a live source delivering frames faster than the whole pipeline can
process them. The street sample is looped and paced like a camera (`pipeline.bench.PacedSource`:
live, so drop_oldest queues and fragmented mp4; a frame the source itself could not deliver on time
is skipped and counted, as a camera's driver would), at a rate above the chain's throughput. The
real chain runs (the config's stages; `--detect` swaps motion for YOLOX-Nano). Reports: frames
due / delivered / written, drops per queue, throughput, end-to-end latency (delivered -> written)
p50/p95/max and its p95 in the first and last third of the run (bounded: no growth), and the lag
behind the live clock (written - due time).

    OMP_NUM_THREADS=1 python benchmarks/bench_overload.py [--config configs/default.yaml]
        [--rate 120] [--seconds 20] [--detect] [--queue-size 8]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pipeline import MODEL, default_config, variant_doc  # noqa: E402

from pipeline import config  # noqa: E402
from pipeline.api import Pipeline  # noqa: E402
from pipeline.bench import LoopSource, PacedSource  # noqa: E402


class LagSink:
    """Records, per written frame, the end-to-end latency and the lag behind the live clock."""

    type_name = "lag"
    reads = frozenset()

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float]] = []  # (written at, latency, lag), seconds
        self.t0 = None

    def open(self, info, context=None) -> None:
        pass

    def write(self, frame) -> None:
        now = time.perf_counter()
        self.rows.append((now, now - frame.decoded_at, now - self.t0 - frame.time))

    def close(self) -> None:
        pass


class _Clock(PacedSource):
    """PacedSource telling the lag sink when its clock started."""

    def __init__(self, inner, fps, lag: LagSink) -> None:
        super().__init__(inner, fps)
        self.lag = lag

    def frames(self, stop_event):
        for frame in super().frames(stop_event):
            if self.lag.t0 is None:
                self.lag.t0 = frame.decoded_at - frame.time
            yield frame


def run_once(doc: dict, rate: float, seconds: float, policy: str, queue_size: int) -> dict:
    cfg = config.from_dict(doc, [f"pipeline.drop_policy={policy}", f"pipeline.queue_size={queue_size}"])
    pipe = Pipeline.from_config(cfg)
    lag = LagSink()
    pipe.source = _Clock(LoopSource(cfg.source.build), rate, lag)
    pipe.sinks.append(lag)
    timer = threading.Timer(seconds, pipe.stop)
    timer.start()
    try:
        stats = pipe.run()
    finally:
        timer.cancel()
    rows = np.array(lag.rows)
    lat, lags = rows[:, 1] * 1000, rows[:, 2] * 1000
    third = max(1, len(rows) // 3)
    src = stats["source"]
    return {"policy": stats["drop_policy"], "rate": rate, "due": src.get("delivered", 0) + src.get("skipped_late", 0),
            "skipped": src.get("skipped_late", 0), "read": stats["frames_read"],
            "written": stats["frames_written"], "drops": stats["drops"], "fps": stats["fps"],
            "lat_p50": float(np.percentile(lat, 50)), "lat_p95": float(np.percentile(lat, 95)),
            "lat_max": float(lat.max()), "lat_p95_first": float(np.percentile(lat[:third], 95)),
            "lat_p95_last": float(np.percentile(lat[-third:], 95)), "lag_p95": float(np.percentile(lags, 95)),
            "lag_max": float(lags.max()),
            "queue_drops": {q["edge"]: q["drops"] for q in stats["queues"] if q["drops"]},
            "stage_ms": {s["name"]: round(1000 * s["busy_s"] / max(s["frames_in"], 1), 2) for s in stats["stages"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=default_config(), help="default: configs/default.yaml when it "
                        "holds the full chain, else configs/bench_full.yaml")
    parser.add_argument("--source", default="sample_videos/street.mp4", help="clip to loop (relative to the repo)")
    parser.add_argument("--rate", type=float, default=None, help="live frame rate (default 120, 60 with --detect)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--detect", action="store_true", help="YOLOX-Nano (onnxruntime) instead of motion")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--policies", nargs="+", default=["drop_oldest"], choices=["drop_oldest", "block"],
                        help="add 'block' to see what happens without dropping")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.chdir(ROOT)
    rate = args.rate or (60.0 if args.detect else 120.0)
    base = config.load_yaml(args.config)
    base["source"] = args.source
    results = []
    with tempfile.TemporaryDirectory() as out_dir:
        variant = "yolox_nano" if args.detect else "motion"
        doc = variant_doc(base, variant, out_dir, args.model, None, "auto")
        chain = " -> ".join(s if isinstance(s, str) else s["type"] for s in doc["stages"])
        print(f"overload: {args.source} looped, paced at {rate:g} fps (live), {args.seconds:g} s, queues of "
              f"{args.queue_size}; chain: {chain}")
        for policy in args.policies:
            results.append(run_once(doc, rate, args.seconds, policy, args.queue_size))
    head = (f"{'policy':<12}{'rate':>6}{'due':>6}{'skipped':>8}{'read':>7}{'written':>8}{'drops':>7}{'fps':>7}{'lat p50':>9}{'lat p95':>9}"
            f"{'p95 1st/3':>10}{'p95 3rd/3':>10}{'lat max':>9}{'lag p95':>9}{'lag max':>9}  (ms)")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['policy']:<12}{r['rate']:>6.0f}{r['due']:>6}{r['skipped']:>8}{r['read']:>7}{r['written']:>8}{r['drops']:>7}{r['fps']:>7.1f}"
              f"{r['lat_p50']:>9.0f}{r['lat_p95']:>9.0f}{r['lat_p95_first']:>10.0f}{r['lat_p95_last']:>10.0f}"
              f"{r['lat_max']:>9.0f}{r['lag_p95']:>9.0f}{r['lag_max']:>9.0f}")
        print(f"   drops by queue: {r['queue_drops']}; stage wall ms/frame: {r['stage_ms']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
