"""Optical flow on a CUDA GPU: the Horn-Schunck Jacobi solver at 1080p (100 iterations; target
< 5 ms) eager, as one replayed CUDA graph and fused by torch.compile; the lean solver
(stages/opticalflow/jacobi_lean.py: 3 coefficient maps in float32 or float16, one fused kernel per
step, `unroll` steps per compiled call, optionally one CUDA graph); the coarse-to-fine methods
at 1080p; the flow stage's video setting; sparse LK. Synthetic frames only (nothing to download);
with --root DIR (Middlebury layout) it also scores the torch methods on the GPU.

    python benchmarks/gpu_flow.py [--root ../shared/data/flow] [--no-compile] [--lean-unroll 1,2,4]
    python benchmarks/gpu_flow.py --device cpu --size 135x240 --repeat 1 --no-compile   # smoke test
    python benchmarks/gpu_flow.py --device cpu --size 270x480 --repeat 2 --jacobi-only   # solver rows only

"GB/s" is the traffic a step cannot avoid (flow read once, coefficient maps read once, new flow
written: 40 B/px for hs_jacobi's 6 float32 maps, 28 / 22 B/px for the lean solver's 3 float32 /
float16 maps) x 100 steps / time: how close a row gets to the card's memory bandwidth (H100 SXM
~3.35 TB/s peak, ~2.5-3 TB/s reachable by a streaming kernel).

Times are CUDA-event medians over --repeat runs after warm-up (wall clock on the CPU). Finishes in well under 3 minutes
on an H100 (torch.compile's first call takes most of it; --no-compile skips it).
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
from stages.opticalflow import jacobi_lean as jl  # noqa: E402
from stages.opticalflow.lucas_kanade import lucas_kanade_dense, lucas_kanade_sparse  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def cuda_ms(fn, repeat: int) -> float:
    if not torch.cuda.is_available():
        return wall_ms(fn, repeat)
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def wall_ms(fn, repeat: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def textured(h, w, shift=(0.0, 0.0), device="cuda"):
    """Smooth random texture moved by `shift` pixels, (1,1,H,W) float grey levels."""
    g = torch.Generator(device="cpu").manual_seed(0)
    base = torch.rand(1, 1, h // 8 + 4, w // 8 + 4, generator=g) * 255
    big = torch.nn.functional.interpolate(base, size=(h + 32, w + 32), mode="bicubic", align_corners=False)
    x0, y0 = 16 - shift[0], 16 - shift[1]
    ys = torch.arange(h, dtype=torch.float32) + y0
    xs = torch.arange(w, dtype=torch.float32) + x0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx / (w + 31) * 2 - 1, gy / (h + 31) * 2 - 1], -1)[None]
    out = torch.nn.functional.grid_sample(big, grid, mode="bilinear", align_corners=True)
    return out.to(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--root", default=None, help="Middlebury-layout pairs to score on the GPU")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke test")
    ap.add_argument("--size", default="1080x1920", help="HxW of the synthetic frames")
    ap.add_argument("--lean-unroll", default="1,2,4", help="unroll values for the lean solver rows")
    ap.add_argument("--jacobi-only", action="store_true", help="only the Jacobi solver rows")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds after which the remaining lean variants are skipped (keeps the run < 3 min)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_flow: CUDA is not available (use --device cpu for a smoke test)")
        return 1
    t_start = time.perf_counter()
    if args.device.startswith("cuda"):
        dev = torch.device("cuda", torch.cuda.current_device())
        print(f"# {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    else:
        dev = torch.device("cpu")
        print(f"# CPU smoke run, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    h, w = (int(v) for v in args.size.lower().split("x"))
    tag = f"{w}x{h}" if (h, w) != (1080, 1920) else "1080p"
    im1, im2 = textured(h, w, device=dev), textured(h, w, (1.3, -0.7), device=dev)
    with torch.inference_mode():
        ex, ey, et = hs.hs_derivatives(im1, im2)
        eager = lambda: hs.hs_jacobi(ex, ey, et, 8.0, 100)  # noqa: E731
        graphed = lambda: hs.hs_jacobi(ex, ey, et, 8.0, 100, cuda_graph=True)  # noqa: E731
        ref = eager()
        old_bytes = ex.numel() * 40                      # flow 8 + maps 24 + new flow 8 bytes per pixel
        ms = cuda_ms(eager, args.repeat)
        rows.append((f"HS Jacobi {tag} x100, eager", ms, f"{ms * 10:.1f} us/iter, {gbps(old_bytes, ms)}"))
        ms = cuda_ms(graphed, args.repeat)
        diff = (graphed() - ref).abs().max().item()
        rows.append((f"HS Jacobi {tag} x100, CUDA graph", ms,
                     f"{ms * 10:.1f} us/iter, {gbps(old_bytes, ms)}, |diff| {diff:.1e}"))
        if not args.no_compile:
            try:
                t = time.perf_counter()
                out = hs.hs_jacobi(ex, ey, et, 8.0, 100, compile=True)
                sync()
                first = time.perf_counter() - t
                ms = cuda_ms(lambda: hs.hs_jacobi(ex, ey, et, 8.0, 100, compile=True), args.repeat)
                rows.append((f"HS Jacobi {tag} x100, torch.compile", ms,
                             f"{ms * 10:.1f} us/iter, {gbps(old_bytes, ms)}, "
                             f"|diff| {(out - ref).abs().max().item():.1e}, compile {first:.0f} s"))
            except Exception as exc:  # report, never fail the whole script
                rows.append((f"HS Jacobi {tag} x100, torch.compile", float("nan"),
                             f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"))
        unrolls = [int(k) for k in args.lean_unroll.split(",") if k.strip()]
        rows += lean_rows(ex, ey, et, ref, tag, args.repeat, unrolls, not args.no_compile,
                          t_start + args.budget)
        if args.jacobi_only:
            return report(rows, t_start)
        ms = cuda_ms(lambda: hs.horn_schunck(im1, im2, cuda_graph=True), max(3, args.repeat // 3))
        rows.append((f"HS coarse-to-fine {tag} (6 lv x 3 warps x 100 it)", ms, "accuracy setting, CUDA graphs"))
        ms = cuda_ms(lambda: hs.horn_schunck(im1, im2), max(3, args.repeat // 3))
        rows.append((f"HS coarse-to-fine {tag}, eager", ms, ""))
        ms = cuda_ms(lambda: hs.horn_schunck_classic(im1, im2, iterations=100, cuda_graph=True), args.repeat)
        rows.append((f"HS classic {tag} x100 (derivatives + solve)", ms, "CUDA graph"))
        ms = cuda_ms(lambda: lucas_kanade_dense(im1, im2), max(3, args.repeat // 3))
        rows.append((f"LK dense {tag} (6 lv x 3 warps)", ms, ""))
        pts = torch.stack(torch.meshgrid(torch.arange(40, w - 40, 48.0), torch.arange(40, h - 40, 33.0),
                                         indexing="xy"), -1).reshape(-1, 2).to(dev)
        ms = wall_ms(lambda: lucas_kanade_sparse(im1, im2, pts), args.repeat)
        rows.append((f"LK sparse {tag}, {len(pts)} points fwd+bwd", ms, "wall clock"))
    rows += stage_rows(dev, args.repeat, h, w)
    report(rows)
    if args.root:
        score(args.root, str(dev))
    print(f"# total {time.perf_counter() - t_start:.0f} s")
    return 0


def report(rows, t_start=None) -> int:
    print(f"{'what':<52} {'ms':>9}  notes")
    for name, ms, note in rows:
        print(f"{name:<52} {ms:9.3f}  {note}")
    if t_start is not None:
        print(f"# total {time.perf_counter() - t_start:.0f} s")
    return 0


def gbps(bytes_per_step: int, ms: float, steps: int = 100) -> str:
    """Effective bandwidth: the unavoidable bytes of `steps` steps over the measured time."""
    return f"{bytes_per_step * steps / (ms * 1e-3) / 1e9:.0f} GB/s"


def lean_rows(ex, ey, et, ref, tag, repeat, unrolls, compile, deadline):
    """The lean solver x100: eager once, then per coefficient storage and unroll compiled, and
    compiled + one CUDA graph of the 100 steps (CUDA only). |diff| is against hs_jacobi eager."""
    src = torch.empty(ex.numel() * 32, device=ex.device)    # 265 MB at 1080p: far beyond the caches
    dst = torch.empty_like(src)
    ms = cuda_ms(lambda: dst.copy_(src), repeat)
    rows = [(f"reference: copy {src.numel() * 4 / 1e6:.0f} MB", ms,
             f"{gbps(src.numel() * 8, ms, 1)} (read + write): the reachable ceiling")]
    del src, dst
    variants = [("fp32", torch.float32, 1, False, False)]
    if compile:
        for name, dt in (("fp32", torch.float32), ("fp16", torch.float16)):
            for k in unrolls:
                variants.append((name, dt, k, True, False))
                if ex.is_cuda:
                    variants.append((name, dt, k, True, True))
    for name, dt, k, comp, graph in variants:
        label = (f"HS Jacobi lean {tag} x100, {name} maps, "
                 + (f"compile u{k}" if comp else "eager") + (" + graph" if graph else ""))
        if time.perf_counter() > deadline:
            rows.append((label, float("nan"), "skipped: --budget reached"))
            continue
        run = lambda: jl.hs_jacobi_lean(ex, ey, et, 8.0, 100, coeff_dtype=dt, unroll=k,  # noqa: E731
                                        compile=comp, cuda_graph=graph)
        try:
            t = time.perf_counter()
            out = run()
            sync()
            first = time.perf_counter() - t
            ms = cuda_ms(run, repeat)
            why = jl.compile_failure() if comp else None
            why = why or (jl.graph_failure() if graph else None)
            note = (f"{ms * 10:.1f} us/iter, {gbps(jl.bytes_per_step(ex.shape, dt), ms)}, "
                    f"|diff| {(out - ref).abs().max().item():.1e}, first call {first:.0f} s"
                    + (f", FELL BACK: {why}" if why else ""))
            rows.append((label, ms, note))
        except Exception as exc:  # report, never fail the whole script
            rows.append((label, float("nan"),
                         f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"))
    return rows


def stage_rows(dev, repeat, h, w):
    """The flow stage on full-size frames already on the GPU (as the pipeline hands them over)."""
    from pipeline.frame import Frame
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo, StageContext
    from stages.flow import FlowParams, FlowStage

    rows = []
    frames = []
    for t in range(repeat + 3):
        g = textured(h, w, (1.5 * t, -0.5 * t), device=dev)[0].clamp(0, 255).to(torch.uint8)
        frames.append(g.expand(3, -1, -1).contiguous())
    for raw, label in (({}, "scale 0.25, defaults"), ({"scale": 0.5}, "scale 0.5"),
                       ({"scale": 1.0, "horn_schunck": {"levels": 3}}, "scale 1.0, 3 levels"),
                       ({"scale": 1.0, "horn_schunck": {"levels": 3, "solver": "lean"}}, "scale 1.0, 3 levels, lean"),
                       ({"scale": 1.0, "horn_schunck": {"levels": 3, "solver": "lean_fp16"}},
                        "scale 1.0, 3 levels, lean_fp16")):
        stage = FlowStage(build_or_raise(FlowParams, {"device": str(dev), **raw}))
        stage.setup(StageContext(str(dev), SourceInfo("synthetic", w, h, 30, False), threading.Event(),
                                 logging.getLogger("gpu_flow")))
        boxes = np.array([[0.05 * w, 0.1 * h, 0.2 * w, 0.55 * h], [0.45 * w, 0.2 * h, 0.7 * w, 0.85 * h]], np.float32)
        times = []
        for i, img in enumerate(frames):
            from pipeline.frame import Detections

            frame = Frame(i, i / 30, img)
            frame.detections = Detections(boxes, np.ones(2), np.zeros(2))
            sync()
            t = time.perf_counter()
            stage.process(frame)
            sync()
            times.append((time.perf_counter() - t) * 1000)
        rows.append((f"flow stage {w}x{h}, {label}", float(np.median(times[3:])), "per frame, wall, with box stats"))
    return rows


def score(root, device):
    from stages.opticalflow.evaluate import evaluate, format_table

    result = evaluate(root, None, methods=("horn_schunck", "horn_schunck_classic", "lucas_kanade"), device=device,
                      log=None)
    print(format_table(result))


if __name__ == "__main__":
    sys.exit(main())
