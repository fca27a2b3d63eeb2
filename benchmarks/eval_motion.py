"""Quality of the default demo's motion boxes and tracks on generated street scenes with exact truth.

    python benchmarks/eval_motion.py [--scene sample_videos/street.mp4 ...] [--seeds 1000-1004]
        [--clips DIR] [--cache DIR] [--variant NAME=KEY=VALUE,KEY=VALUE ...] [--json FILE]

Each scene goes through the `background` stage as configs/default.yaml sets it (shadows off), once:
its masks are cached (packed bits, --cache), so variants of the motion and track stages compare on
the very same masks. Per variant: `motion` -> `track` (default.yaml's max_age 10, min_hits 3), with
its overrides (`motion.split_wide=true`, `track.mask_split=true`, ...).

Scored over frames 31-300 (1-based; the background model learns in the first second), against the
generator's boxes clipped to the image:
- detection: the motion boxes matched one-to-one (Hungarian, IoU >= 0.5) to all true boxes; a true
  box with visibility >= 0.5 is a positive (matched: TP, else FN); a box matched to a figure that
  is mostly hidden (visibility < 0.5) is neither right nor wrong; other boxes are FP;
- tracking: py-motmetrics MOTA, IDF1, id switches of the track stage's output, the same rule for
  mostly hidden figures (a track matched to one is left out, as MOT17 treats its ignored boxes).
Scenes from --seeds are written with `vidpipe generate street --seed N` into --clips first.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST = 30  # 0-based first scored frame (frame 31 in MOT numbering)


def parse_overrides(text: str) -> dict:
    """'motion.split_wide=true,track.mask_split=1' -> {'motion': {...}, 'track': {...}}."""
    import yaml

    out: dict = {"motion": {}, "track": {}}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        stage, _, name = key.partition(".")
        out[stage][name] = yaml.safe_load(value)
    return out


def context(w: int, h: int, fps: float):
    from pipeline.stage import SourceInfo, StageContext

    return StageContext("cpu", SourceInfo("eval", w, h, fps, False), threading.Event(), logging.getLogger("eval"))


def make(name: str, raw: dict):
    from pipeline.params import build_or_raise
    from pipeline.registry import stage_registry

    cls = stage_registry().get(name)
    return cls(build_or_raise(cls.Params, raw, name))


def scene_masks(video: Path, cache: Path) -> np.ndarray:
    """(T,H,W) bool foreground masks of the background stage (default.yaml's settings), cached."""
    import av

    from pipeline.frame import Frame

    key = cache / f"{video.stem}_{video.stat().st_size}.npz"
    if key.is_file():
        z = np.load(key)
        return np.unpackbits(z["bits"], axis=-1, count=int(z["w"])).astype(bool)
    bg = make("background", {"shadows": False})
    masks = []
    with av.open(str(video)) as container:
        for t, f in enumerate(container.decode(video=0)):
            img = f.to_ndarray(format="bgr24")
            if t == 0:
                bg.setup(context(img.shape[1], img.shape[0], 30.0))
            frame = bg.process(Frame(t, t / 30.0, img))
            m = frame.mask
            m = m.cpu().numpy() if hasattr(m, "cpu") else np.asarray(m)
            masks.append(m > 0)
    bg.close()
    masks = np.stack(masks)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(key, bits=np.packbits(masks, axis=-1), w=masks.shape[-1])
    return masks


def split_truth(truth, boxes: np.ndarray, min_vis: float = 0.5):
    """Match boxes to all true boxes; -> (positives' ids (P,), their boxes (P,4), the rows of `boxes`
    that are not matched to a mostly hidden figure, detection counts (tp, fp, fn))."""
    from stages.activities.dataset import match_boxes

    gt_of = match_boxes(truth.boxes_clipped, boxes, 0.5)
    vis = truth.visibility >= min_vis
    ignored = set(gt_of[(~vis) & (gt_of >= 0)].tolist())
    keep = np.array([i for i in range(len(boxes)) if i not in ignored], np.int64)
    tp = int(((gt_of >= 0) & vis).sum())
    fp = len(boxes) - int((gt_of >= 0).sum())
    fn = int(vis.sum()) - tp
    return truth.ids[vis], truth.boxes_clipped[vis], keep, (tp, fp, fn)


def run_variant(truth, masks: np.ndarray, overrides: dict) -> dict:
    """Motion -> track over the cached masks; detection and MOT scores, and ms per frame."""
    import motmetrics as mm

    from pipeline.frame import Frame
    from stages.activities.dataset import iou_matrix
    from stages.tracking.evaluate import numpy2_shim

    motion = make("motion", overrides["motion"])
    track = make("track", {"max_age": 10, "min_hits": 3} | overrides["track"])
    h, w = masks.shape[1:]
    ctx = context(w, h, truth.fps)
    motion.setup(ctx)
    track.setup(ctx)
    det = np.zeros(3, np.int64)
    acc = mm.MOTAccumulator(auto_id=True)
    blank = np.zeros((h, w, 3), np.uint8)
    seconds = 0.0
    n_boxes = 0
    for t in range(len(masks)):
        frame = Frame(t, t / truth.fps, blank)
        frame.mask = masks[t].view(np.uint8)
        t0 = time.perf_counter()
        frame = motion.process(frame)
        frame = track.process(frame)
        seconds += time.perf_counter() - t0
        boxes = track.last_detections.xyxy   # what the tracker matched: the motion boxes, split if on
        if t < FIRST:
            continue
        tr = truth.frames[t]
        _, _, _, counts = split_truth(tr, boxes)
        det += counts
        n_boxes += len(boxes)
        tracks = frame.detections
        gt_ids, gt_boxes, keep, _ = split_truth(tr, tracks.xyxy)
        tb = tracks.xyxy[keep]
        dist = 1.0 - iou_matrix(gt_boxes, tb)
        dist[dist > 0.5] = np.nan
        acc.update(gt_ids.tolist(), tracks.track_id[keep].tolist(), dist)
    motion.close()
    track.close()
    with numpy2_shim():
        s = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "num_false_positives",
                                                      "num_misses"], name="x")
    tp, fp, fn = det.tolist()
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "tp": tp, "fp": fp, "fn": fn,
            "mota": float(s["mota"].iloc[0]), "idf1": float(s["idf1"].iloc[0]),
            "ids": int(s["num_switches"].iloc[0]), "ms": 1000 * seconds / len(masks)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", action="append", default=[], help="a street scene on disk (.mp4 with .json, .gt.txt)")
    ap.add_argument("--seeds", default="", help="also generate and score these seeds, e.g. 1000-1004")
    ap.add_argument("--clips", default="/tmp/vidpipe_motion_eval/clips", help="where generated scenes go")
    ap.add_argument("--cache", default="/tmp/vidpipe_motion_eval/masks", help="where background masks are cached")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDES",
                    help="e.g. split=motion.split_wide=true (the baseline 'off' is always run first)")
    ap.add_argument("--json", help="write all numbers here")
    args = ap.parse_args(argv)

    import scenes
    from stages.activities.evaluate import parse_seeds

    paths = [Path(s) for s in args.scene]
    for seed in parse_seeds(args.seeds) if args.seeds else []:
        out = Path(args.clips) / f"street_{seed}.mp4"
        if not out.is_file():
            subprocess.run([sys.executable, "-m", "scenes.cli", "street", "--seed", str(seed), "--out",
                            str(out.parent), "--name", out.stem], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        paths.append(out)
    variants = [("off", parse_overrides(""))]
    for v in args.variant:
        name, _, text = v.partition("=")
        variants.append((name, parse_overrides(text)))
    results: dict = {}
    for path in paths:
        truth = scenes.load_street(path)
        masks = scene_masks(path.with_suffix(".mp4"), Path(args.cache))
        for name, ov in variants:
            r = run_variant(truth, masks, ov)
            results.setdefault(name, {})[path.stem] = r
            print(f"{path.stem:<14}{name:<14} P {r['precision']:.3f} R {r['recall']:.3f} MOTA {100 * r['mota']:6.1f} "
                  f"IDF1 {100 * r['idf1']:5.1f} IDs {r['ids']:3d}  {r['ms']:.2f} ms/frame", flush=True)
    print(f"\n{'variant':<14}{'P':>7}{'R':>7}{'MOTA':>7}{'IDF1':>7}{'IDs':>6}   (mean over {len(paths)} scenes)")
    for name, per in results.items():
        m = {k: float(np.mean([r[k] for r in per.values()])) for k in ("precision", "recall", "mota", "idf1", "ids")}
        print(f"{name:<14}{m['precision']:>7.3f}{m['recall']:>7.3f}{100 * m['mota']:>7.1f}{100 * m['idf1']:>7.1f}"
              f"{m['ids']:>6.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
