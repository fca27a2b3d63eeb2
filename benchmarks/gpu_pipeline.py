"""The whole pipeline on a lent GPU (issue 10): YOLOX-Nano detection in the default chain on the
1080p Town Centre clip (looped), single stream and many concurrent 1080p 30 fps streams.

1. Single stream, unpaced, `--frames` frames: the full chain with annotation and H.264 encoding
   (`video`), and the same analysis without drawing stages or video (`meta`: JSON lines only).
   Throughput (target >= 150 frames/s), latency, per-thread time, the bound and what limits it.
2. Concurrent streams: N pipelines, each fed by a paced 30 fps live source (the clip looped),
   spread over worker processes (each with its own threads and CUDA context); a trial sustains N
   when every stream writes >= 97 % of 30 frames/s and fewer than 2 % of frames are dropped. The
   first N comes from the single-stream CPU cost; then up or down while the time budget lasts.
   Where `nvidia-cuda-mps-control` exists, the second half of the time repeats the search under
   NVIDIA MPS (processes share the GPU at once instead of time-slicing it).
Single-stream runs also repeat `meta` with every stage on one shared CUDA stream
(pipeline.cuda_streams=false) to show what a stream per stage brings, and `video` with every stage
in a thread when the config puts some in worker processes (host stages keep theirs on a GPU).

Paths: --video/--model, else $VIDPIPE_GPU_DATA, ./.gpu_data, $VIDPIPE_SHARED or ../shared are
searched for pedestrians_towncentre_1080p.mp4 and yolox_nano.onnx. Installs nothing. Prints a
compact table; writes everything to $OUT/gpu_pipeline.json when $OUT is set.

    OMP_NUM_THREADS=1 python3 benchmarks/gpu_pipeline.py [--budget 400] [--frames 1500]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIDEO = "pedestrians_towncentre_1080p.mp4"
MODEL = "yolox_nano.onnx"
# a textured stretch of pavement in the clip (1920x1080), for planar tracking + placement
CORNERS = [[1200, 260], [1520, 260], [1520, 600], [1200, 600]]
DRAWING = ("placement", "annotate")
CHEAP_LAYERS = ["plane", "zones", "lines", "boxes", "activities", "trails", "events", "hud"]
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def find(name: str, given: str | None) -> str:
    if given:
        return given
    roots = [os.environ.get("VIDPIPE_GPU_DATA"), ROOT / ".gpu_data", os.environ.get("VIDPIPE_SHARED"),
             ROOT.parent / "shared"]
    for root in filter(None, roots):
        hits = sorted(Path(root).rglob(name)) if Path(root).is_dir() else []
        if hits:
            return str(hits[0])
    raise SystemExit(f"{name} not found (give a path, or set VIDPIPE_GPU_DATA)")


# ---- configs ----
def gpu_doc(base: dict, mode: str, video: str, model: str, out_dir: str, batch: int, tag: str = "",
            device: str = "cuda", max_wait: float = 0.02) -> dict:
    """The default chain for this clip on CUDA: motion -> YOLOX-Nano (torch backend, fp16), planar
    corners of this clip; mode 'video' keeps drawing stages + video sink, 'meta' only JSON lines."""
    doc = copy.deepcopy(base)
    doc["source"] = {"uri": video, "type": "file"}
    doc["pipeline"] = {**(doc.get("pipeline") or {}), "device": device}
    det = {"type": "detect", "model": model, "backend": "torch", "keep_classes": ["person"],
           "score_threshold": 0.3, "batch": batch, "max_wait": max_wait}
    stages, kinds = [], [s if isinstance(s, str) else s.get("type") for s in doc.get("stages", [])]
    for spec, kind in zip(doc.get("stages", []), kinds):
        spec = {"type": spec} if isinstance(spec, str) else dict(spec)
        if kind == "motion":
            spec = det
        elif kind == "detect":
            spec = {**spec, **{k: v for k, v in det.items() if k != "type"}}
        elif kind == "track" and "motion" in kinds:
            spec.pop("split", None)  # the split divides motion blobs; detector boxes are per person
        elif kind == "planar_track":
            spec.pop("reference_image", None)
            spec["corners"] = CORNERS
        elif kind == "annotate":
            spec["layers"] = CHEAP_LAYERS  # full-frame flow/mask tints are host blends at 1080p
        if mode == "meta" and kind in DRAWING:
            continue
        stages.append(spec)
    if "detect" not in [s["type"] for s in stages]:
        at = 1 if stages and stages[0]["type"] == "background" else 0
        stages.insert(at, det)
    doc["stages"] = stages
    sinks = [{"type": "jsonl", "path": os.path.join(out_dir, f"{tag}{mode}.jsonl")}]
    if mode == "video":
        sinks.insert(0, {"type": "video", "path": os.path.join(out_dir, f"{tag}{mode}.mp4")})
    doc["sinks"] = sinks
    return doc


def chain_of(doc: dict) -> str:
    return " -> ".join(s["type"] for s in doc["stages"]) + " -> [" + ", ".join(s["type"] for s in doc["sinks"]) + "]"


# ---- single stream ----
def single(base: dict, mode: str, args, out_dir: str, overrides=(), label: str = "") -> dict:
    from pipeline import config
    from pipeline.bench import bench, format_report

    doc = gpu_doc(base, mode, args.video, args.model, out_dir, args.batch, device=args.device)
    cfg = config.from_dict(doc, [f"source.max_frames={args.frames}", *overrides])
    stats, a = bench(cfg, loop=True)
    print(format_report(a, f"single stream, {label or mode}: {chain_of(doc)}"), flush=True)
    a["stats"] = stats
    a["chain"] = chain_of(doc)
    return a


# ---- concurrent streams: worker processes ----
def worker(args) -> int:
    """Runs `--streams` paced pipelines in this process for --seconds; prints one JSON line."""
    import cv2

    from pipeline import config
    from pipeline.api import Pipeline
    from pipeline.bench import LoopSource, PacedSource

    cv2.setNumThreads(1)
    base = json.loads(Path(args.doc).read_text())
    pipes = []
    with tempfile.TemporaryDirectory() as out_dir:
        for i in range(args.streams):
            doc = gpu_doc(base, args.mode, args.video, args.model, out_dir, args.batch, tag=f"s{i}_",
                          device=args.device, max_wait=args.max_wait)
            cfg = config.from_dict(doc, ["source.threads=2", "pipeline.queue_size=4"])
            pipe = Pipeline.from_config(cfg)
            pipe.source = PacedSource(LoopSource(cfg.source.build), args.rate)
            pipes.append(pipe)
        results: list = [None] * len(pipes)
        errors: list = []

        def run(i: int) -> None:
            try:
                results[i] = pipes[i].run()
            except BaseException as exc:  # noqa: BLE001 - reported in the JSON line
                errors.append(f"stream {i}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pipes))]
        for t in threads:
            t.start()
        # setup (model loads) happens inside run(): wait until every stream writes, then measure
        deadline = time.perf_counter() + args.setup_timeout
        while time.perf_counter() < deadline and not errors:
            if all(p.runner is not None and p.runner.stats.frames_written > 0 for p in pipes):
                break
            time.sleep(0.2)
        time.sleep(args.warmup)
        counts0 = [p.runner.stats.frames_written if p.runner else 0 for p in pipes]
        src0 = [p.source._delivered + p.source.skipped for p in pipes]
        t0 = time.perf_counter()
        time.sleep(args.seconds)
        dt = time.perf_counter() - t0
        counts1 = [p.runner.stats.frames_written if p.runner else 0 for p in pipes]
        src1 = [p.source._delivered + p.source.skipped for p in pipes]
        for p in pipes:
            p.stop()
        for t in threads:
            t.join(60)
    streams = []
    for i, p in enumerate(pipes):
        st = results[i] or {}
        due = src1[i] - src0[i]
        written = counts1[i] - counts0[i]
        streams.append({"fps": written / dt, "due": due, "written": written,
                        "lost": max(0, due - written), "queue_drops": st.get("drops"),
                        "skipped_late": p.source.skipped, "p95_ms": (st.get("latency_ms") or {}).get("p95")})
    print("RESULT " + json.dumps({"streams": streams, "errors": errors}), flush=True)
    return 0


def gpu_util_sampler(stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        try:
            text = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=5).stdout
            util, mem = (float(v) for v in text.strip().splitlines()[0].split(","))
            out.append((util, mem))
        except Exception:  # noqa: BLE001 - no nvidia-smi: no samples
            return
        stop.wait(1.0)


def trial(n: int, args, doc_path: str) -> dict:
    """N paced streams over min(N, procs) worker processes; returns the per-stream results."""
    from pipeline.bench import machine_busy

    procs = max(1, min(n, args.procs))
    split = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    cmd = [sys.executable, __file__, "--worker", "--doc", doc_path, "--mode", args.mode_multi,
           "--video", args.video, "--model", args.model, "--batch", str(args.batch_multi), "--rate", str(args.rate),
           "--seconds", str(args.trial_seconds), "--warmup", str(args.warmup), "--device", args.device,
           "--setup-timeout", str(args.setup_timeout), "--max-wait", str(args.max_wait_multi)]
    samples: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=gpu_util_sampler, args=(stop, samples), daemon=True)
    busy0, t0 = machine_busy(), time.perf_counter()
    workers = [subprocess.Popen(cmd + ["--streams", str(k)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in split]
    sampler.start()
    streams, errors = [], []
    for w in workers:
        try:
            out, err = w.communicate(timeout=args.setup_timeout + args.warmup + args.trial_seconds + 90)
        except subprocess.TimeoutExpired:
            w.kill()
            out, err = w.communicate()
            errors.append("a worker timed out")
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            errors.append("a worker failed: " + " | ".join(err.strip().splitlines()[-3:]))
            continue
        res = json.loads(lines[-1][7:])
        streams += res["streams"]
        errors += res["errors"]
    stop.set()
    wall = time.perf_counter() - t0
    busy1 = machine_busy()
    cores_used = (busy1 - busy0) / wall if busy0 is not None and busy1 is not None else None
    fps = [s["fps"] for s in streams]
    due, lost = sum(s["due"] for s in streams), sum(s["lost"] for s in streams)
    ok = (len(streams) == n and not errors and min(fps) >= 0.97 * args.rate and lost <= 0.02 * max(due, 1))
    busy_samples = samples[len(samples) // 3:] or samples
    return {"streams": n, "procs": procs, "ok": ok, "min_fps": min(fps) if fps else 0.0,
            "mean_fps": sum(fps) / len(fps) if fps else 0.0, "total_fps": sum(fps), "lost_pct": 100 * lost / max(due, 1),
            "p95_ms": max((s["p95_ms"] or 0) for s in streams) if streams else None,
            "cpu_cores_busy": cores_used, "gpu_util": max((u for u, _ in busy_samples), default=None),
            "gpu_mem_mb": max((m for _, m in samples), default=None), "errors": errors[:5], "wall_s": wall}


def search(n: int, end: float, args, doc_path: str, report: dict, tag: str) -> int:
    """Trials from n streams up (x1.5) until one fails, then bisection, while time lasts before
    `end`; returns the most streams sustained (0: none)."""
    best, worst = 0, None
    while time.perf_counter() + args.setup_timeout / 2 + args.warmup + args.trial_seconds + 20 < end:
        log(f"trial{' (' + tag + ')' if tag else ''}: {n} streams of {args.rate:g} fps ...")
        try:
            t = trial(n, args, doc_path)
        except Exception as exc:  # noqa: BLE001
            log(f"trial {n} failed: {type(exc).__name__}: {exc}")
            break
        t["tag"] = tag
        report["trials"].append(t)
        log(f"  {n} streams: {'sustained' if t['ok'] else 'NOT sustained'}; per stream min {t['min_fps']:.1f} "
            f"mean {t['mean_fps']:.1f} fps, lost {t['lost_pct']:.1f} %, CPU cores busy "
            f"{t['cpu_cores_busy'] or 0:.1f}, GPU util max {t['gpu_util']} %, errors {t['errors']}")
        if t["ok"]:
            best = max(best, n)
        else:
            worst = n if worst is None else min(worst, n)
        if worst is not None and worst - best <= max(1, best // 10):
            break
        if worst is None:
            n = min(args.max_streams, max(n + 1, int(n * 1.5)))
            if n == best:
                break
        else:
            n = (best + worst) // 2 if best else max(1, worst // 2)
            if n in (best, worst):
                break
    return best


def start_mps() -> bool:
    """Start NVIDIA's Multi-Process Service (worker processes then share the GPU at once instead of
    time-slicing it); True when a fresh process can use CUDA through it within 30 s."""
    try:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True, timeout=20, capture_output=True)
        probe = subprocess.run([sys.executable, "-c", "import torch; torch.zeros(1, device='cuda').sum().item()"],
                               timeout=30, capture_output=True, text=True)
        if probe.returncode == 0:
            log("MPS started")
            return True
        log(f"MPS started but CUDA failed through it: {probe.stderr.strip().splitlines()[-1:]}")
    except Exception as exc:  # noqa: BLE001 - no MPS: the plain trials stand
        log(f"MPS not available: {type(exc).__name__}: {exc}")
    stop_mps()
    return False


def stop_mps() -> None:
    try:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, timeout=20, capture_output=True)
    except Exception:  # noqa: BLE001
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="default: configs/default.yaml when it holds the full chain, "
                    "else configs/bench_full.yaml")
    ap.add_argument("--video")
    ap.add_argument("--model")
    ap.add_argument("--frames", type=int, default=1500, help="single-stream frames per mode")
    ap.add_argument("--batch", type=int, default=8, help="detector batch, single stream")
    ap.add_argument("--batch-multi", type=int, default=4, help="detector batch per stream, concurrent streams")
    ap.add_argument("--max-wait-multi", type=float, default=0.15, help="seconds a stream's detector waits to fill "
                    "its batch (a converted graph costs ~7 ms of Python dispatch per call whatever the batch: "
                    "at 30 fps, batches of 4 cut that 4x for +0.1 s latency)")
    ap.add_argument("--rate", type=float, default=30.0, help="frames/s of each concurrent stream")
    ap.add_argument("--mode-multi", default="meta", choices=["meta", "video"], help="concurrent streams: JSON lines "
                    "only (scales) or with annotation + H.264 (CPU-bound encoding)")
    ap.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="most worker processes")
    ap.add_argument("--trial-seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--setup-timeout", type=float, default=60.0)
    ap.add_argument("--budget", type=float, default=400.0, help="seconds for the whole script (trials stop before)")
    ap.add_argument("--start", type=int, default=None, help="first number of streams to try (default: estimated)")
    ap.add_argument("--max-streams", type=int, default=160)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--no-mps", dest="mps", action="store_false", help="skip the second search with NVIDIA MPS "
                    "(run when nvidia-cuda-mps-control exists; half the trial time each)")
    ap.add_argument("--no-compare-streams", dest="compare_streams", action="store_false",
                    help="skip the single-stream run with one shared CUDA stream (pipeline.cuda_streams=false)")
    ap.add_argument("--device", default="cuda", help="cuda (cpu: a smoke test of this script elsewhere)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--doc", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="meta", help=argparse.SUPPRESS)
    ap.add_argument("--max-wait", type=float, default=0.02, help=argparse.SUPPRESS)
    ap.add_argument("--streams", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.chdir(ROOT)  # config-relative assets (the ad image)
    if args.worker:
        return worker(args)
    args.video, args.model = find(VIDEO, args.video), find(MODEL, args.model)
    if args.config is None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_pipeline import default_config

        args.config = default_config()
    import torch

    from pipeline import config

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: nothing to measure")
        return 1
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    log(f"{gpu}, torch {torch.__version__}, {os.cpu_count()} CPU cores; "
        f"video {args.video}, model {args.model}")
    base = config.load_yaml(args.config)
    report: dict = {"gpu": gpu, "cores": os.cpu_count(), "config": args.config,
                    "single": {}, "trials": []}
    with tempfile.TemporaryDirectory() as out_dir:
        if not args.skip_single:
            runs = [("video", "video", ()), ("meta", "meta", ())]
            if args.compare_streams:  # the same chain with every stage on one shared CUDA stream
                runs.append(("meta, one stream", "meta", ("pipeline.cuda_streams=false",)))
            hosted = [s.get("name") or s.get("type") for s in base.get("stages") or []
                      if isinstance(s, dict) and s.get("process")]
            if hosted:  # host stages run in CPU workers on a GPU too: the same chain all in threads
                runs.append(("video, no workers", "video", tuple(f"stages.{n}.process=false" for n in hosted)))
            for label, mode, overrides in runs:
                try:
                    report["single"][label] = single(base, mode, args, out_dir, overrides, label)
                except Exception as exc:  # noqa: BLE001 - the rest still runs
                    log(f"single stream {label} failed: {type(exc).__name__}: {exc}")
        doc_path = os.path.join(out_dir, "base.json")
        Path(doc_path).write_text(json.dumps(base))
        meta = report["single"].get(args.mode_multi)
        if args.start:
            n = args.start
        elif meta:  # the CPU each frame costs, spread over the cores, at 30 fps per stream
            n = int(0.7 * (os.cpu_count() or 2) * 1000 / meta["cpu_ms_per_frame"] / args.rate)
        else:
            n = 8
        n = max(1, min(args.max_streams, n))
        mps = args.mps and shutil.which("nvidia-cuda-mps-control") is not None and args.device.startswith("cuda")
        end_plain = T0 + (args.budget + (time.perf_counter() - T0)) / 2 if mps else T0 + args.budget
        best = search(n, end_plain, args, doc_path, report, "")
        if mps and start_mps():
            try:
                report["best_plain"] = best
                best_mps = search(max(best, 1), T0 + args.budget, args, doc_path, report, "mps")
                report["best_mps"] = best_mps
                best = max(best, best_mps)
            finally:
                stop_mps()
    report["sustained_streams"] = best
    print_summary(report, args)
    if os.environ.get("OUT"):
        path = Path(os.environ["OUT"]) / "gpu_pipeline.json"
        path.write_text(json.dumps(report, indent=1, default=str))
        log(f"wrote {path}")
    return 0


def print_summary(report: dict, args) -> None:
    print(f"\n== gpu_pipeline: {report['gpu']}, {report['cores']} cores, YOLOX-Nano, 1080p clip looped "
          f"({time.perf_counter() - T0:.0f} s) ==")
    print(f"{'run':<26}{'fps':>8}{'bound':>8}{'fps/bound':>10}{'lat p50':>9}{'lat p95':>9}{'CPU ms/f':>9}  limited by")
    for mode, a in report["single"].items():
        print(f"{'single, ' + mode:<26}{a['fps']:>8.1f}{a['bound_fps']:>8.1f}{100 * (a['efficiency'] or 0):>9.0f}%"
              f"{a['latency_ms']['p50'] or 0:>9.0f}{a['latency_ms']['p95'] or 0:>9.0f}{a['cpu_ms_per_frame']:>9.2f}  "
              f"{a['limited_by']} ({a['slowest']} {a['slowest_ms']:.1f} ms)")
    print(f"(target: single stream >= 150 frames/s)\n{'mps':>4}{'streams':>8}{'procs':>6}{'sustained':>10}{'min fps':>9}"
          f"{'total fps':>10}{'lost %':>8}{'p95 ms':>8}{'CPU busy':>9}{'GPU %':>7}{'GPU MiB':>9}")
    for t in report["trials"]:
        print(f"{'yes' if t.get('tag') == 'mps' else 'no':>4}{t['streams']:>8}{t['procs']:>6}{'yes' if t['ok'] else 'no':>10}{t['min_fps']:>9.1f}{t['total_fps']:>10.0f}"
              f"{t['lost_pct']:>8.1f}{t['p95_ms'] or 0:>8.0f}{t['cpu_cores_busy'] or 0:>9.1f}{t['gpu_util'] or 0:>7.0f}"
              f"{t['gpu_mem_mb'] or 0:>9.0f}")
    print(f"concurrent {args.rate:g} fps 1080p streams sustained ({args.mode_multi}): {report['sustained_streams']}")


if __name__ == "__main__":
    sys.exit(main())
