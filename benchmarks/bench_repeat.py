"""Memory of a process that runs one pipeline after another (a script over many files): resident
memory after each run, with traces shared across pipelines (pipeline.traced `share`, the default)
and without (the shared traces forgotten after each run, as before: PyTorch never frees a trace's
memory, pytorch/pytorch#35600). Each mode runs in a fresh interpreter; stages run in threads.

    OMP_NUM_THREADS=1 python benchmarks/bench_repeat.py [--config configs/default.yaml] [--runs 5] [--frames 60]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRIAL = r"""
import ctypes, gc, json, sys
sys.path.insert(0, {root!r})
import pipeline.traced as traced
from pipeline import Pipeline, config
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
out = []
for i in range({runs}):
    doc = config.load_yaml({config!r})
    for spec in doc["stages"]:
        if isinstance(spec, dict):
            spec.pop("process", None)
    doc["sinks"] = []
    pipe = Pipeline.from_dict(doc, ["source.max_frames={frames}"])
    pipe.print_stats = False
    pipe.run()
    del pipe
    if not {share}:
        traced._SHARED.clear()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    out.append(round(rss(), 1))
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    print(f"RSS MB after each of {args.runs} pipelines of {args.frames} frames, one process ({args.config}):")
    for share in (True, False):
        code = TRIAL.format(root=str(ROOT), runs=args.runs, config=args.config, frames=args.frames, share=share)
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        rss = json.loads(proc.stdout.strip().splitlines()[-1])
        growth = (rss[-1] - rss[0]) / max(1, len(rss) - 1)
        label = "traces shared" if share else "traces per pipeline"
        print(f"  {label:<20} {' '.join(f'{r:7.1f}' for r in rss)}   growth {growth:+.1f} MB per pipeline")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
