"""Optical flow on the CPU, two questions, one run, measured side by side:

1. Horn-Schunck at 640x480 with 3 warps x 100 Jacobi iterations (one pyramid level, bilinear
   warping, no median: the same algorithm on both sides) in torch against the straightforward
   numpy implementation of the same equations (stages/opticalflow/reference_numpy.py, float64,
   the paper's update written as is), checking they agree; torch with 1 and 2 threads. Then the
   Jacobi iterations alone, with a numpy version tuned for speed beside them, for context.
2. The video setting: the `flow` stage with its defaults (scale 0.25, warm start, 2 levels x 30
   iterations) on a 640x360 clip with exact flow (scenes.flow), per-frame cost and accuracy for
   every method, with 12 boxes of per-track statistics; one torch thread per stage, as the runner
   sets it.

    python benchmarks/bench_flow.py [--repeat 3] [--frames 40] [--compile]
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stages.opticalflow import horn_schunck as hs  # noqa: E402
from stages.opticalflow import reference_numpy as ref  # noqa: E402

HS_ARGS = dict(levels=1, warps=3, iterations=100, median=1, interpolation="bilinear", alpha=8.0, presmooth=0.5)


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_solver(repeat: int, compile: bool) -> None:
    from scenes.flow import render_flow_pair

    img1, img2, gt, valid = render_flow_pair(seed=1, size=(640, 480))
    g1, g2 = (im.astype(np.float64) @ np.array([0.114, 0.587, 0.299]) for im in (img1, img2))
    t1, t2 = (torch.tensor(g[None, None], dtype=torch.float32) for g in (g1, g2))
    variants = [("torch, 1 thread", 1, {}), ("torch, 2 threads", 2, {})]
    from pipeline.traced import TracedCall

    traced = TracedCall(lambda a, b: hs.horn_schunck(a, b, **HS_ARGS), "bench_flow")
    with torch.inference_mode():
        traced(t1, t2)                                            # traced outside the timing
    variants += [("torch traced, 1 thread", 1, traced), ("torch traced, 2 threads", 2, traced)]
    if compile:
        variants += [("torch.compile, 1 thread", 1, {"compile": True}), ("torch.compile, 2 threads", 2, {"compile": True})]
        torch.set_num_threads(1)
        with torch.inference_mode():
            hs.horn_schunck(t1, t2, compile=True, **HS_ARGS)     # compile outside the timing
    results = {}
    for _ in range(repeat):                                       # variants interleaved
        for name, threads, extra in variants:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                run = (lambda: extra(t1, t2)) if callable(extra) else (lambda: hs.horn_schunck(t1, t2, **HS_ARGS, **extra))
                sec, flow = best(run, 1)
            results.setdefault(name, []).append(sec)
            results[name + " flow"] = flow[0].numpy()
        sec, flow_np = best(lambda: ref.horn_schunck(g1, g2, **HS_ARGS), 1)
        results.setdefault("numpy", []).append(sec)
    torch.set_num_threads(1)
    numpy_s = min(results["numpy"])
    epe = lambda f: float(np.linalg.norm(np.moveaxis(f, 0, -1) - gt, axis=-1)[valid].mean())  # noqa: E731
    print("1. Horn-Schunck 640x480, 3 warps x 100 iterations (one level), best of", repeat)
    print(f"   {'implementation':<26} {'seconds':>8} {'ms/iteration':>13} {'speed-up':>9} {'|diff| p99 / max px':>20} {'AEE px':>7}")
    print(f"   {'numpy reference (float64)':<26} {numpy_s:8.3f} {numpy_s / 0.3:13.2f} {1.0:9.1f} {'-':>20} {epe(flow_np):7.3f}")
    for name, _, _ in variants:
        s = min(results[name])
        diff = np.abs(results[name + ' flow'] - flow_np).max(0)
        diffs = f"{np.percentile(diff, 99):.0e} / {diff.max():.0e}"
        print(f"   {name:<26} {s:8.3f} {s / 0.3:13.2f} {numpy_s / s:9.1f} {diffs:>20} {epe(results[name + ' flow']):7.3f}")


def numpy_tuned(ex, ey, et, alpha, iterations):
    """The same iteration in numpy written for speed: float32, the denominator once, in-place."""
    ex, ey, et = (np.asarray(m, np.float32) for m in (ex, ey, et))
    denom = (alpha * alpha + ex * ex + ey * ey).astype(np.float32)
    a, b, c = ex / denom, ey / denom, et / denom
    u, v = np.zeros_like(ex), np.zeros_like(ex)
    for _ in range(iterations):
        ub, vb = ref.hs_average(u).astype(np.float32), ref.hs_average(v).astype(np.float32)
        p = ex * ub
        p += ey * vb
        p += et
        u, v = ub - a * p, vb - b * p
    return np.stack([u, v])


def bench_jacobi(repeat: int, compile: bool) -> None:
    rng = np.random.default_rng(0)
    ex, ey, et = (rng.normal(0, 10, (480, 640)) for _ in range(3))
    tx = [torch.tensor(m[None, None], dtype=torch.float32) for m in (ex, ey, et)]
    n = 50
    rows = {"numpy reference, as written (float64)": lambda: ref.hs_iterate(ex, ey, et, 8.0, n),
            "numpy tuned (float32, denominator once)": lambda: numpy_tuned(ex, ey, et, 8.0, n)}
    out = {}
    for _ in range(repeat):
        for name, fn in rows.items():
            out.setdefault(name, []).append(best(fn, 1)[0])
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                out.setdefault(f"torch, {threads} thread(s)", []).append(best(lambda: hs.hs_jacobi(*tx, 8.0, n), 1)[0])
        if compile:
            torch.set_num_threads(1)
            with torch.inference_mode():
                hs.hs_jacobi(*tx, 8.0, 1, compile=True)            # compiled before timing
                out.setdefault("torch.compile, 1 thread", []).append(
                    best(lambda: hs.hs_jacobi(*tx, 8.0, n, compile=True), 1)[0])
    torch.set_num_threads(1)
    base = min(out["numpy reference, as written (float64)"])
    print(f"\n   Jacobi iterations alone, 640x480, {n} iterations, best of {repeat}")
    print(f"   {'implementation':<42} {'ms/iteration':>13} {'speed-up':>9}")
    for name, times in out.items():
        print(f"   {name:<42} {min(times) / n * 1000:13.2f} {base / min(times):9.1f}")


def bench_video(frames: int) -> None:
    from pipeline.frame import Detections, Frame
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo, StageContext
    from scenes.flow import render_flow_clip
    from stages.flow import FlowParams, FlowStage, full_resolution_flow

    torch.set_num_threads(1)
    images, flows, valids = render_flow_clip(seed=3, size=(640, 360), n_frames=frames)
    rng = np.random.default_rng(0)
    xy = rng.uniform([0, 0], [560, 240], (12, 2))
    boxes = np.concatenate([xy, xy + rng.uniform([30, 60], [80, 120], (12, 2))], 1).astype(np.float32)
    print(f"\n2. flow stage on 640x360 ({frames} frames, exact flow), per frame, 1 torch thread, 12 boxes")
    print(f"   {'method (stage params)':<44} {'median ms':>9} {'p95 ms':>7} {'AEE px':>7}")
    for raw in ({}, {"scale": 0.5}, {"method": "horn_schunck_classic"}, {"method": "lucas_kanade"},
                {"method": "farneback"}, {"method": "dis"}, {"method": "dis", "dis": {"preset": "ultrafast"}}):
        stage = FlowStage(build_or_raise(FlowParams, {"device": "cpu", **raw}))
        stage.setup(StageContext("cpu", SourceInfo("clip", 640, 360, 30, False), threading.Event(),
                                 logging.getLogger("bench_flow")))
        times, errs = [], []
        for i, img in enumerate(images):
            frame = Frame(i, i / 30, img)
            frame.detections = Detections(boxes, np.ones(12), np.zeros(12))
            t = time.perf_counter()
            stage.process(frame)
            times.append((time.perf_counter() - t) * 1000)
            if i >= 5:
                f = np.moveaxis(full_resolution_flow(frame), 0, -1)
                errs.append(np.linalg.norm(f - flows[i - 1], axis=-1)[valids[i - 1]].mean())
        label = raw.get("method", "horn_schunck") + (f" {raw}" if len(raw) > 1 or "scale" in raw else " (defaults)")
        t = np.array(times[2:])
        print(f"   {label:<44} {np.median(t):9.2f} {np.percentile(t, 95):7.2f} {np.mean(errs):7.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (compiles first)")
    args = ap.parse_args()
    print(f"# torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} default threads")
    bench_solver(args.repeat, args.compile)
    bench_jacobi(args.repeat, args.compile)
    bench_video(args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
