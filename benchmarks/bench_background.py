"""Background segmentation per 640x360 frame: CPU cost of each backend and its mask quality
against exact ground truth, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/bench_background.py [--repeat 3] [--frames 150]

Clips (generated, exact figure masks): the street scene (static camera) and the billboard scene
(moving camera; its true planes are given to `compensate: plane`). Quality: IoU of the mask with the union of the true figure masks per frame
(street; frames before 30 excluded: every model is still learning), and for the billboard the
visible-poster IoU (poster minus mask vs poster minus figures: what placement needs). Time: the
stage thread's CPU time per `process` call (time.thread_time; robust to the shared, loaded box).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.frame import Frame, Plane  # noqa: E402
from pipeline.params import build_or_raise  # noqa: E402
from pipeline.stage import SourceInfo, StageContext  # noqa: E402
from stages.background import BackgroundStage  # noqa: E402
from stages.compositing.evaluate import iou, quad_mask  # noqa: E402

STATIC = [("torch (default, scale 0.5)", {}), ("torch, scale 1.0", {"scale": 1.0}),
          ("torch, no shadows", {"shadows": False}), ("mog2 (scale 0.5)", {"backend": "mog2"}),
          ("knn (scale 0.5)", {"backend": "knn"})]
MOVING = [("torch, compensate: plane (true planes)", {"compensate": "plane", "shadows": False}),
          ("torch, compensate: homography", {"compensate": "homography", "shadows": False}),
          ("torch, compensate: homography, slack", {"compensate": "homography", "shadows": False, "slack": True}),
          ("torch, compensate: none", {"shadows": False}), ("mog2 (cannot compensate)", {"backend": "mog2"})]


def street(n: int):
    import scenes

    for img, truth in scenes.render_street(0, (640, 360), n, noise=2.0, masks=True):
        gt = np.zeros(img.shape[:2], bool)
        for x0, y0, patch in truth.masks:
            h, w = patch.shape
            ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(640, x0 + w), min(360, y0 + h)
            if ix1 > ix0 and iy1 > iy0:
                gt[iy0:iy1, ix0:ix1] |= patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        yield img, gt, None, None


def billboard(n: int):
    import scenes

    for img, truth in scenes.render_billboard(0, (640, 360), n, noise=2.0):
        yield img, truth["mask"], quad_mask(truth["corners"], 360, 640), Plane(truth["frame_from_ref"], truth["corners"], True, 1.0)


def run(raw: dict, clip) -> tuple[np.ndarray, np.ndarray]:
    stage = BackgroundStage(build_or_raise(BackgroundStage.Params, raw))
    stage.setup(StageContext("cpu", SourceInfo("bench", 640, 360, 30.0, False), threading.Event(), logging.getLogger("b")))
    times, scores = [], []
    for i, (img, gt, poster, plane) in enumerate(clip):
        frame = Frame(i, i / 30.0, img)
        frame.plane = plane
        t0 = time.thread_time()
        stage.process(frame)
        times.append(time.thread_time() - t0)
        mask = frame.mask != 0
        if poster is not None:
            scores.append(iou(poster & ~mask, poster & ~gt))
        elif i >= 30:
            scores.append(iou(mask, gt))
    stage.close()
    return np.array(times[1:]) * 1e3, np.array(scores)


def main(argv=None) -> int:
    import cv2
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    print(f"OpenCV {cv2.__version__}, torch {torch.__version__}, 1 thread, thread CPU time, best of {args.repeat}")
    print("| clip | variant | mean ms | p95 ms | IoU mean / min |")
    print("| --- | --- | --- | --- | --- |")
    for name, frames, variants in (("street 640x360 (static camera), mask vs figures", list(street(args.frames)), STATIC),
                                   ("billboard 640x360 (moving camera), visible poster", list(billboard(args.frames)), MOVING)):
        best = {}
        for _ in range(args.repeat):
            for vname, raw in variants:
                ms, scores = run(raw, frames)
                if vname not in best or ms.mean() < best[vname][0].mean():
                    best[vname] = (ms, scores)
        for vname, (ms, scores) in best.items():
            print(f"| {name} | {vname} | {ms.mean():.2f} | {np.percentile(ms, 95):.2f} | "
                  f"{scores.mean():.3f} / {scores.min():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
