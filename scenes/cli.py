"""Generate scenes with exact ground truth: street, billboard, flow, all, or the committed samples.

  vidpipe generate street --seed 1000 --size 640x360 --frames 300 --out eval/ [--noise 2] [--blur 3]
  vidpipe generate samples            # regenerate everything in sample_videos/ (fixed seeds)
  python -m scenes.cli ...            # the same without the vidpipe entry point
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

KINDS = ("street", "billboard", "flow", "all", "samples")

# The committed samples (sample_videos/): name -> (kind, keyword arguments). Seeds < 1000 are for
# samples, tests and tuning; seeds >= 1000 are reserved for evaluation.
SAMPLES = {
    "street": ("street", dict(seed=8, size=(640, 360), n_frames=300, noise=2.0, n_figures=10)),
    "billboard": ("billboard", dict(seed=11, size=(640, 360), n_frames=150, noise=2.0, crf=20)),
    "flow": ("flow", dict(seed=13, size=(320, 240), noise=1.0, kinds=("translate", "similarity", "object"),
                          clip_frames=0)),
}


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 640x360, got {text!r}") from None
    if w < 64 or h < 48 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"expected even width >= 64 and even height >= 48, got {text!r}")
    return w, h


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to generate ('samples' = all committed samples)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 1000 reserved for evaluation)")
    parser.add_argument("--size", type=_size, default=None, help="WxH (default 640x360; flow 320x240)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames (street 300, billboard 150; with 'flow' alone: the clip's frames, default 8)")
    parser.add_argument("--out", default=None, help="output folder (default: sample_videos/ for 'samples', else .)")
    parser.add_argument("--name", default=None, help="file stem (default: the kind)")
    parser.add_argument("--noise", type=float, default=2.0, help="Gaussian sensor noise sigma, grey levels (0 = none)")
    parser.add_argument("--blur", type=int, default=0, help="Gaussian blur kernel size, odd >= 3 (0 = none)")
    parser.add_argument("--figures", type=int, default=None, help="number of figures (street: 6-12 by seed)")
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality (lower = better, bigger)")


def _generate(kind: str, out: Path, name: str, **kw) -> str:
    if kind == "street":
        from .street import write_street

        meta = write_street(out, name, **kw)
        counts = "; ".join(f"{ln['name']} {ln['counts']}" for ln in meta["lines"])
        return f"{len(meta['figures'])} figures, lines: {counts}"
    if kind == "billboard":
        from .billboard import write_billboard

        write_billboard(out, name, **kw)
        return "poster corners, homographies, masks"
    if kind == "flow":
        from .flow import write_flow_set

        names = write_flow_set(out / name, **kw)
        return f"{len(names)} pairs/clips: {', '.join(names)}"
    raise ValueError(f"kind: expected street, billboard or flow, got {kind!r}")


def run(args) -> int:
    if args.frames is not None and args.frames < 1:
        print("error: --frames: expected >= 1", file=sys.stderr)
        return 2
    if args.kind == "samples":
        out = Path(args.out) if args.out else Path(__file__).resolve().parents[1] / "sample_videos"
        jobs = [(kind, name, dict(kw)) for name, (kind, kw) in SAMPLES.items()]
    else:
        out = Path(args.out or ".")
        kinds = ("street", "billboard", "flow") if args.kind == "all" else (args.kind,)
        jobs = []
        for kind in kinds:
            kw = dict(seed=args.seed, noise=args.noise)
            if args.size:
                kw["size"] = args.size
            if kind == "street":
                kw.update(blur=args.blur, n_figures=args.figures, crf=args.crf)
            if kind == "billboard":
                kw.update(blur=args.blur, crf=args.crf)
            if kind == "flow":
                kw.update(blur=args.blur)
            if args.frames and kind != "flow":
                kw["n_frames"] = args.frames
            if args.frames and kind == "flow" and args.kind == "flow":
                kw["clip_frames"] = args.frames
            name = args.name if args.name and len(kinds) == 1 else kind
            jobs.append((kind, name, kw))
    total = time.perf_counter()
    for kind, name, kw in jobs:
        t0 = time.perf_counter()
        try:
            info = _generate(kind, out, name, **kw)
        except ValueError as exc:
            print(f"error: {kind}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # an output folder that cannot be made or written
            print(f"error: {kind}: cannot write ({exc.strerror or exc}): {exc.filename or out}", file=sys.stderr)
            return 1
        print(f"{kind:9s} {out / name}  seed {kw['seed']}  {time.perf_counter() - t0:5.1f} s  {info}")
    print(f"total {time.perf_counter() - total:.1f} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenes.cli", description=__doc__.strip().split("\n\n")[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
