"""How long a run takes to deliver its first frame, and its memory, by how worker stages start:
`forkserver` (one server imports numpy, OpenCV and torch; workers are forked from it) against
`spawn` (each worker imports them itself) and against no workers at all. Each trial is a fresh
Python process (a fork server lives as long as its parent), methods interleaved.

    OMP_NUM_THREADS=1 python benchmarks/bench_startup.py [--config configs/default.yaml] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

TRIAL = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import pipeline.isolation as isolation
from pipeline import Pipeline, config
method = {method!r}
doc = config.load_yaml({config!r})
if method == "threads":
    for spec in doc["stages"]:
        if isinstance(spec, dict):
            spec.pop("process", None)
else:
    isolation.START_METHOD = method
doc["sinks"] = []
pipe = Pipeline.from_dict(doc)
pipe.print_stats = False
times = []
with pipe:
    for frame in pipe.frames():
        times.append(time.perf_counter() - t0)
        if len(times) == 30:
            break
print(json.dumps({{"first": times[0], "thirty": times[-1], "rss": pipe.stats and pipe.stats.get("peak_rss_mb")}}))
"""


def trial(method: str, config: str) -> dict:
    code = TRIAL.format(root=str(ROOT), method=method, config=config)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    methods = ("forkserver", "spawn", "threads")
    got: dict = {m: [] for m in methods}
    for _ in range(args.repeats):
        for m in methods:
            got[m].append(trial(m, args.config))
    print(f"{'workers start by':<18} {'first frame s':>14} {'30th frame s':>13} {'peak RSS MB':>12}   (median of "
          f"{args.repeats}, from interpreter start, {args.config})")
    for m in methods:
        first = np.median([r["first"] for r in got[m]])
        thirty = np.median([r["thirty"] for r in got[m]])
        rss = [r["rss"] for r in got[m] if r["rss"]]
        print(f"{m if m != 'threads' else 'no workers':<18} {first:>14.2f} {thirty:>13.2f} "
              f"{(np.median(rss) if rss else float('nan')):>12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
