"""The README's before/after pair for product placement: one frame of the generated billboard
sample (sample_videos/billboard.mp4) as filmed, and after planar_track -> background -> placement
(the chain of configs/placement.yaml, run up to that frame so that the trackers are warm).

    python benchmarks/make_placement_images.py [--frame 90] [--width 480] [--out docs/images]

Writes placement_before.png and placement_after.png (resized to --width, PNG).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.frame import Frame  # noqa: E402
from pipeline.params import build_or_raise  # noqa: E402
from pipeline.stage import SourceInfo, StageContext  # noqa: E402
from stages.background import BackgroundStage  # noqa: E402
from stages.placement import PlacementStage  # noqa: E402
from stages.planar_track import PlanarTrackStage  # noqa: E402


def main(argv=None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame", type=int, default=90)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "placement.yaml")
    args = parser.parse_args(argv)
    from stages.planar.evaluate import read_frames

    config = yaml.safe_load(args.config.read_text())
    params = {s["type"]: {k: v for k, v in s.items() if k != "type"} for s in config["stages"]}
    params["placement"]["image"] = str(ROOT / params["placement"]["image"])
    frames = list(read_frames(str(ROOT / config["source"]), args.frame + 1))
    h, w = frames[0].shape[:2]
    context = StageContext("cpu", SourceInfo("sample", w, h, 30.0, False), threading.Event(), logging.getLogger("images"))
    classes = {c.type_name: c for c in (BackgroundStage, PlanarTrackStage, PlacementStage)}
    chain = [classes[s["type"]](build_or_raise(classes[s["type"]].Params, params[s["type"]], s["type"]))
             for s in config["stages"] if s["type"] in classes]  # in the config's order
    for stage in chain:
        stage.setup(context)
    for i, img in enumerate(frames):
        frame = Frame(i, i / 30.0, img)
        for stage in chain:
            frame = stage.process(frame)
    for stage in chain:
        stage.close()
    args.out.mkdir(parents=True, exist_ok=True)
    size = (args.width, round(args.width * h / w))
    for name, img in (("before", frames[-1]), ("after", frame.image)):
        path = args.out / f"placement_{name}.png"
        cv2.imwrite(str(path), cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {path} ({size[0]}x{size[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
