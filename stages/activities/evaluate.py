"""Score the `activity` stage against the ground truth of generated street scenes.

    vidpipe eval activity [--seeds 1000-1009] [--scene DIR/street.mp4 ...] [--detector gt|motion|yolox]
                          [--classifier rules|temporal --weights W] [--set key=value ...] [--json FILE]
                          [--config configs/default.yaml]
    python -m stages.activities.evaluate ...

Each scene (rendered in memory from --seeds, or a generated scene on disk in the street format:
.mp4, .gt.txt, .activity.csv, .json) runs through boxes -> track -> flow -> activity (see
stages.activities.dataset), or with --config FILE through that pipeline config's own stages
(background, motion, detect, track, flow, activity: the ones it has, in its order, with its params;
`process:` ignored; --detector gt keeps the truth boxes in place of its box stages; --classifier,
--weights and --set refine its activity stage); every frame's tracks are matched one-to-one to the truth's boxes by IoU
(Hungarian, IoU >= --iou).

What "per-frame accuracy" counts: one sample per (frame, ground-truth figure) with visibility >=
--min-visibility (0.5) that is matched to a confirmed track (one the tracker reports), where the
track is at least --min-age seconds old (1.0: the stage's medium window has filled) and the
figure's true label started at least --settle seconds earlier (0.5: the short window holds the
current activity only). Accuracy = correct / counted; coverage = counted / all visible figures.
The strict accuracy (settle 0) is printed as well. Seeds >= 1000 are the evaluation seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import LABELS
from .dataset import EVAL_SEED_MIN, ChainConfig, SceneSpec, activity_index, build_stages, load_chain, run_scene


def parse_seeds(text: str) -> list[int]:
    """'1000-1004,1010' -> [1000, 1001, 1002, 1003, 1004, 1010]."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError:
            raise ValueError(f"seeds: expected e.g. 1000-1009,1020, got {text!r}") from None
    return out


class Scorer:
    """Accumulates samples over frames (see the module docstring for what is counted)."""

    def __init__(self, fps: float, min_visibility: float = 0.5, min_age: float = 1.0, settle: float = 0.5) -> None:
        self.fps, self.min_visibility, self.min_age, self.settle = fps, min_visibility, min_age, settle
        n = len(LABELS)
        self.confusion = np.zeros((n, n + 1), np.int64)   # last column: matched but no label
        self.strict = np.zeros(2, np.int64)               # correct, counted with settle 0
        self.visible = 0
        self.matched = 0
        self.since: dict = {}

    def add(self, result, scene_key=0) -> None:
        truth = result.truth
        lut = {name: i for i, name in enumerate(LABELS)}
        for g in range(len(truth)):
            fid, label = (scene_key, int(truth.ids[g])), truth.labels[g]
            last = self.since.get(fid)
            if last is None or last[0] != label:
                self.since[fid] = last = (label, result.index)
            if truth.visibility[g] < self.min_visibility or label not in lut:
                continue
            self.visible += 1
            p = int(result.gt_track[g])
            if p < 0:
                continue
            self.matched += 1
            if result.age[p] < self.min_age - 1e-9:
                continue
            pred = result.predicted[p]
            col = lut.get(pred, len(LABELS))
            self.strict += (int(col == lut[label]), 1)
            if (result.index - last[1]) / self.fps >= self.settle - 1e-9:
                self.confusion[lut[label], col] += 1

    def summary(self) -> dict:
        counted = int(self.confusion.sum())
        correct = int(np.trace(self.confusion[:, :len(LABELS)]))
        per_class = {LABELS[i]: round(float(self.confusion[i, i] / max(1, self.confusion[i].sum())), 4)
                     for i in range(len(LABELS))}
        return {"accuracy": round(correct / max(1, counted), 4), "counted": counted,
                "coverage": round(counted / max(1, self.visible), 4),
                "matched": round(self.matched / max(1, self.visible), 4), "visible": self.visible,
                "strict_accuracy": round(float(self.strict[0] / max(1, self.strict[1])), 4),
                "strict_counted": int(self.strict[1]), "per_class_recall": per_class,
                "labels": list(LABELS), "confusion": self.confusion.tolist()}


def format_confusion(summary: dict) -> str:
    labels = summary["labels"]
    head = "true \\ predicted".ljust(17) + "".join(f"{x[:9]:>10}" for x in labels + ["(none)"])
    rows = [head] + [f"{labels[i]:<17}" + "".join(f"{v:>10}" for v in row) for i, row in enumerate(summary["confusion"])]
    return "\n".join(rows)


def activity_params(classifier: str, weights: str | None, settings) -> object:
    import yaml

    from pipeline.errors import ConfigError
    from pipeline.params import build
    from stages.activity import ActivityParams

    raw = {"classifier": classifier, "weights": weights}
    for item in settings or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. hysteresis_k=4")
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    errors: list[str] = []
    params = build(ActivityParams, raw, "", errors)
    if errors:
        raise ConfigError([f"--set {line}" for line in errors])
    return params


def evaluate(specs, params, detector: str = "gt", *, iou: float = 0.5, min_visibility: float = 0.5,
             min_age: float = 1.0, settle: float = 0.5, progress=None, chain: ChainConfig | None = None) -> dict:
    """Run and score every scene; returns the summary (overall and per scene). `chain`: a pipeline
    config's stages (dataset.load_chain) instead of the built-in chain for `detector`."""
    total, per_scene = None, {}
    config = chain
    for spec in specs:
        chain = build_stages(detector, params, seed=spec.seed if isinstance(spec, SceneSpec) else 0, chain=config)
        fps = spec.fps if isinstance(spec, SceneSpec) else None
        scorer = None
        for result in run_scene(spec, chain, iou_min=iou):
            if scorer is None:
                fps = fps or result.fps
                scorer = Scorer(fps, min_visibility, min_age, settle)
                total = total or Scorer(fps, min_visibility, min_age, settle)
            scorer.add(result)
            total.add(result, str(spec))
        key = f"seed {spec.seed}" if isinstance(spec, SceneSpec) else str(spec)
        per_scene[key] = scorer.summary()
        if progress:
            progress(key, per_scene[key])
    out = total.summary() if total is not None else {}
    out["scenes"] = per_scene
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default=None, help=f"generate scenes from these seeds (evaluation seeds are >= "
                        f"{EVAL_SEED_MIN}; default 1000-1009 when no --scene)")
    parser.add_argument("--scene", action="append", default=[], metavar="PATH",
                        help="a generated street scene on disk (its .mp4 or .json; repeatable)")
    parser.add_argument("--frames", type=int, default=300, help="frames per generated scene")
    parser.add_argument("--size", default="640x360", help="generated scene size WxH")
    parser.add_argument("--config", metavar="FILE", help="run the stages of this pipeline config (background, "
                        "motion, detect, track, flow, activity: those it has, its order and params; process: "
                        "ignored) instead of the built-in chain; its activity stage's params are the ones scored")
    parser.add_argument("--detector", default=None, choices=("gt", "motion", "yolox"),
                        help="boxes: jittered ground truth, background+motion stages, or the detect stage "
                        "(default gt; with --config: the config's box stages, or gt for truth boxes into "
                        "the config's track/flow/activity)")
    parser.add_argument("--classifier", default=None, choices=("rules", "temporal"),
                        help="default rules, or the --config's activity stage's")
    parser.add_argument("--weights", help="temporal model weights (vidpipe train activity)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an activity stage param, e.g. hysteresis_k=4 or rules.walk_speed=0.4 (with --config: "
                        "on top of the config's activity stage)")
    parser.add_argument("--iou", type=float, default=0.5, help="least IoU to match a track to a figure")
    parser.add_argument("--min-visibility", type=float, default=0.5)
    parser.add_argument("--min-age", type=float, default=1.0, help="seconds a track must have been seen")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds after a true label change before "
                        "its frames count")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")


def scene_specs(args) -> list:
    from pipeline.errors import ConfigError

    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
        seeds = parse_seeds(args.seeds) if args.seeds else ([] if args.scene else list(range(1000, 1010)))
    except ValueError as exc:
        raise ConfigError(str(exc) if "seeds" in str(exc) else f"--size: expected WxH, got {args.size!r}") from None
    if args.frames < 1:
        raise ConfigError(f"--frames: expected >= 1, got {args.frames}")
    specs = [SceneSpec(s, (w, h), args.frames) for s in seeds]
    for path in args.scene:
        stem = Path(path)
        if not stem.with_suffix(".json").is_file() and not Path(str(stem) + ".json").is_file():
            raise ConfigError(f"--scene: no generated scene at {path} (expected its .json beside it)")
        specs.append(stem)
    return specs


def check_detector(detector: str | None, chain: ChainConfig | None) -> str:
    """The --detector to use: given, or gt without --config; with --config, None means the config's
    own box stages and motion/yolox must be what the config has."""
    from pipeline.errors import ConfigError

    if chain is None:
        return detector or "gt"
    has = {s.type for s in chain.specs}
    if detector == "motion" and "motion" not in has or detector == "yolox" and "detect" not in has:
        raise ConfigError(f"--detector {detector}: {chain.origin} has no "
                          f"{'motion' if detector == 'motion' else 'detect'} stage (its boxes: {chain.boxes}); "
                          f"leave --detector out to use the config's boxes, or give gt")
    return "gt" if detector == "gt" else "config"


def config_chain(path, classifier: str | None, weights: str | None, settings) -> tuple[ChainConfig, object]:
    """(the config's chain, the activity params to score): its activity stage's params with
    --classifier, --weights and --set applied as overrides of that stage (validated with the rest
    of the config), or, when it has no activity stage, the defaults with those flags."""
    from pipeline.errors import ConfigError

    index = activity_index(path)
    if index is None:
        chain = load_chain(path)
        return chain, activity_params(classifier or "rules", weights, settings)
    lines = [f"stages[{index}].{k}={v}" for k, v in (("classifier", classifier), ("weights", weights)) if v]
    for item in settings or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. hysteresis_k=4")
        lines.append(f"stages[{index}].{key.strip()}={value}")
    chain = load_chain(path, lines)
    return chain, chain.activity


def run(args) -> int:
    chain = None
    if getattr(args, "config", None):
        chain, params = config_chain(args.config, args.classifier, args.weights, args.set)
    else:
        params = activity_params(args.classifier or "rules", args.weights, args.set)
    detector = check_detector(args.detector, chain)
    specs = scene_specs(args)
    if chain is not None:
        print(f"chain ({chain.origin}): {chain.describe(detector)}; activity: {params.classifier}"
              f"{' ' + str(params.weights) if params.classifier == 'temporal' else ''}", flush=True)

    def show(key, s):
        print(f"{key}: accuracy {s['accuracy']:.3f} (strict {s['strict_accuracy']:.3f}) "
              f"coverage {s['coverage']:.3f} counted {s['counted']}", flush=True)

    result = evaluate(specs, params, detector, iou=args.iou, min_visibility=args.min_visibility,
                      min_age=args.min_age, settle=args.settle, progress=show, chain=chain)
    boxes = detector if chain is None else ("gt" if detector == "gt" else chain.boxes)
    print(f"OVERALL ({params.classifier}, detector {boxes}{', config ' + chain.origin if chain else ''}): accuracy {result['accuracy']:.4f}, "
          f"strict {result['strict_accuracy']:.4f}, coverage {result['coverage']:.4f} "
          f"({result['counted']} of {result['visible']} visible figure-frames)")
    print(format_confusion(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def main(argv=None) -> int:
    from pipeline.cli import module_main

    return module_main("python -m stages.activities.evaluate", __doc__, configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())
