"""Does a smaller working size change the results? The background and flow stages on 1080p street
scenes with exact truth, at their own scale and under `max_width` caps, side by side.

    OMP_NUM_THREADS=1 python benchmarks/eval_working_size.py [--seeds 1001-1002] [--size 1920x1080]
        [--frames 240] [--clips DIR] [--background 960,640,480] [--flow 480,320,240] [--chain CONFIG]

- background: masks at each processing width (scale 0.5 = 960 px at 1080p, then max_width caps),
  then the motion and track stages (stage defaults; default.yaml's max_age 10, min_hits 3), scored as
  benchmarks/eval_motion.py does (frames 31+: detection precision / recall at IoU 0.5, MOTA, IDF1,
  id switches), and the background stage's CPU ms per frame;
- flow: the flow stage (default horn_schunck) at each working width on the scene's frames, with the
  true boxes as detections: the per-box mean flow (what activity reads) against the true box-centre
  motion (px per frame, boxes >= 80 % visible whose size changes < 3 %), as mean absolute error, and
  the stage's CPU ms per frame.
Scenes are generated with `vidpipe generate street --seed N --size WxH` into --clips first.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import eval_motion as em  # noqa: E402


def decode(path: Path, frames: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as container:
        for f in container.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == frames:
                break
    return out


def scene(seed: int, size: str, frames: int, clips: Path) -> Path:
    out = clips / f"street_{seed}_{size}.mp4"
    if not out.is_file():
        subprocess.run([sys.executable, "-m", "scenes.cli", "street", "--seed", str(seed), "--size", size,
                        "--frames", str(frames), "--out", str(clips), "--name", out.stem], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    return out


def masks_at(images, width: int, fps: float) -> tuple[np.ndarray, float]:
    """Foreground masks (T,H,W) bool with the background stage at `width` processing pixels, and
    its CPU ms per frame."""
    from pipeline.frame import Frame

    h, w = images[0].shape[:2]
    raw = {"shadows": False, "scale": 0.5}
    if width < w * 0.5:
        raw["max_width"] = width
    bg = em.make("background", raw)
    bg.setup(em.context(w, h, fps))
    out, cpu = [], 0.0
    for t, img in enumerate(images):
        t0 = time.thread_time()
        m = bg.process(Frame(t, t / fps, img)).mask
        cpu += time.thread_time() - t0
        out.append(np.asarray(m) > 0)
    bg.close()
    return np.stack(out), 1000 * cpu / len(images)


def flow_error(images, truth, width: int) -> tuple[float, int, float]:
    """Mean |box mean flow - true box-centre motion| (px/frame) over still-sized, visible boxes;
    the number of boxes scored; the flow stage's CPU ms per frame."""
    from pipeline.frame import Detections, Frame

    h, w = images[0].shape[:2]
    raw = {"scale": 0.25} if width >= w * 0.25 else {"scale": 0.25, "max_width": width}
    stage = em.make("flow", raw)
    stage.setup(em.context(w, h, truth.fps))
    errors, cpu = [], 0.0
    for t, img in enumerate(images):
        cur = truth.frames[t]
        frame = Frame(t, t / truth.fps, img)
        frame.detections = Detections(cur.boxes_clipped.astype(np.float32), np.ones(len(cur.ids), np.float32),
                                      np.zeros(len(cur.ids), np.int32))
        t0 = time.thread_time()
        stage.process(frame)
        cpu += time.thread_time() - t0
        if t < 2:
            continue
        prev = truth.frames[t - 1]
        prev_of = {int(i): k for k, i in enumerate(prev.ids)}
        mean = frame.detections.data["flow_mean"]
        for k, i in enumerate(cur.ids):
            j = prev_of.get(int(i))
            if j is None or cur.visibility[k] < 0.8 or prev.visibility[j] < 0.8:
                continue
            a, b = prev.boxes_clipped[j], cur.boxes_clipped[k]
            size_a, size_b = a[2:] - a[:2], b[2:] - b[:2]
            if np.any(np.abs(size_b / np.maximum(size_a, 1) - 1) > 0.03):
                continue                                     # clipped, turning or scaling: centre motion is not the body's
            true = (b[:2] + b[2:]) / 2 - (a[:2] + a[2:]) / 2
            errors.append(np.abs(mean[k] - true).mean())
    stage.close()
    return float(np.mean(errors)), len(errors), 1000 * cpu / len(images)


def main() -> int:
    import scenes
    from stages.activities.evaluate import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1001-1002")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--clips", default="/tmp/vidpipe_working_size")
    ap.add_argument("--background", default="960,640,480", help="processing widths (960 = scale 0.5 at 1080p)")
    ap.add_argument("--flow", default="480,320,240", help="working widths (480 = scale 0.25 at 1080p)")
    ap.add_argument("--chain", default="none", help="a config whose motion and track settings to score with "
                    "(e.g. configs/default.yaml); none: the stage defaults with max_age 10, min_hits 3")
    args = ap.parse_args()
    chain = {"motion": {}, "track": {}}
    if args.chain != "none":
        from pipeline import config

        for spec in config.load_yaml(args.chain).get("stages", []):
            if isinstance(spec, dict) and spec.get("type") in chain:
                chain[spec["type"]] = {k: v for k, v in spec.items() if k not in ("type", "name", "process")}
        print(f"motion and track as in {args.chain}: {chain}")
    clips = Path(args.clips)
    clips.mkdir(parents=True, exist_ok=True)
    rows_bg: dict = {}
    rows_flow: dict = {}
    for seed in parse_seeds(args.seeds):
        path = scene(seed, args.size, args.frames, clips)
        truth = scenes.load_street(path)
        images = decode(path, args.frames)
        for width in map(int, args.background.split(",")):
            masks, ms = masks_at(images, width, truth.fps)
            r = em.run_variant(truth, masks, chain)
            r["bg_ms"] = ms
            rows_bg.setdefault(width, []).append(r)
            print(f"seed {seed} background {width:>4} px: P {r['precision']:.3f} R {r['recall']:.3f} "
                  f"MOTA {100 * r['mota']:5.1f} IDF1 {100 * r['idf1']:5.1f} IDs {r['ids']:3d}  {ms:.1f} ms", flush=True)
        for width in map(int, args.flow.split(",")):
            err, n, ms = flow_error(images, truth, width)
            rows_flow.setdefault(width, []).append((err, n, ms))
            print(f"seed {seed} flow {width:>4} px: box flow error {err:.3f} px/frame ({n} boxes)  {ms:.1f} ms",
                  flush=True)
    print(f"\nbackground width  {'P':>6} {'R':>6} {'MOTA':>6} {'IDF1':>6} {'IDs':>5} {'ms/frame':>9}   (mean of "
          f"{len(parse_seeds(args.seeds))} scenes, {args.size})")
    for width, rs in rows_bg.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("precision", "recall", "mota", "idf1", "ids", "bg_ms")}
        print(f"{width:>16} {m['precision']:>6.3f} {m['recall']:>6.3f} {100 * m['mota']:>6.1f} {100 * m['idf1']:>6.1f}"
              f" {m['ids']:>5.1f} {m['bg_ms']:>9.1f}")
    print(f"\nflow width  {'box flow error px/frame':>24} {'boxes':>6} {'ms/frame':>9}")
    for width, rs in rows_flow.items():
        print(f"{width:>10} {np.mean([r[0] for r in rs]):>24.3f} {sum(r[1] for r in rs):>6d} "
              f"{np.mean([r[2] for r in rs]):>9.1f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
