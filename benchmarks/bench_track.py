"""Tracker-only speed: the vectorized SortTracker / ByteTracker against a straightforward SORT
(one filterpy KalmanFilter object per track, the original sort.py way), on the same detections:
every MOT15 sequence in ../shared/data/mot15 (or --root). One run, ratios side by side.

    python benchmarks/bench_track.py [--root DIR] [--repeat 3]

`ReferenceSort` below is that straightforward implementation (written here, not copied: SORT's
structure and noise, filterpy per track, scipy's Hungarian); tests also use it as a behavioural
reference for SortTracker.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- the reference (SORT, per track)
# Re-implemented after the structure of abewley/sort's sort.py (same steps, same numpy calls for
# the per-frame bookkeeping, filterpy KalmanFilter per track), written here.
def _iou_batch(a, b):
    a, b = a[:, None, :], b[None, :, :]
    w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = w * h
    return inter / ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
                    + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)


def _to_z(box):
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2.0, box[1] + h / 2.0, w * h, w / float(h)]).reshape((4, 1))


def _to_box(x):
    w = np.sqrt(x[2] * x[3])
    h = x[2] / w
    return np.array([x[0] - w / 2.0, x[1] - h / 2.0, x[0] + w / 2.0, x[1] + h / 2.0]).reshape((1, 4))


class _KalmanBoxTracker:
    def __init__(self, box, track_id):
        kf = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = np.array([[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0],
                         [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]])
        kf.H = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]])
        kf.R[2:, 2:] *= 10.0
        kf.P[4:, 4:] *= 1000.0
        kf.P *= 10.0
        kf.Q[-1, -1] *= 0.01
        kf.Q[4:, 4:] *= 0.01
        kf.x[:4] = _to_z(box)
        self.kf, self.id, self.history = kf, track_id, []
        self.time_since_update = self.hits = self.hit_streak = self.age = 0

    def update(self, box):
        self.time_since_update = 0
        self.history = []
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(_to_z(box))

    def predict(self):
        if self.kf.x[6] + self.kf.x[2] <= 0:
            self.kf.x[6] *= 0.0
        self.kf.predict()
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        self.history.append(_to_box(self.kf.x))
        return self.history[-1]

    def get_state(self):
        return _to_box(self.kf.x)


def _associate(dets, trks, iou_threshold):
    if len(trks) == 0:
        return np.empty((0, 2), dtype=int), np.arange(len(dets)), np.empty((0, 5), dtype=int)
    iou = _iou_batch(dets, trks)
    if min(iou.shape) > 0:
        a = (iou > iou_threshold).astype(np.int32)
        if a.sum(1).max() == 1 and a.sum(0).max() == 1:
            matched = np.stack(np.where(a), axis=1)
        else:
            rows, cols = linear_sum_assignment(-iou)
            matched = np.array(list(zip(rows, cols)))
    else:
        matched = np.empty(shape=(0, 2))
    unmatched_d = [d for d, _ in enumerate(dets) if d not in matched[:, 0]]
    unmatched_t = [t for t, _ in enumerate(trks) if t not in matched[:, 1]]
    matches = []
    for m in matched:
        if iou[m[0], m[1]] < iou_threshold:
            unmatched_d.append(m[0])
            unmatched_t.append(m[1])
        else:
            matches.append(m.reshape(1, 2))
    matches = np.concatenate(matches, axis=0) if matches else np.empty((0, 2), dtype=int)
    return matches, np.array(unmatched_d), np.array(unmatched_t)


class ReferenceSort:
    """SORT, one filterpy KalmanFilter per track, ids per instance.
    update(dets (N,>=4) xyxy[, score]) -> (M,5) [x1, y1, x2, y2, id]."""

    def __init__(self, max_age=1, min_hits=3, iou_threshold=0.3):
        self.max_age, self.min_hits, self.iou_threshold = max_age, min_hits, iou_threshold
        self.trackers, self.frame_count, self.count = [], 0, 0

    def update(self, dets=np.empty((0, 5))):
        self.frame_count += 1
        trks = np.zeros((len(self.trackers), 5))
        to_del, ret = [], []
        for t, trk in enumerate(trks):
            pos = self.trackers[t].predict()[0]
            trk[:] = [pos[0], pos[1], pos[2], pos[3], 0]
            if np.any(np.isnan(pos)):
                to_del.append(t)
        trks = np.ma.compress_rows(np.ma.masked_invalid(trks))
        for t in reversed(to_del):
            self.trackers.pop(t)
        matched, unmatched_dets, _ = _associate(dets, trks, self.iou_threshold)
        for m in matched:
            self.trackers[m[1]].update(dets[m[0], :])
        for i in unmatched_dets:
            self.count += 1
            self.trackers.append(_KalmanBoxTracker(dets[i, :], self.count))
        i = len(self.trackers)
        for trk in reversed(self.trackers):
            d = trk.get_state()[0]
            if trk.time_since_update < 1 and (trk.hit_streak >= self.min_hits or self.frame_count <= self.min_hits):
                ret.append(np.concatenate((d, [trk.id])).reshape(1, -1))
            i -= 1
            if trk.time_since_update > self.max_age:
                self.trackers.pop(i)
        return np.concatenate(ret) if ret else np.empty((0, 5))


# ---------------------------------------------------------------- the benchmark
def load_sequences(root: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{name: [(boxes (N,4) xyxy float64, scores (N,)) per frame]} for every <SEQ>/det/det.txt."""
    import configparser

    out = {}
    for det in sorted(root.glob("*/det/det.txt")):
        rows = np.loadtxt(det, delimiter=",", ndmin=2)
        n = int(rows[:, 0].max()) if len(rows) else 0
        info = det.parent.parent / "seqinfo.ini"
        if info.is_file():
            cp = configparser.ConfigParser()
            cp.read(info)
            n = max(n, cp.getint("Sequence", "seqLength", fallback=n))
        frames = []
        for f in range(1, n + 1):
            r = rows[rows[:, 0] == f]
            frames.append((np.concatenate([r[:, 2:4], r[:, 2:4] + r[:, 4:6]], axis=1), r[:, 6].copy()))
        out[det.parent.parent.name] = frames
    return out


def _run_reference(frames, **kw):
    tracker = ReferenceSort(**kw)
    dets = [np.concatenate([b, s[:, None]], axis=1) for b, s in frames]   # SORT's (N,5) input
    t0 = time.perf_counter()
    for d in dets:
        tracker.update(d)
    return time.perf_counter() - t0


def _run_ours(cls, frames, **kw):
    tracker = cls(**kw)
    t0 = time.perf_counter()
    for boxes, scores in frames:
        tracker.update(boxes, scores)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    from stages.tracking.bytetrack import ByteTracker
    from stages.tracking.sort import SortTracker

    default_root = ROOT.parent / "shared" / "data" / "mot15"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=default_root, help=f"MOT15-layout folder (default {default_root})")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tracker, interleaved; the fastest counts")
    args = parser.parse_args(argv)
    seqs = load_sequences(args.root)
    if not seqs:
        print(f"no <SEQ>/det/det.txt under {args.root}", file=sys.stderr)
        return 1
    sort_defaults = dict(max_age=1, min_hits=3, iou_threshold=0.3)
    runners = {
        "reference: filterpy per track (SORT)": lambda fr: _run_reference(fr, **sort_defaults),
        "SortTracker (vectorized)": lambda fr: _run_ours(SortTracker, fr, **sort_defaults),
        "ByteTracker (vectorized, max_age 30)": lambda fr: _run_ours(ByteTracker, fr),
    }
    best = {name: {seq: float("inf") for seq in seqs} for name in runners}
    for _ in range(args.repeat):
        for seq, frames in seqs.items():
            for name, run in runners.items():
                best[name][seq] = min(best[name][seq], run(frames))
    n_frames = sum(len(f) for f in seqs.values())
    n_dets = sum(len(b) for f in seqs.values() for b, _ in f)
    ref_total = sum(best[next(iter(runners))].values())
    print(f"tracker-only, {len(seqs)} sequences, {n_frames} frames, {n_dets} detections, best of {args.repeat}")
    print(f"{'tracker':<40}{'seconds':>9}{'frames/s':>10}{'speed-up':>10}")
    for name in runners:
        total = sum(best[name].values())
        print(f"{name:<40}{total:>9.3f}{n_frames / total:>10.0f}{ref_total / total:>9.1f}x")
    print("\nframes/s per sequence")
    short = {name: name.split(" ")[0].rstrip(":") for name in runners}
    print(f"{'sequence':<16}{'frames':>7}{'dets/fr':>8}" + "".join(f"{short[n]:>14}" for n in runners))
    for seq, frames in seqs.items():
        per = len(frames)
        dets = sum(len(b) for b, _ in frames) / max(per, 1)
        print(f"{seq:<16}{per:>7}{dets:>8.1f}" + "".join(f"{per / best[n][seq]:>14.0f}" for n in runners))
    return 0


if __name__ == "__main__":
    sys.exit(main())
