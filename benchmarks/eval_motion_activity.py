"""Activity accuracy (or training) through a pipeline config's chain with any of its stages' params
changed: `vidpipe eval activity --config FILE` / `vidpipe train activity --config FILE`, plus
`--set` lines in the config's own syntax for every stage (the CLI's --set reaches the activity
stage only), e.g. the demo without the track split:

    python benchmarks/eval_motion_activity.py --config configs/default.yaml --seeds 1000-1004 \
        --set stages.track.split=false [--set stages.motion.split_ratio=null] [--weights W] [--iou 0.4]
    python benchmarks/eval_motion_activity.py --config configs/default.yaml --train OUT.pt --seeds 0-35 \
        --set stages.track.max_age=1

(Before `--config` existed this script patched the evaluator's chain builder at run time.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from pipeline.cli import guard

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="a config override, e.g. stages.track.split=false or stages[4].hysteresis_k=4")
    ap.add_argument("--seeds", default="1000-1004")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--detector", choices=("gt",), help="gt: truth boxes into the config's track/flow/activity")
    ap.add_argument("--classifier", choices=("rules", "temporal"), help="default: the config's")
    ap.add_argument("--weights", help="default: the config's")
    ap.add_argument("--train", metavar="OUT", help="train the temporal model on --seeds instead (< 1000)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--iou", type=float, default=0.5)
    args = ap.parse_args(argv)
    return guard(lambda: run(args))


def run(args) -> int:
    from dataclasses import replace

    import stages.activities.evaluate as ev
    from stages.activities.dataset import SceneSpec, load_chain

    chain = load_chain(args.config, args.set)
    detector = args.detector or "config"
    print(f"chain: {chain.describe(detector)} ({', '.join(args.set) or 'as in ' + args.config})", flush=True)
    if args.train:
        import stages.activities.train as tr
        from stages.activities import LABELS
        from stages.activities.features import FEATURES
        from stages.activities.temporal import save_weights

        seeds = ev.parse_seeds(args.seeds)
        if any(s >= tr.EVAL_SEED_MIN for s in seeds):
            from pipeline.errors import ConfigError

            raise ConfigError(f"--seeds: seeds >= {tr.EVAL_SEED_MIN} are reserved for evaluation")
        net = tr.train(tr.load_or_collect(seeds, args.frames, detector, None, chain=chain), epochs=args.epochs)
        save_weights(args.train, net.cpu(), LABELS, FEATURES)
        print(f"wrote {args.train}")
        return 0
    params = chain.activity
    if params is None or args.classifier or args.weights:
        from stages.activity import ActivityParams

        base = params or ActivityParams()
        params = replace(base, classifier=args.classifier or base.classifier, weights=args.weights or base.weights)
    r = ev.evaluate([SceneSpec(s, n_frames=args.frames) for s in ev.parse_seeds(args.seeds)], params, detector,
                    iou=args.iou, chain=chain,
                    progress=lambda k, s: print(f"{k}: accuracy {s['accuracy']:.3f} coverage {s['coverage']:.3f}",
                                                flush=True))
    print(f"OVERALL ({params.classifier}, {args.set or 'as configured'}): accuracy {r['accuracy']:.4f}, strict "
          f"{r['strict_accuracy']:.4f}, coverage {r['coverage']:.4f} ({r['counted']} of {r['visible']})")
    print(ev.format_confusion(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
