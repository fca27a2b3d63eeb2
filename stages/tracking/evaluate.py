"""Run the tracker on every sequence of a folder in MOT15 layout, write MOT files and score them.

    vidpipe eval mot ROOT --out DIR [--set key=value ...] [--seq NAME ...] [--json FILE]
    python -m stages.tracking.evaluate ROOT --out DIR ...

For every ROOT/<SEQ>/det/det.txt the `track` stage's tracker (its params from --set, e.g.
`--set algorithm=bytetrack --set max_age=30`) runs over frames 1..seqLength (seqinfo.ini, else the
last frame of det.txt), called every frame, also those with no detections. It writes
DIR/<SEQ>.txt: `frame,id,x,y,w,h,score,-1,-1,-1`, 1-based frames, boxes in det.txt's pixels, so
anyone can score them with their own tools. Sequences with ROOT/<SEQ>/gt/gt.txt are scored with
py-motmetrics the standard MOT15 way: gt rows with 0 in column 7 are ignored, a track box matches
a gt box when IoU >= 0.5, and MOTP is the mean IoU of the matches in percent (as the MOTChallenge
devkit prints it). Printed per sequence and overall: MOTA, IDF1, IDs, FP, FN, MOTP, recall,
precision and tracker-only frames/s (time inside the tracker's update, nothing else).
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError, PipelineError
from pipeline.frame import Detections
from pipeline.mot_format import read_mot, write_mot
from pipeline.params import build
from stages.track import TrackParams, build_tracker

METRICS = ("mota", "idf1", "num_switches", "num_false_positives", "num_misses", "motp", "recall", "precision")


def parse_settings(items) -> TrackParams:
    """['key=value', ...] -> the track stage's params (values read as YAML); ConfigError naming --set."""
    import yaml

    raw = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. max_age=3")
        try:
            raw[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raw[key.strip()] = value
    errors: list[str] = []
    params = build(TrackParams, raw, "", errors)
    if errors:
        raise ConfigError([f"--set {line}" for line in errors])
    return params


def find_sequences(root: Path, names=None) -> list[Path]:
    """Sequence folders under root that have det/det.txt, sorted by name (only `names` if given)."""
    root = Path(root)
    if not root.is_dir():
        raise PipelineError(f"eval mot: {root} is not a folder")
    seqs = sorted(p for p in root.iterdir() if (p / "det" / "det.txt").is_file())
    if names:
        missing = sorted(set(names) - {p.name for p in seqs})
        if missing:
            raise PipelineError(f"eval mot: no det/det.txt for {', '.join(missing)} under {root}")
        seqs = [p for p in seqs if p.name in set(names)]
    if not seqs:
        raise PipelineError(f"eval mot: no <SEQ>/det/det.txt under {root}")
    return seqs


def sequence_length(seq: Path, dets: dict[int, Detections]) -> int:
    """Frames in the sequence: seqinfo.ini's seqLength when present, else the last det frame."""
    info = seq / "seqinfo.ini"
    last = max(dets, default=-1) + 1
    if info.is_file():
        cp = configparser.ConfigParser()
        cp.read(info)
        if cp.has_option("Sequence", "seqLength"):
            return max(last, cp.getint("Sequence", "seqLength"))
    return last


def track_sequence(tracker, dets: dict[int, Detections], n_frames: int) -> tuple[dict[int, Detections], float]:
    """Run the tracker on frames 0..n_frames-1 -> ({frame: tracks}, seconds inside update())."""
    tracker.reset()
    empty, out, seconds = Detections.empty(), {}, 0.0
    for index in range(n_frames):
        d = dets.get(index, empty)
        t0 = time.perf_counter()
        res = tracker.update(d.xyxy, d.score, d.class_id)
        seconds += time.perf_counter() - t0
        if len(res):
            out[index] = d[res.det_index].replace(xyxy=res.xyxy.astype(np.float32), track_id=res.track_id)
    return out, seconds


@contextlib.contextmanager
def numpy2_shim():
    """motmetrics 1.4.0 calls np.asfarray, removed in NumPy 2: provide it only while scoring."""
    added = False
    try:
        np.asfarray
    except AttributeError:
        np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
        added = True
    try:
        yield
    finally:
        if added:
            del np.asfarray


def score(pairs: list[tuple[str, Path, Path]]):
    """[(name, gt.txt, result.txt)] -> motmetrics summary DataFrame (rows: names + OVERALL)."""
    import motmetrics as mm

    with numpy2_shim(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Operation with tuple is deprecated")  # motmetrics on pandas 3
        accs = []
        for _, gt_path, res_path in pairs:
            gt = mm.io.loadtxt(str(gt_path), fmt="mot15-2D", min_confidence=1)
            res = mm.io.loadtxt(str(res_path), fmt="mot15-2D")
            accs.append(mm.utils.compare_to_groundtruth(gt, res, "iou", distth=0.5))
        mh = mm.metrics.create()
        return mh.compute_many(accs, names=[p[0] for p in pairs], metrics=list(METRICS),
                               generate_overall=len(pairs) > 1)


def evaluate(root, out_dir, params: TrackParams | None = None, names=None) -> dict:
    """Track every sequence, write out_dir/<SEQ>.txt, score those with gt.

    Returns {"sequences": {name: {"frames", "seconds", "fps", metrics...}}, "overall": {...}}; metrics
    in percent for mota, idf1, motp, recall, precision; counts for the rest. Overall metrics cover
    the scored sequences, overall frames/s all of them. Without motmetrics the metrics are absent
    and "scored" is False.
    """
    params = params or TrackParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracker = build_tracker(params)
    rows, pairs = {}, []
    for seq in find_sequences(Path(root), names):
        dets = read_mot(seq / "det" / "det.txt")
        n_frames = sequence_length(seq, dets)
        tracks, seconds = track_sequence(tracker, dets, n_frames)
        write_mot(out_dir / f"{seq.name}.txt", tracks)
        rows[seq.name] = {"frames": n_frames, "seconds": seconds, "fps": n_frames / max(seconds, 1e-12)}
        if (seq / "gt" / "gt.txt").is_file():
            pairs.append((seq.name, seq / "gt" / "gt.txt", out_dir / f"{seq.name}.txt"))
    frames = sum(r["frames"] for r in rows.values())
    seconds = sum(r["seconds"] for r in rows.values())
    overall = {"frames": frames, "seconds": seconds, "fps": frames / max(seconds, 1e-12)}
    result = {"sequences": rows, "overall": overall, "scored": False, "params": vars(params)}
    if pairs:
        try:
            summary = score(pairs)
        except ImportError:
            return result
        result["scored"] = True
        for name, row in summary.iterrows():
            values = {k: float(row[k]) for k in METRICS}
            for k in ("mota", "idf1", "recall", "precision"):
                values[k] *= 100.0
            values["motp"] = (1.0 - values["motp"]) * 100.0
            (overall if name == "OVERALL" else rows[name]).update(values)
        if len(pairs) == 1:
            overall.update({k: rows[pairs[0][0]][k] for k in METRICS})
    return result


def format_table(result: dict) -> str:
    head = f"{'sequence':<16}{'frames':>7}{'MOTA':>7}{'IDF1':>7}{'IDs':>5}{'FP':>6}{'FN':>6}{'MOTP':>7}{'Rcll':>7}{'Prcn':>7}{'track fps':>11}"
    lines = [head, "-" * len(head)]

    def line(name, r):
        if "mota" in r:
            m = (f"{r['mota']:>7.1f}{r['idf1']:>7.1f}{int(r['num_switches']):>5}{int(r['num_false_positives']):>6}"
                 f"{int(r['num_misses']):>6}{r['motp']:>7.1f}{r['recall']:>7.1f}{r['precision']:>7.1f}")
        else:
            m = f"{'-':>7}{'-':>7}{'-':>5}{'-':>6}{'-':>6}{'-':>7}{'-':>7}{'-':>7}"
        return f"{name:<16}{r['frames']:>7}{m}{r['fps']:>11.0f}"

    lines += [line(name, r) for name, r in result["sequences"].items()]
    lines.append(line("OVERALL", result["overall"]))
    scored = sum("mota" in r for r in result["sequences"].values())
    if 0 < scored < len(result["sequences"]):
        lines.append(f"-: no gt/gt.txt; OVERALL metrics are over the {scored} scored sequence{'s' * (scored != 1)}, "
                     f"frames and fps over all")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="folder of sequences: <SEQ>/det/det.txt, optional <SEQ>/gt/gt.txt")
    parser.add_argument("--out", required=True, metavar="DIR", help="where <SEQ>.txt results are written")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a track stage param, e.g. algorithm=bytetrack, max_age=30 (repeatable)")
    parser.add_argument("--seq", action="append", default=[], metavar="NAME", help="only this sequence (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")


def run(args) -> int:
    params = parse_settings(args.set)
    result = evaluate(args.root, args.out, params, args.seq or None)
    print(format_table(result))
    n = len(result["sequences"])
    print(f"wrote {n} result file{'s' * (n != 1)} to {args.out}")
    if not result["scored"] and any("mota" not in r for r in result["sequences"].values()):
        has_gt = any((Path(args.root) / s / "gt" / "gt.txt").is_file() for s in result["sequences"])
        if has_gt:
            print("metrics skipped: motmetrics is not installed (pip install motmetrics==1.4.0 pandas)", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def main(argv=None) -> int:
    from pipeline.cli import module_main

    return module_main("python -m stages.tracking.evaluate", __doc__, configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())
