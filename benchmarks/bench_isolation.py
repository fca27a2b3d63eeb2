"""What a worker stage (`process: true`) costs per frame to ship its frame: a stage that does
nothing, reading the picture only, or the picture, the foreground mask and a 1/4-scale flow field
(what planar_track and activity read), at 640x360 and 1080p. Each row runs four ways side by side
in one process: large arrays through shared-memory blocks (pipeline.shared_arrays), read in place
by a stage with Stage.input_views or copied out by one without; the picture in
shared memory and the mask and flow pickled (how it was before the mask and flow had blocks); and
everything pickled through the pipe (what a short /dev/shm falls back to).

    OMP_NUM_THREADS=1 python benchmarks/bench_isolation.py [--frames 300] [--repeats 3]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]   # the worker imports this module by name

from pipeline.frame import Frame  # noqa: E402
from pipeline.isolation import ProcessStage  # noqa: E402
from pipeline.stage import SourceInfo, Stage, StageContext  # noqa: E402


class PictureOnly(Stage):
    type_name = "picture_only"
    reads = frozenset({"image"})
    writes = frozenset({"plane"})

    def process(self, frame):
        return frame


class PictureMaskFlow(Stage):
    type_name = "picture_mask_flow"
    reads = frozenset({"image", "mask", "flow"})
    writes = frozenset({"plane"})

    def process(self, frame):
        return frame


class PictureOnlyViews(PictureOnly):
    """Stage.input_views: reads the arrays in the shared blocks, no copy in the worker."""

    input_views = True


class PictureMaskFlowViews(PictureMaskFlow):
    input_views = True


VIEWS = {PictureOnly: PictureOnlyViews, PictureMaskFlow: PictureMaskFlowViews}


def measure(cls, size, frames: int, mode: str) -> tuple[float, float]:
    """(wall ms, CPU ms of runner thread + worker) per frame; mode: shared, views (shared, and the
    stage reads them in place: Stage.input_views), picture (only the picture in shared memory) or
    pickled."""
    import pipeline.isolation as isolation
    w, h = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (h, w, 3), np.uint8)
    mask = (rng.random((h, w)) > 0.9).astype(np.uint8) * 255
    flow = rng.random((2, h // 4, w // 4)).astype(np.float32)
    stage = ProcessStage(VIEWS[cls] if mode == "views" else cls, name=cls.type_name)
    stage._arrays.inline = mode == "pickled"
    keep = isolation.take_large
    if mode == "picture":          # the runner side routes only the picture to a block
        isolation.take_large = lambda fields: {}
    stage.setup(StageContext("cpu", SourceInfo("bench", w, h, 30.0, False), threading.Event(),
                             logging.getLogger("bench")))
    try:
        def one(i):
            frame = Frame(i, i / 30, image)
            frame.mask, frame.flow = mask, flow
            stage.process(frame)

        for i in range(20):
            one(i)
        wall, cpu, worker = time.perf_counter(), time.thread_time(), stage.worker_cpu
        for i in range(frames):
            one(i)
        wall = time.perf_counter() - wall
        cpu = time.thread_time() - cpu + stage.worker_cpu - worker
    finally:
        stage.close()
        isolation.take_large = keep
    return 1e3 * wall / frames, 1e3 * cpu / frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3, help="best of")
    args = ap.parse_args()
    modes = ("views", "shared", "picture", "pickled")
    print("wall ms (CPU ms of the runner thread and the worker) per frame, best of", args.repeats)
    print(f"{'reads':<20} {'size':>9} {'shared, in place':>17} {'shared, copied':>15} {'picture-only':>15}"
          f" {'pickled':>15}")
    for cls, label in ((PictureOnly, "picture"), (PictureMaskFlow, "picture, mask, flow")):
        for size in ((640, 360), (1920, 1080)):
            best = {}
            for _ in range(args.repeats):
                for mode in modes:
                    got = measure(cls, size, args.frames, mode)
                    best[mode] = min(best.get(mode, got), got)
            cells = [f"{best[m][0]:.2f} ({best[m][1]:.2f})" for m in modes]
            print(f"{label:<20} {size[0]:>4}x{size[1]:<4} {cells[0]:>17} {cells[1]:>15} {cells[2]:>15} {cells[3]:>15}",
                  flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import bench_isolation  # the stage classes as bench_isolation.*, which a worker can import

    raise SystemExit(bench_isolation.main())
