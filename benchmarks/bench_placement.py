"""Product placement speed per 640x480 frame: planar tracking (the `planar_track` stage) +
compositing (the `placement` stage), each timed around its `process` call, side by side in one
process; plus the visible-ad IoU where ground truth exists.

    OMP_NUM_THREADS=1 python benchmarks/bench_placement.py [--repeat 3] [--threads 1]

Clips: a generated billboard scene rendered at 640x480 (scenes.render_billboard: true corners,
homographies and figure masks; occluded by the true masks, so the numbers are the compositing's
own) and ../shared/data/videos/planar_postcard_moving_cam.mp4 (640x480, real hand-held camera, no
occluder) when present. Placement variants: OpenCV (the CPU default) and torch (grid_sample, what
runs on a GPU) on the CPU. Times are the stage thread's CPU time (time.thread_time) unless --wall:
on a shared, loaded 2-core box the wall clock mostly measures the other processes. The background stage is timed separately (bench_background.py): the
10 ms budget is tracking + compositing. Per variant the repeat with the lowest mean is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.frame import Frame  # noqa: E402
from pipeline.params import build_or_raise  # noqa: E402
from pipeline.stage import SourceInfo, StageContext  # noqa: E402
from stages.compositing.evaluate import drawn_region, iou, visible_truth  # noqa: E402
from stages.placement import PlacementStage  # noqa: E402
from stages.planar_track import PlanarTrackStage  # noqa: E402

POSTCARD = ROOT.parent / "shared" / "data" / "videos" / "planar_postcard_moving_cam.mp4"
POSTCARD_CORNERS = [[64, 116], [252, 84], [311, 284], [69, 329]]
# placement variants (--backends): a backend, or a backend with the edges as they were before the
# backdrop fill and the guided matte ("-old": fill none, matte feather 1.5), to compare side by side
VARIANTS = {"opencv": {"backend": "opencv"}, "torch": {"backend": "torch"},
            "opencv-old": {"backend": "opencv", "fill": "none", "matte": "feather"},
            "torch-old": {"backend": "torch", "fill": "none", "matte": "feather"}}
CPU_TIME = True  # --wall: wall-clock instead of the thread's CPU time (robust to a shared, loaded box)


def clips(postcard: Path, n: int):
    """(name, frames, masks or None, corners in frame 0, truths or None)."""
    import scenes

    clip = list(scenes.render_billboard(0, (640, 480), n, noise=2.0))
    truths = [t for _, t in clip]
    masks = [t["mask"].astype(np.uint8) * 255 for t in truths]
    yield "billboard 640x480 (generated), true masks", [c[0] for c in clip], masks, truths[0]["corners"], truths
    if postcard.exists():
        from stages.planar.evaluate import read_frames

        yield "postcard 640x480 (real)", list(read_frames(str(postcard)))[:n], None, np.array(POSTCARD_CORNERS, float), None


def context(w: int, h: int) -> StageContext:
    return StageContext("cpu", SourceInfo("bench", w, h, 30.0, False), threading.Event(), logging.getLogger("bench"))


def run(frames, masks, corners, truths, variant: str):
    """Per-frame ms of planar_track and placement (after the first frame), and IoUs."""
    h, w = frames[0].shape[:2]
    track = PlanarTrackStage(build_or_raise(PlanarTrackStage.Params, {"corners": np.asarray(corners).tolist()}))
    place = PlacementStage(build_or_raise(PlacementStage.Params, VARIANTS[variant]))
    track.setup(context(w, h))
    place.setup(context(w, h))
    t_track, t_place, ious = [], [], []
    clock = time.thread_time if CPU_TIME else time.perf_counter
    for i, img in enumerate(frames):
        frame = Frame(i, i / 30.0, img)
        if masks is not None:
            frame.mask = masks[i]
        t0 = clock()
        track.process(frame)
        t1 = clock()
        place.process(frame)
        t2 = clock()
        if i:
            t_track.append(t1 - t0)
            t_place.append(t2 - t1)
        if truths is not None:
            ious.append(iou(drawn_region(place.last_coverage, h, w), visible_truth(truths[i]["corners"], truths[i]["mask"])))
    track.close()
    place.close()
    return np.array(t_track) * 1e3, np.array(t_place) * 1e3, np.array(ious)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1, help="cv2/torch threads (the pipeline runs a thread per stage)")
    parser.add_argument("--postcard", type=Path, default=POSTCARD, help="the postcard clip (skipped when absent)")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock (default: thread CPU time)")
    parser.add_argument("--backends", default="opencv,torch",
                        help=f"placement variants to compare, comma-separated: {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    unknown = [v for v in args.backends.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--backends: unknown {', '.join(unknown)}; expected some of {', '.join(VARIANTS)}")
    import torch

    global CPU_TIME
    CPU_TIME = not args.wall
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"OpenCV {cv2.__version__}, torch {torch.__version__}, {args.threads} thread(s), best of {args.repeat}, "
          f"{'wall-clock' if args.wall else 'thread CPU'} time")
    print("| clip | placement backend | planar_track mean / p95 ms | placement mean / p95 ms | "
          "tracking + compositing mean ms | visible-ad IoU mean / min |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, frames, masks, corners, truths in clips(args.postcard, args.frames):
        best = {}
        for _ in range(args.repeat):
            for backend in args.backends.split(","):
                tt, tp, ious = run(frames, masks, corners, truths, backend)
                if backend not in best or (tt + tp).mean() < (best[backend][0] + best[backend][1]).mean():
                    best[backend] = (tt, tp, ious)
        for backend, (tt, tp, ious) in best.items():
            score = f"{ious.mean():.4f} / {ious.min():.4f}" if len(ious) else "n/a (no GT)"
            print(f"| {name} | {backend} | {tt.mean():.2f} / {np.percentile(tt, 95):.2f} | "
                  f"{tp.mean():.2f} / {np.percentile(tp, 95):.2f} | **{(tt + tp).mean():.2f}** | {score} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
