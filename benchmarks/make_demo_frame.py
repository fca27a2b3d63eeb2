"""The README's picture of the default demo: one annotated frame of `configs/default.yaml` on the
bundled street sample, taken from the real pipeline (the Python API's frame iterator, so every
stage ran on every frame before it; no sink writes anything).

    python benchmarks/make_demo_frame.py [--frame 280] [--width 640] [--out docs/images/demo_frame.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import cv2

    from pipeline import Pipeline

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--frame", type=int, default=280, help="0-based index of the frame to keep")
    parser.add_argument("--width", type=int, default=640, help="width of the PNG (height follows)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "demo_frame.png")
    args = parser.parse_args(argv)

    # run from the repository root so the config's relative paths resolve; no sinks
    import os

    os.chdir(ROOT)
    overrides = [f"source.max_frames={args.frame + 1}", "sinks=[]", "pipeline.device=cpu"]
    picture = None
    with Pipeline.from_yaml(args.config, overrides=overrides) as pipe:
        for frame in pipe.frames():
            if frame.index == args.frame:
                picture = frame.image
    if picture is None:
        print(f"error: the run ended before frame {args.frame}", file=sys.stderr)
        return 1
    h, w = picture.shape[:2]
    if w != args.width:
        picture = cv2.resize(picture, (args.width, round(h * args.width / w)), interpolation=cv2.INTER_AREA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} (frame {args.frame}, {picture.shape[1]}x{picture.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
