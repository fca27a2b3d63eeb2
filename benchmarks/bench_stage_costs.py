"""Each stage's own CPU cost per frame: a config's stages run one after another in this thread (no
queues, no other threads, no worker processes), on any video, with an optional cProfile of some
stages. What `vidpipe bench` shows per thread is this plus the waiting for the GIL and the cores;
this is what a stage would cost alone (e.g. a host stage on a many-core GPU machine).

    OMP_NUM_THREADS=1 python benchmarks/bench_stage_costs.py [--config configs/default.yaml]
        [--source VIDEO] [--frames 120] [--warmup 10] [--set KEY=VALUE ...] [--profile activity,...]
        [--device cpu|cuda] [--gpu-chain]

Sinks are left out; the source decodes in this thread too (its time is the `source` row). On CUDA
the wall column synchronises the device after each stage (each stage's own GPU time included).
--gpu-chain: the chain benchmarks/gpu_pipeline.py runs (YOLOX-Nano torch fp16 instead of motion, the
1080p Town Centre clip, its planar corners), to see each stage's cost without the other threads.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    ap.add_argument("--source", help="video instead of the config's source")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=10, help="first frames not counted (traces, lazy imports)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--profile", default="", help="comma-separated stage names to cProfile (top 15 by own time)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--gpu-chain", action="store_true", help="gpu_pipeline.py's chain and clip (YOLOX-Nano)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from pipeline import config
    from pipeline.stage import StageContext

    os.chdir(ROOT)
    doc = config.load_yaml(args.config)
    if args.gpu_chain:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import gpu_pipeline as g

        video = args.source or g.find(g.VIDEO, None)
        doc = g.gpu_doc(doc, "video", video, g.find(g.MODEL, None), "/tmp", batch=1, device=args.device)
        args.source = None
    cuda = args.device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()
    for spec in doc.get("stages", []):
        if isinstance(spec, dict):
            spec.pop("process", None)
    doc["sinks"] = []
    overrides = list(args.set) + ([f"source.uri={args.source}"] if args.source else [])
    cfg = config.from_dict(doc, overrides)
    source, stages = cfg.source.build(), [spec.build() for spec in cfg.stages]
    info, stop = source.open(), threading.Event()
    shared: dict = {}
    for s in stages:
        s.setup(StageContext(args.device, info, stop, logging.getLogger(s.name), shared))
    names = ["source"] + [s.name for s in stages]
    cpu = {n: [] for n in names}
    wall = {n: [] for n in names}
    profiles = {n: cProfile.Profile() for n in args.profile.split(",") if n}
    frames = source.frames(stop)
    for i in range(args.frames + args.warmup):
        t, w = time.thread_time(), time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            break
        counted = i >= args.warmup
        if counted:
            cpu["source"].append(time.thread_time() - t)
            wall["source"].append(time.perf_counter() - w)
        for s in stages:
            prof = profiles.get(s.name) if counted else None
            t, w = time.thread_time(), time.perf_counter()
            if prof:
                prof.enable()
            frame = s.process(frame) if frame is not None else None
            sync()
            if prof:
                prof.disable()
            if counted:
                cpu[s.name].append(time.thread_time() - t)
                wall[s.name].append(time.perf_counter() - w)
    for s in stages:
        s.close()
    source.close()
    n = len(cpu["source"])
    print(f"{info.width}x{info.height} on {args.device}, {n} frames after {args.warmup} warm-up, one thread, "
          f"ms per frame")
    print(f"{'stage':<16} {'cpu mean':>9} {'median':>7} {'p95':>7} {'wall mean':>10}")
    total = total_wall = 0.0
    for name in names:
        v, w = 1000 * np.array(cpu[name] or [0.0]), 1000 * np.array(wall[name] or [0.0])
        total, total_wall = total + v.mean(), total_wall + w.mean()
        print(f"{name:<16} {v.mean():>9.2f} {np.median(v):>7.2f} {np.percentile(v, 95):>7.2f} {w.mean():>10.2f}")
    print(f"{'total':<16} {total:>9.2f} {'':>15} {total_wall:>10.2f}   (one after another: "
          f"{1000 / max(total_wall, 1e-9):.1f} frames/s)")
    for name, prof in profiles.items():
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
        print(f"\n===== cProfile: {name}\n{out.getvalue()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
