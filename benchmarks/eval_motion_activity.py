"""Activity accuracy with motion boxes, the track stage's params given: what `vidpipe eval activity
--detector motion` prints, with e.g. `--track split=true` passed to its track stage and
`--motion split_ratio=0.3` to its motion stage.

    python benchmarks/eval_motion_activity.py --seeds 1000-1004 [--classifier temporal --weights W]
        [--track KEY=VALUE ...] [--motion KEY=VALUE ...] [--iou 0.4]
    python benchmarks/eval_motion_activity.py --train OUT.pt --seeds 0-35 [--track ...] [--motion ...]

--train: `vidpipe train activity --detector motion --seeds ... --out OUT.pt` with those stage params.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import yaml

    import stages.activities.evaluate as ev
    from stages.activities.dataset import SceneSpec, build_stages

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1000-1004")
    ap.add_argument("--classifier", default="rules", choices=("rules", "temporal"))
    ap.add_argument("--weights")
    ap.add_argument("--track", action="append", default=[], metavar="KEY=VALUE", help="a track stage param")
    ap.add_argument("--motion", action="append", default=[], metavar="KEY=VALUE", help="a motion stage param")
    ap.add_argument("--train", metavar="OUT", help="train the temporal model on --seeds instead (< 1000)")
    ap.add_argument("--iou", type=float, default=0.4)
    args = ap.parse_args(argv)
    track = {k: yaml.safe_load(v) for k, _, v in (t.partition("=") for t in args.track)}
    motion = {k: yaml.safe_load(v) for k, _, v in (t.partition("=") for t in args.motion)}

    def chain(*a, **kw):
        from pipeline.params import build_or_raise
        from stages.motion import MotionParams, MotionStage

        stages = build_stages(*a, **kw, track_params=track)
        return [MotionStage(build_or_raise(MotionParams, motion)) if getattr(st, "type_name", "") == "motion" else st
                for st in stages]

    ev.build_stages = chain
    if args.train:
        import stages.activities.train as tr

        tr.build_stages = chain
        return tr.run(argparse.Namespace(out=args.train, seeds=args.seeds, val_seeds="", frames=300, detector="motion",
                                         epochs=40, hidden=32, cache=None, device="cpu"))
    params = ev.activity_params(args.classifier, args.weights, [])
    specs = [SceneSpec(s) for s in ev.parse_seeds(args.seeds)]
    r = ev.evaluate(specs, params, "motion", iou=args.iou,
                    progress=lambda k, s: print(f"{k}: accuracy {s['accuracy']:.3f} coverage {s['coverage']:.3f}",
                                                flush=True))
    print(f"OVERALL ({args.classifier}, motion {motion}, track {track}): accuracy {r['accuracy']:.4f}, strict "
          f"{r['strict_accuracy']:.4f}, coverage {r['coverage']:.4f} ({r['counted']} of {r['visible']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
