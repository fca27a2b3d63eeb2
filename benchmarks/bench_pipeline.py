"""The whole pipeline on this CPU (issue 10): the default chain on the 640x360 street sample (looped),
and the same chain with YOLOX-Nano detection in place of motion detection.

For each variant: throughput (target >= 30 fps with motion, >= 15 fps with YOLOX-Nano on the 2-core
development machine), end-to-end latency, peak RSS (summed over processes) and PSS (pages the
processes share counted once), and throughput against the bound min(1 / slowest thread, cores / CPU
per frame) (target >= 90 %), over the whole run and in the steady state (after a tenth of the
frames, before the source ends: no warm-up, fill or drain). On a shared machine the bound on the
cores other processes left is printed too. Variants are interleaved, `--repeats` times; the table
shows the median run of each; the per-thread breakdown of the last run is printed after it.

    OMP_NUM_THREADS=1 python benchmarks/bench_pipeline.py [--config configs/default.yaml]
        [--frames 900] [--repeats 3] [--model .../yolox_nano.onnx] [--json out/bench_pipeline.json]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch/numpy load their thread pools

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import config  # noqa: E402
from pipeline.bench import bench, format_report  # noqa: E402

MODEL = os.environ.get("VIDPIPE_YOLOX", "/work/shared/models/yolox_nano/yolox_nano.onnx")
TARGETS = {"motion": 30.0, "yolox_nano": 15.0, "motion_threads": 30.0, "yolox_nano_threads": 15.0}


FULL = ("background", "track", "flow", "activity", "planar_track", "placement", "annotate")


def default_config() -> str:
    """configs/default.yaml once it holds the full chain, else configs/bench_full.yaml (the same
    chain, kept by the benchmarks while the default grows)."""
    path = ROOT / "configs" / "default.yaml"
    try:
        doc = config.load_yaml(path)
        kinds = {s if isinstance(s, str) else s.get("type") for s in doc.get("stages") or []}
    except Exception:  # noqa: BLE001 - a broken default: the benchmark's own chain
        kinds = set()
    return str(path if set(FULL) <= kinds else ROOT / "configs" / "bench_full.yaml")


def detect_spec(model: str, input_size, backend: str = "auto") -> dict:
    spec = {"type": "detect", "model": model, "backend": backend, "keep_classes": ["person"],
            "score_threshold": 0.3}
    if input_size:
        spec["input_size"] = input_size
    return spec


def variant_doc(doc: dict, variant: str, out_dir: str, model: str, input_size, backend: str) -> dict:
    """The config document of one variant: sinks redirected to out_dir, motion -> detect for yolox;
    *_threads: every stage in a thread (the config's `process: true` keys dropped)."""
    doc = copy.deepcopy(doc)
    if variant.endswith("_threads"):
        variant = variant[:-len("_threads")]
        for stage in doc["stages"]:
            if isinstance(stage, dict):
                stage.pop("process", None)
    for sink in doc.get("sinks") or []:
        if isinstance(sink, dict) and "path" in sink:
            sink["path"] = os.path.join(out_dir, f"{variant}_{Path(sink['path']).name}")
    if variant == "yolox_nano":
        stages = doc["stages"]
        kinds = [s if isinstance(s, str) else s.get("type") for s in stages]
        if "motion" in kinds:
            stages[kinds.index("motion")] = detect_spec(model, input_size, backend)
            for stage in stages:   # the track split divides motion blobs; detector boxes are per person
                if isinstance(stage, dict) and stage.get("type") == "track":
                    stage.pop("split", None)
        elif "detect" not in kinds:
            at = kinds.index("background") + 1 if "background" in kinds else 0
            stages.insert(at, detect_spec(model, input_size, backend))
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=default_config(), help="default: configs/default.yaml when it holds "
                        "the full chain, else configs/bench_full.yaml")
    parser.add_argument("--source", default=str(ROOT / "sample_videos" / "street.mp4"))
    parser.add_argument("--frames", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=MODEL, help="YOLOX-Nano ONNX file (env VIDPIPE_YOLOX)")
    parser.add_argument("--backend", default="auto", help="detect backend of the yolox variant (auto: onnxruntime "
                        "on the CPU, 13 ms per 416x416 frame on one core here; torch via onnx2torch: 36 ms)")
    parser.add_argument("--input-size", type=int, nargs="+", default=None, help="detector input (h w), default the model's")
    parser.add_argument("--variants", nargs="+", default=["motion", "yolox_nano"], choices=list(TARGETS),
                        help="*_threads: the same chain with every stage in a thread (no worker processes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (all variants)")
    parser.add_argument("--json", default=None, help="write every run's report here")
    args = parser.parse_args()
    if any(v.startswith("yolox_nano") for v in args.variants) and not os.path.isfile(args.model):
        print(f"skipping yolox_nano: model not found: {args.model}")
        args.variants = [v for v in args.variants if not v.startswith("yolox_nano")]
    os.chdir(ROOT)  # config paths (assets, samples) are relative to the repository
    base = config.load_yaml(args.config)
    base["source"] = args.source
    size = args.input_size[0] if args.input_size and len(args.input_size) == 1 else args.input_size
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory() as out_dir:
        for r in range(args.repeats):
            for variant in args.variants:
                doc = variant_doc(base, variant, out_dir, args.model, size, args.backend)
                cfg = config.from_dict(doc, [f"source.max_frames={args.frames}", *args.set])
                stats, a = bench(cfg, loop=True)
                a["stats"] = stats
                runs[variant].append(a)
                steady = a.get("steady") or {}
                print(f"[{r + 1}/{args.repeats}] {variant}: {a['fps']:.1f} fps, bound {a['bound_fps']:.1f}, "
                      f"cores left {a.get('cores_left', float('nan')):.2f}; steady {steady.get('fps', float('nan')):.1f} "
                      f"fps, {100 * steady.get('efficiency', float('nan')):.0f} % of its bound", flush=True)
    chain = " -> ".join(s if isinstance(s, str) else s["type"] for s in base["stages"])
    print(f"\n{args.config}: {chain}; {Path(args.source).name} looped to {args.frames} frames; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; {os.cpu_count()} cores; median of {args.repeats}")
    head = f"{'variant':<19}{'fps':>7}{'target':>8}{'bound':>7}{'fps/bound':>10}{'cores left':>11}" \
           f"{'fps/bound left':>15}{'idle':>6}{'steady fps':>11}{'steady/bound':>13}{'lat p50':>9}{'lat p95':>9}" \
           f"{'CPU ms/f':>9}{'RSS MiB':>8}{'PSS MiB':>8}  slowest"
    print(head)
    print("-" * len(head))
    for variant, rs in runs.items():
        a = sorted(rs, key=lambda x: x["fps"])[len(rs) // 2]
        left = a.get("cores_left")
        print(f"{variant:<19}{a['fps']:>7.1f}{TARGETS[variant]:>8.0f}{a['bound_fps']:>7.1f}{100 * a['efficiency']:>9.0f}%"
              f"{left if left is not None else float('nan'):>11.2f}{100 * a.get('efficiency_left', float('nan')):>14.0f}%"
              f"{a.get('cores_idle', float('nan')):>6.2f}"
              f"{(a.get('steady') or {}).get('fps', float('nan')):>11.1f}"
              f"{100 * (a.get('steady') or {}).get('efficiency', float('nan')):>12.0f}%"
              f"{a['latency_ms']['p50']:>9.0f}{a['latency_ms']['p95']:>9.0f}{a['cpu_ms_per_frame']:>9.2f}"
              f"{a['peak_rss_mb']:>8.0f}{a.get('peak_pss_mb') or float('nan'):>8.0f}  {a['slowest']} {a['slowest_ms']:.1f} ms")
        each = ", ".join(f"{x['fps']:.1f}" for x in rs)
        print(f"   fps of each run: {each}; median "
              f"{statistics.median(x['fps'] for x in rs):.1f}")
    for variant, rs in runs.items():
        print()
        print(format_report(rs[-1], f"{variant} (last run):"))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
