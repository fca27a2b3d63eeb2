"""Per-frame cost of the `activity` and `events` stages (the pipeline's budget for them is ~1 ms).

    python benchmarks/bench_activity.py [--frames 300] [--seed 4] [--weights W] [--repeat 3]

A generated street scene (jittered truth boxes -> the track stage -> the flow stage) is prepared
first; then each variant's process() is timed over the same frames, interleaved per repeat (the
machine is shared and noisy: compare the rows, take the best of --repeat). Prints ms per frame
(mean and p95) and the mean number of tracks per frame.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def prepare(seed: int, frames: int, flow: bool):
    from stages.activities.dataset import SceneSpec, build_stages, scene_frames
    from pipeline.frame import Frame
    from stages.activities.dataset import GroundTruthBoxes, _context

    spec = SceneSpec(seed, n_frames=frames)
    chain = build_stages("gt", None, seed=seed, flow=flow)
    size, fps, it = scene_frames(spec)
    ctx = _context(size, fps)
    for st in chain:
        st.setup(ctx)
    out = []
    for t, (img, truth) in enumerate(it):
        f = Frame(t, t / fps, img)
        for st in chain:
            if isinstance(st, GroundTruthBoxes):
                st.truth = truth
            f = st.process(f)
        out.append(f)
    return out, ctx


def time_stage(make, frames, ctx) -> tuple[float, float]:
    stage = make()
    stage.setup(ctx)
    times = []
    for f in frames:
        g = copy.copy(f)
        g.events, g.meta, g.activities = [], dict(f.meta), {}
        t0 = time.perf_counter()
        stage.process(g)
        times.append(time.perf_counter() - t0)
    stage.close()
    ms = np.asarray(times[10:]) * 1000
    return float(ms.mean()), float(np.percentile(ms, 95))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--weights", help="also time classifier: temporal with these weights")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from stages.activity import ActivityParams, ActivityStage
    from stages.events import EventsParams, EventsStage
    from pipeline.params import build_or_raise

    frames, ctx = prepare(args.seed, args.frames, flow=True)
    ntracks = np.mean([0 if f.detections is None else len(f.detections) for f in frames])
    events = build_or_raise(EventsParams, {"normalized": True, "lines": [
        {"name": "centre", "p1": [0.5, 0.3], "p2": [0.5, 1.0]}, {"name": "near", "p1": [0.1, 0.8], "p2": [0.9, 0.8]}],
        "zones": [{"name": "left", "polygon": [[0, 0.3], [0.5, 0.3], [0.5, 1], [0, 1]]}]})
    variants = {
        "activity rules (flow + motion energy)": lambda: ActivityStage(ActivityParams()),
        "activity rules, no motion energy": lambda: ActivityStage(ActivityParams(motion_energy=False)),
        "activity rules, no flow, no energy": lambda: ActivityStage(ActivityParams(motion_energy=False, use_flow=False)),
        "events (2 lines, 1 zone)": lambda: EventsStage(events),
    }
    if args.weights:
        variants["activity temporal"] = lambda: ActivityStage(ActivityParams(classifier="temporal", weights=args.weights))
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for name, make in variants.items():
            mean, p95 = time_stage(make, frames, ctx)
            if name not in best or mean < best[name][0]:
                best[name] = (mean, p95)
    print(f"{args.frames} frames 640x360, seed {args.seed}, {ntracks:.1f} tracks per frame on average; "
          f"best of {args.repeat}, torch threads 1")
    print(f"{'variant':<40} {'ms/frame':>9} {'p95 ms':>8}")
    for name, (mean, p95) in best.items():
        print(f"{name:<40} {mean:>9.3f} {p95:>8.3f}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
