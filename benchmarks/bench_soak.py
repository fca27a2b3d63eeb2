"""Memory soak (issues 9 and 10): N frames (default 20,000) through the default pipeline on a
generated source, resident memory sampled as it runs; growth = RSS at the end - RSS after warm-up.
Target: growth < 50 MB.

Source: the street sample looped by the bench's LoopSource (real content: tracks come and go,
activities, the planar tracker re-anchors), or `--lavfi` for FFmpeg's testsrc2 generator. Outputs
(video, JSON lines) go to a temporary folder, so the disk does not fill; they are deleted after.

    OMP_NUM_THREADS=1 python benchmarks/bench_soak.py [--config configs/default.yaml] [--frames 20000]
        [--warmup 2000] [--lavfi] [--csv out/soak_rss.csv]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import config  # noqa: E402
from pipeline.bench import build_pipeline  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_pipeline import default_config  # noqa: E402


def rss_mb() -> float:
    """Resident MiB of this process plus its live worker processes (stages with process: true)."""
    import multiprocessing

    total = 0.0
    for pid in ["self"] + [str(p.pid) for p in multiprocessing.active_children()]:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            pass
    return total if total else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=default_config(), help="default: configs/default.yaml when it "
                        "holds the full chain, else configs/bench_full.yaml")
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=None, help="frames before the baseline (default 10 %%)")
    parser.add_argument("--lavfi", action="store_true", help="testsrc2 640x360 instead of the looped street sample")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--csv", default=None, help="write the samples (seconds, frames, rss MB)")
    args = parser.parse_args()
    os.chdir(ROOT)
    warmup = args.warmup if args.warmup is not None else args.frames // 10
    doc = copy.deepcopy(config.load_yaml(args.config))
    doc["source"] = "lavfi:testsrc2=size=640x360:rate=30" if args.lavfi else "sample_videos/street.mp4"
    samples: list[tuple[float, int, float]] = []
    t0 = time.perf_counter()
    last = [0.0]

    def progress(runner) -> None:
        now = time.perf_counter()
        if now - last[0] >= args.every:
            last[0] = now
            samples.append((now - t0, runner.stats.frames_written, rss_mb()))

    with tempfile.TemporaryDirectory() as out_dir:
        for sink in doc.get("sinks") or []:
            if isinstance(sink, dict) and "path" in sink:
                sink["path"] = os.path.join(out_dir, Path(sink["path"]).name)
        cfg = config.from_dict(doc, [f"source.max_frames={args.frames}"])
        gc.collect()
        start_rss = rss_mb()
        pipe = build_pipeline(cfg, loop=not args.lavfi)
        stats = pipe.run(progress)
        closed = rss_mb()  # after every stage and sink closed
        if not samples:
            samples.append((time.perf_counter() - t0, stats["frames_written"], closed))
        sizes = {p.name: p.stat().st_size / 1e6 for p in Path(out_dir).iterdir()}
    base = next((s for s in samples if s[1] >= warmup), samples[-1])
    after = [s for s in samples if s[1] >= warmup]
    end = samples[-1]
    half = [s for s in after if s[1] >= (warmup + args.frames) / 2]
    slope = 0.0
    if len(after) >= 3:
        import numpy as np

        x, y = np.array([s[1] for s in after], float), np.array([s[2] for s in after])
        slope = float(np.polyfit(x, y, 1)[0]) * 10000  # MB per 10k frames
    chain = " -> ".join(s if isinstance(s, str) else s["type"] for s in doc["stages"])
    print(f"soak: {args.config} ({chain}) on {doc['source']}{' looped' if not args.lavfi else ''}, "
          f"{stats['frames_written']} frames in {end[0]:.0f} s ({stats['fps']:.1f} fps); outputs "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in sizes.items()))
    print(f"{'':<26}{'frames':>8}{'RSS MB':>9}")
    print(f"{'before the run':<26}{0:>8}{start_rss:>9.1f}")
    print(f"{'after warm-up (baseline)':<26}{base[1]:>8}{base[2]:>9.1f}")
    if half:
        print(f"{'half way after warm-up':<26}{half[0][1]:>8}{half[0][2]:>9.1f}")
    print(f"{'last sample of the run':<26}{end[1]:>8}{end[2]:>9.1f}")
    print(f"{'after close':<26}{stats['frames_written']:>8}{closed:>9.1f}")
    print(f"{'max sampled after warm-up':<26}{'':>8}{max(s[2] for s in after):>9.1f}")
    print(f"growth after warm-up {end[2] - base[2]:+.1f} MB (target < 50), linear trend {slope:+.2f} MB per 10k "
          f"frames; peak RSS {stats['peak_rss_mb']} MiB; {len(samples)} samples")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        Path(args.csv).write_text("seconds,frames,rss_mb\n" + "".join(f"{t:.1f},{n},{r:.1f}\n" for t, n, r in samples))
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
