"""Per-frame cost of the default demo's motion -> track chain, with and without the track stage's
`split` (blobs split / fragments joined by the tracks' predictions) and the motion stage's
`split_ratio` (wide blobs split at column valleys), on the background stage's
masks of the bundled street clip (computed once, cached like benchmarks/eval_motion.py does).

    OMP_NUM_THREADS=1 python benchmarks/bench_motion.py [--video sample_videos/street.mp4 ...] [--rounds 5]
        [--frames N] [--sizes]

Rounds interleave the variants (the machine is shared and noisy); the table shows the median round.
--video may be given several times (e.g. one generated scene at 640x360, 1280x720 and 1920x1080:
`benchmarks/eval_motion.py --size ... --frames 240` writes them); --sizes compares, per video, the
default chain (both splits) with the motion sizes in the frame's own pixels (`ref_width: null`, the
behaviour before 2026-11-26), in pixels of a 640-wide frame (`ref_width` 640, the default), and
that with the working mask at most 640 wide (`max_width: 640`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def run(masks: np.ndarray, motion_params: dict, track_params: dict) -> tuple[float, float, int]:
    """(motion ms/frame, track ms/frame, frames the track stage split) over all masks."""
    from eval_motion import context, make

    from pipeline.frame import Frame

    motion = make("motion", motion_params)
    track = make("track", {"max_age": 10, "min_hits": 3} | track_params)
    h, w = masks.shape[1:]
    motion.setup(context(w, h, 30.0))
    track.setup(context(w, h, 30.0))
    blank = np.zeros((h, w, 3), np.uint8)
    tm = tt = 0.0
    for t in range(len(masks)):
        frame = Frame(t, t / 30.0, blank)
        frame.mask = masks[t].view(np.uint8)
        t0 = time.perf_counter()
        frame = motion.process(frame)
        t1 = time.perf_counter()
        track.process(frame)
        t2 = time.perf_counter()
        tm += t1 - t0
        tt += t2 - t1
    n = len(masks)
    return 1000 * tm / n, 1000 * tt / n, track.splits


def main(argv=None) -> int:
    from eval_motion import scene_masks

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", action="append", default=[], help="default: sample_videos/street.mp4")
    ap.add_argument("--cache", default="/tmp/vidpipe_motion_eval/masks")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=None, help="time only the first N frames")
    ap.add_argument("--sizes", action="store_true", help="variants: both splits with ref_width null, 640, and max_width 640")
    args = ap.parse_args(argv)
    for video in args.video or [str(ROOT / "sample_videos" / "street.mp4")]:
        masks = scene_masks(Path(video), Path(args.cache))[:args.frames]
        bench(masks, args.rounds, args.sizes)
    return 0


def bench(masks: np.ndarray, rounds: int, sizes: bool) -> None:
    both = {"split_ratio": 0.3}, {"split": True}
    if sizes:
        variants = {"ref_width null": ({**both[0], "ref_width": None}, both[1]), "ref_width 640": both,
                    "+ max_width 640": ({**both[0], "max_width": 640}, both[1])}
    else:
        variants = {"off": ({}, {}), "track split": ({}, {"split": True}), "columns": ({"split_ratio": 0.3}, {}),
                    "both": both}
    times: dict = {k: [] for k in variants}
    splits = {}
    for _ in range(rounds):
        for name, (motion, track) in variants.items():
            m, t, s = run(masks, motion, track)
            times[name].append((m, t))
            splits[name] = s
    print(f"{len(masks)} frames {masks.shape[2]}x{masks.shape[1]}, median of {rounds} interleaved rounds")
    print(f"{'variant':<16}{'motion ms':>11}{'track ms':>10}{'motion+track':>14}{'frames split':>14}")
    base = None
    for name, rows in times.items():
        m, t = (float(np.median([r[i] for r in rows])) for i in (0, 1))
        base = base or m + t
        print(f"{name:<16}{m:>11.3f}{t:>10.3f}{m + t:>14.3f}{splits[name]:>14}   x{(m + t) / base:.2f}")


if __name__ == "__main__":
    sys.exit(main())
