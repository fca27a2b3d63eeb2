"""GPU check for background segmentation and product placement on a lent CUDA machine: the
`background` stage (torch model, static and motion-compensated) and the `placement` stage (torch
grid_sample compositing) per frame at 640x360, 1280x720 and 1920x1080, the frames' device tensors
made before timing (as a GPU pipeline shares them), CUDA synchronised around every call; plus the
visible-ad IoU of a generated billboard scene run on the GPU. One compact table; well under 3 min.

    python3 benchmarks/gpu_placement.py [--frames 60]
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


def stage(cls, raw, device, w, h):
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo, StageContext

    s = cls(build_or_raise(cls.Params, raw, cls.type_name))
    s.setup(StageContext(device, SourceInfo("gpu", w, h, 30.0, False), threading.Event(), logging.getLogger("gpu")))
    return s


def time_stage(make, clip, device, feed):
    """Median and mean ms per frame of a stage over a clip (after 5 warm-up frames)."""
    import torch

    from pipeline.frame import Frame

    st = make()
    times = []
    for i, (img, truth) in enumerate(clip):
        frame = Frame(i, i / 30.0, img)
        feed(frame, truth)
        frame.image_tensor(device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        st.process(frame)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    st.close()
    ms = np.array(times[5:]) * 1e3
    return np.median(ms), ms.mean()


def main(argv=None) -> int:
    import torch

    import scenes
    from pipeline.frame import Plane
    from stages.background import BackgroundStage
    from stages.compositing.evaluate import evaluate_placement
    from stages.placement import PlacementStage

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "no GPU"
    print(f"torch {torch.__version__}, {name}; ms per frame, median / mean, after 5 warm-up frames")
    print("| size | device | background (static) | background (compensate: homography) | placement (torch) "
          "| placement, old edges (fill none, matte feather) |")
    print("| --- | --- | --- | --- | --- | --- |")

    def plane(frame, truth):
        frame.plane = Plane(truth["frame_from_ref"], truth["corners"], True, 1.0)
        frame.mask = truth["mask"].astype(np.uint8) * 255

    for w, h in ((640, 360), (1280, 720), (1920, 1080)):
        clip = list(scenes.render_billboard(0, (w, h), args.frames, noise=2.0))
        for device in ([dev, "cpu"] if (w, h) == (640, 360) and dev != "cpu" else [dev]):
            cells = []
            for make, feed in (
                (lambda: stage(BackgroundStage, {}, device, w, h), lambda f, t: None),
                (lambda: stage(BackgroundStage, {"compensate": "homography"}, device, w, h), lambda f, t: None),
                (lambda: stage(PlacementStage, {"backend": "torch", "image": str(ROOT / "configs/assets/ad.png")},
                               device, w, h), plane),
                (lambda: stage(PlacementStage, {"backend": "torch", "image": str(ROOT / "configs/assets/ad.png"),
                                                "fill": "none", "matte": "feather"}, device, w, h), plane),
            ):
                med, mean = time_stage(make, clip, device, feed)
                cells.append(f"{med:.2f} / {mean:.2f}")
            print(f"| {w}x{h} | {device} | " + " | ".join(cells) + " |")
    clip = list(scenes.render_billboard(0, (640, 360), 150, noise=2.0))
    result = evaluate_placement([c[0] for c in clip], [c[1] for c in clip], device=dev,
                                background={"compensate": "homography", "shadows": False},
                                placement={"backend": "torch"})
    print(f"visible-ad IoU on billboard seed 0 (640x360, 150 frames, true planes, {dev}): "
          f"mean {result['mean_iou']:.4f}, min {result['min_iou']:.4f}; rim: old surface {result['rim_old_px']:.3f} px, "
          f"ad over figures {result['rim_over_px']:.3f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
