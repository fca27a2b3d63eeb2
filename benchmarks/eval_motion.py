"""Quality of the default demo's motion boxes and tracks on generated street scenes with exact truth.

    python benchmarks/eval_motion.py [--scene sample_videos/street.mp4 ...] [--seeds 1000-1004]
        [--size 640x360,1280x720,1920x1080] [--frames 240] [--chain stage|config] [--config FILE]
        [--clips DIR] [--cache DIR] [--variant NAME=KEY=VALUE,KEY=VALUE ...] [--json FILE]

Each scene goes through the `background` stage as --config (configs/default.yaml) sets it (its
every key but `process`: shadows off, max_width 640, ...), once: its masks are cached (packed bits,
--cache, keyed by those settings), so variants of the motion and track stages compare on the very
same masks. Per variant: `motion` -> `track`, with its overrides (`motion.split_ratio=0.3`,
`track.split=true`, ...) on top of the baseline: `--chain stage` (default) the stage defaults with
default.yaml's max_age 10, min_hits 3 (variant 'off'); `--chain config` the config's own motion and
track settings (variant 'default': the demo's chain).

--size (one or more WxH) generates the seeds at each size (the same scene scaled: same figures,
same paths) and adds a table of means per size; without --size and --frames the seeds are the
generator's 640x360, 300-frame scenes (street_N.mp4), as before.

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
import hashlib
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


def config_stages(path: Path) -> dict:
    """{stage type: its settings} of a pipeline YAML (the first stage of each type; `type` and
    `process` left out)."""
    import yaml

    out: dict = {}
    for st in yaml.safe_load(Path(path).read_text())["stages"]:
        out.setdefault(st["type"], {k: v for k, v in st.items() if k not in ("type", "process")})
    return out


def background_settings(config: Path | None = None) -> dict:
    """The background stage's settings in `config` (default configs/default.yaml)."""
    return config_stages(config or ROOT / "configs" / "default.yaml").get("background", {"shadows": False})


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


def scene_masks(video: Path, cache: Path, settings: dict | None = None) -> np.ndarray:
    """(T,H,W) bool foreground masks of the background stage with `settings` (default:
    default.yaml's), cached under the video's name and size and the settings."""
    import av

    from pipeline.frame import Frame

    settings = background_settings() if settings is None else settings
    tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    key = cache / f"{video.stem}_{video.stat().st_size}_{tag}.npz"
    if key.is_file():
        z = np.load(key)
        return np.unpackbits(z["bits"], axis=-1, count=int(z["w"])).astype(bool)
    bg = make("background", settings)
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


def run_variant(truth, masks: np.ndarray, overrides: dict, base: dict | None = None) -> dict:
    """Motion -> track over the cached masks (`base` {"motion": ..., "track": ...} settings, default
    the stage defaults with max_age 10, min_hits 3, then `overrides`); detection and MOT scores,
    and motion+track ms per frame."""
    import motmetrics as mm

    from pipeline.frame import Frame
    from stages.activities.dataset import iou_matrix
    from stages.tracking.evaluate import numpy2_shim

    base = base or {"motion": {}, "track": {"max_age": 10, "min_hits": 3}}
    motion = make("motion", base["motion"] | overrides["motion"])
    track = make("track", base["track"] | overrides["track"])
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


def scene_path(seed: int, size: str | None, frames: int | None, clips: Path) -> Path:
    """A generated street scene (written first when missing): street_N.mp4 for the generator's
    default size and length, else street_N_WxH_T.mp4."""
    name = f"street_{seed}" if size is None and frames is None else f"street_{seed}_{size or '640x360'}_{frames or 300}"
    out = clips / f"{name}.mp4"
    if not out.is_file():
        cmd = [sys.executable, "-m", "scenes.cli", "street", "--seed", str(seed), "--out", str(clips), "--name", name]
        cmd += ["--size", size] if size else []
        cmd += ["--frames", str(frames)] if frames else []
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def mean_row(rows: list) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in ("precision", "recall", "mota", "idf1", "ids", "ms")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", action="append", default=[], help="a street scene on disk (.mp4 with .json, .gt.txt)")
    ap.add_argument("--seeds", default="", help="also generate and score these seeds, e.g. 1000-1004")
    ap.add_argument("--size", default="", help="generate the seeds at these sizes, e.g. 640x360,1280x720,1920x1080 "
                    "(default: the generator's 640x360)")
    ap.add_argument("--frames", type=int, default=None, help="frames per generated scene (default: the generator's 300)")
    ap.add_argument("--chain", choices=("stage", "config"), default="stage",
                    help="baseline motion/track settings: stage defaults (max_age 10, min_hits 3) or --config's")
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"),
                    help="pipeline YAML whose background (and, --chain config, motion and track) settings are used")
    ap.add_argument("--clips", default="/tmp/vidpipe_motion_eval/clips", help="where generated scenes go")
    ap.add_argument("--cache", default="/tmp/vidpipe_motion_eval/masks", help="where background masks are cached")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDES",
                    help="e.g. split=motion.split_ratio=0.3 (the baseline is always run first)")
    ap.add_argument("--json", help="write all numbers here")
    args = ap.parse_args(argv)

    import scenes
    from stages.activities.evaluate import parse_seeds

    conf = config_stages(Path(args.config))
    settings = conf.get("background", {"shadows": False})
    if args.chain == "config":
        base_name = "default"
        base = {"motion": conf.get("motion", {}), "track": conf.get("track", {})}
    else:
        base_name, base = "off", None
    sizes = [s.strip() for s in args.size.split(",") if s.strip()] or [None]
    clips = Path(args.clips)
    clips.mkdir(parents=True, exist_ok=True)
    paths = [(Path(s), None) for s in args.scene]
    for size in sizes:
        for seed in parse_seeds(args.seeds) if args.seeds else []:
            paths.append((scene_path(seed, size, args.frames, clips), size))
    variants = [(base_name, parse_overrides(""))]
    for v in args.variant:
        name, _, text = v.partition("=")
        variants.append((name, parse_overrides(text)))
    results: dict = {}
    by_size: dict = {}
    for path, size in paths:
        truth = scenes.load_street(path)
        masks = scene_masks(path.with_suffix(".mp4"), Path(args.cache), settings)
        for name, ov in variants:
            r = run_variant(truth, masks, ov, base)
            results.setdefault(name, {})[path.stem] = r
            by_size.setdefault((name, size or f"{masks.shape[2]}x{masks.shape[1]}"), []).append(r)
            print(f"{path.stem:<14} {name:<16} P {r['precision']:.3f} R {r['recall']:.3f} MOTA {100 * r['mota']:6.1f} "
                  f"IDF1 {100 * r['idf1']:5.1f} IDs {r['ids']:3d}  {r['ms']:.2f} ms/frame", flush=True)
    print(f"\n{'variant':<16}{'P':>7}{'R':>7}{'MOTA':>7}{'IDF1':>7}{'IDs':>6}   (mean over {len(paths)} scenes)")
    for name, per in results.items():
        m = mean_row(list(per.values()))
        print(f"{name:<16}{m['precision']:>7.3f}{m['recall']:>7.3f}{100 * m['mota']:>7.1f}{100 * m['idf1']:>7.1f}"
              f"{m['ids']:>6.1f}")
    if len({s for _, s in by_size}) > 1:
        print(f"\n{'variant':<16}{'size':<11}{'P':>7}{'R':>7}{'MOTA':>7}{'IDF1':>7}{'IDs':>6}{'ms':>7}"
              f"   (mean per size; ms: motion+track per frame)")
        for (name, size), rows in sorted(by_size.items(), key=lambda kv: (kv[0][0], int(kv[0][1].split("x")[0]))):
            m = mean_row(rows)
            print(f"{name:<16}{size:<11}{m['precision']:>7.3f}{m['recall']:>7.3f}{100 * m['mota']:>7.1f}"
                  f"{100 * m['idf1']:>7.1f}{m['ids']:>6.1f}{m['ms']:>7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
