"""Score the planar tracker on a video: tracked corners per frame to CSV, errors against an offline
SIFT reference (and against exact ground truth with --gt).

    vidpipe eval planar VIDEO --corners x1,y1,x2,y2,x3,y3,x4,y4 --out FILE.csv [--gt BILLBOARD]

CSV: `frame,x1,y1,x2,y2,x3,y3,x4,y4,valid`, frames 0-based, corners clockwise from top-left
(empty coordinates before the reference frame). The offline reference: SIFT at full resolution on
every frame, matched (ratio 0.75) to the reference frame's SIFT keypoints inside the surface,
RANSAC (2 px) + least squares on the inliers, corners projected. Metrics: per-corner Euclidean
error in pixels, pooled over frames and corners (mean, median, p95, max); frames lost = frames
after the reference where the tracker said invalid; jitter = mean per-corner change of the error
from one frame to the next (px/frame, over consecutive valid frames); accel = mean |second
difference| of the corners (tracked vs truth).

Convention: corners (T,4,2) float64 px, NaN where unknown; valid (T,) bool; frames 0-based.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .features import Matcher, detect, make_detector
from .homography import find_homography, polygon_mask, project
from .tracker import PlanarTracker, TrackerConfig


def parse_corners(text: str) -> np.ndarray:
    """'x1,y1,...,x4,y4' -> (4,2) float64; ValueError naming the expected form."""
    try:
        values = [float(v) for v in text.replace(" ", ",").split(",") if v]
    except ValueError:
        values = []
    if len(values) != 8:
        raise ValueError(f"--corners: expected 8 numbers x1,y1,x2,y2,x3,y3,x4,y4, got {text!r}")
    return np.array(values, np.float64).reshape(4, 2)


def parse_settings(items: list[str]) -> TrackerConfig:
    """['key=value', ...] -> TrackerConfig (values parsed as YAML scalars); ValueError on mistakes."""
    import yaml

    known = {f.name: f for f in dataclasses.fields(TrackerConfig)}
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in known:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        value = yaml.safe_load(raw)
        default = getattr(TrackerConfig, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ValueError(f"--set {key}: expected {type(default).__name__}, got {raw!r}")
        values[key] = value
    return TrackerConfig(**values)


class SiftReference:
    """Offline reference: frame_from_ref by SIFT matching of each frame to the reference frame.

    Convention: grey (H,W) uint8 frames; corners (4,2) px in the reference frame."""

    def __init__(self, ref_gray: np.ndarray, corners: np.ndarray, threshold: float = 2.0) -> None:
        self.sift = make_detector("sift", 100000)
        self.matcher = Matcher("bf", binary=False, ratio=0.75)
        self.corners = np.asarray(corners, np.float64)
        self.threshold = threshold
        self.ref_xy, self.ref_desc = detect(self.sift, ref_gray, polygon_mask(ref_gray.shape, corners))

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """(4,2) corners in `gray`, NaN when no homography was found."""
        xy, desc = detect(self.sift, gray)
        qi, ti = self.matcher.match(desc, self.ref_desc)
        H, inl = find_homography(self.ref_xy[ti], xy[qi], self.threshold, "ransac", 0.999, 5000)
        if H is None or inl.sum() < 12:
            return np.full((4, 2), np.nan)
        return project(H, self.corners)


def read_frames(path: str, max_frames: int | None = None):
    """BGR frames of a video file, in order (PyAV; OpenCV's reader where PyAV is missing)."""
    try:
        import av
    except ImportError:
        cap = cv2.VideoCapture(str(path))
        i = 0
        while max_frames is None or i < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            i += 1
            yield frame
        cap.release()
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="bgr24")


def score(corners: np.ndarray, valid: np.ndarray, truth: np.ndarray, start: int = 0) -> dict:
    """Errors of tracked corners (T,4,2) against truth (T,4,2, NaN = unknown) from frame `start` on."""
    corners, truth, valid = np.asarray(corners, np.float64), np.asarray(truth, np.float64), np.asarray(valid, bool)
    idx = np.arange(len(corners)) >= start
    known = idx & np.isfinite(truth).all(axis=(1, 2))
    use = known & valid
    err = np.linalg.norm(corners - truth, axis=-1)[use]
    both = use[1:] & use[:-1]
    delta = np.diff(corners - truth, axis=0)[both]
    jitter = float(np.linalg.norm(delta, axis=-1).mean()) if len(delta) else float("nan")
    trip = use[2:] & use[1:-1] & use[:-2]
    acc_t = np.linalg.norm(np.diff(corners, 2, axis=0), axis=-1)[trip]
    acc_g = np.linalg.norm(np.diff(truth, 2, axis=0), axis=-1)[trip]
    out = {"frames": int(idx.sum()), "scored": int(use.sum()), "lost": int((idx & ~valid).sum()),
           "no_truth": int((idx & ~known).sum()), "jitter": jitter,
           "accel_tracked": float(acc_t.mean()) if len(acc_t) else float("nan"),
           "accel_truth": float(acc_g.mean()) if len(acc_g) else float("nan")}
    for name, fn in (("mean", np.mean), ("median", np.median), ("p95", lambda e: np.percentile(e, 95)), ("max", np.max)):
        out[name] = float(fn(err)) if len(err) else float("nan")
    return out


def write_csv(path, corners: np.ndarray, valid: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("frame,x1,y1,x2,y2,x3,y3,x4,y4,valid\n")
        for i, (c, v) in enumerate(zip(corners, valid)):
            xs = ",".join("" if not np.isfinite(x) else f"{x:.3f}" for x in np.asarray(c).ravel())
            f.write(f"{i},{xs},{int(bool(v))}\n")


def video_fps(path) -> float:
    """Nominal frame rate of a video file (30 when unknown)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(fps) if fps and 1 <= fps <= 1000 else 30.0


def evaluate(frames, corners: np.ndarray, config: TrackerConfig | None = None, reference_frame: int = 0,
             masks=None, sift_reference: bool = True, sift_every: int = 1, fps: float = 30.0) -> dict:
    """Track the surface through `frames` (BGR iterable); also the offline SIFT reference (on every
    `sift_every`-th frame, NaN on the others). Returns tracked (T,4,2), valid (T,), reference
    (T,4,2) or None, ms (per-frame tracker times) and the tracker's stats."""
    tracker = PlanarTracker(config or TrackerConfig())
    tracked, valid, ref, ms = [], [], [], []
    sift = None
    for i, bgr in enumerate(frames):
        mask = None if masks is None else masks[i]
        if mask is not None and not mask.any():
            mask = None
        if i < reference_frame:
            tracked.append(np.full((4, 2), np.nan))
            valid.append(False)
            ref.append(np.full((4, 2), np.nan))
            continue
        t0 = time.perf_counter()
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        result = tracker.start(gray, corners, mask) if i == reference_frame else tracker.update(gray, mask, 1.0 / fps)
        ms.append((time.perf_counter() - t0) * 1e3)
        tracked.append(result.corners if result.corners is not None else np.full((4, 2), np.nan))
        valid.append(result.valid)
        if sift_reference:
            if sift is None:
                sift = SiftReference(gray, corners)
                ref.append(np.asarray(corners, np.float64))
            elif (i - reference_frame) % sift_every == 0:
                ref.append(sift(gray))
            else:
                ref.append(np.full((4, 2), np.nan))
    return {"tracked": np.array(tracked, np.float64).reshape(-1, 4, 2), "valid": np.array(valid, bool),
            "reference": np.array(ref, np.float64).reshape(-1, 4, 2) if sift_reference else None,
            "ms": np.array(ms), "stats": dict(tracker.stats)}


def load_gt(spec: str):
    """(corners (T,4,2), masks (T,H,W) bool or None) of a generated billboard (name or path)."""
    path = Path(spec)
    if path.suffix == ".npz" and path.name.endswith(".corners.npz"):
        corners = np.load(path)["corners"]
        return np.asarray(corners, np.float64), None
    import scenes

    truth = scenes.load_billboard(spec)
    masks = [truth.mask(t) for t in range(len(truth.corners))] if hasattr(truth, "mask") else None
    return np.asarray(truth.corners, np.float64), masks


def _line(name: str, s: dict) -> str:
    return (f"{name:<14} scored {s['scored']}/{s['frames']}  lost {s['lost']}  error px: mean {s['mean']:.3f} "
            f"median {s['median']:.3f} p95 {s['p95']:.3f} max {s['max']:.3f}  jitter {s['jitter']:.3f} px/frame  "
            f"accel {s['accel_tracked']:.3f} px/frame^2 (the reference's own {s['accel_truth']:.3f})")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file")
    parser.add_argument("--corners", help="x1,y1,x2,y2,x3,y3,x4,y4: the surface in the reference frame, clockwise "
                                          "from top-left (with --gt: defaults to the ground truth's)")
    parser.add_argument("--out", help="CSV of tracked corners per frame")
    parser.add_argument("--gt", help="a generated billboard's ground truth (scenes name or path, or NAME.corners.npz)")
    parser.add_argument("--gt-masks", action="store_true", help="feed the ground-truth figure masks as the foreground mask")
    parser.add_argument("--reference-frame", type=int, default=0, help="frame the corners are given in (0-based)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--no-sift", action="store_true", help="skip the offline SIFT reference")
    parser.add_argument("--sift-every", type=int, default=1, help="compute the SIFT reference on every N-th frame only")
    parser.add_argument("--reference-out", help="CSV of the offline SIFT reference corners")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="tracker parameter (as in the planar_track stage), repeatable")


def run(args) -> int:
    try:
        config = parse_settings(args.set)
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames: expected >= 1, got {args.max_frames}")
        if args.reference_frame < 0:
            raise ValueError(f"--reference-frame: expected >= 0, got {args.reference_frame}")
        if args.max_frames is not None and args.reference_frame >= args.max_frames:
            raise ValueError(f"--reference-frame: expected < --max-frames ({args.max_frames}), got {args.reference_frame}")
        try:
            gt_corners, gt_masks = load_gt(args.gt) if args.gt else (None, None)
        except FileNotFoundError as exc:
            raise ValueError(f"--gt {args.gt}: no billboard ground truth there ({exc.filename or exc})") from None
        if gt_corners is not None and args.reference_frame >= len(gt_corners):
            raise ValueError(f"--reference-frame: the ground truth has {len(gt_corners)} frames, got {args.reference_frame}")
        if args.corners:
            corners = parse_corners(args.corners)
        elif gt_corners is not None:
            corners = gt_corners[args.reference_frame]
        else:
            raise ValueError("--corners: required without --gt")
        if not Path(args.video).is_file():
            raise ValueError(f"video not found: {args.video}")
        if args.sift_every < 1:
            raise ValueError(f"--sift-every: expected >= 1, got {args.sift_every}")
        if args.gt_masks and gt_masks is None:
            raise ValueError("--gt-masks: the ground truth has no masks")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = evaluate(read_frames(args.video, args.max_frames), corners, config, args.reference_frame,
                   gt_masks if args.gt_masks else None, not args.no_sift, args.sift_every, video_fps(args.video))
    if len(res["valid"]) <= args.reference_frame:
        print(f"error: --reference-frame {args.reference_frame}: the video has only {len(res['valid'])} frames",
              file=sys.stderr)
        return 2
    if args.out:
        write_csv(args.out, res["tracked"], res["valid"])
    if args.reference_out and res["reference"] is not None:
        write_csv(args.reference_out, res["reference"], np.isfinite(res["reference"]).all(axis=(1, 2)))
    n = len(res["valid"])
    print(f"planar eval: {args.video}, {n} frames, reference frame {args.reference_frame}, tracker {res['stats']}")
    if res["reference"] is not None:
        print(_line("vs SIFT ref", score(res["tracked"], res["valid"], res["reference"], args.reference_frame)))
    if gt_corners is not None:
        truth = gt_corners[:n]
        print(_line("vs GT", score(res["tracked"], res["valid"], truth, args.reference_frame)))
        if res["reference"] is not None:
            print(_line("SIFT ref vs GT", score(res["reference"], np.isfinite(res["reference"]).all(axis=(1, 2)), truth,
                                                args.reference_frame)))
    ms = res["ms"][1:] if len(res["ms"]) > 1 else res["ms"]
    if len(ms):
        print(f"tracker time per frame (incl. BGR->grey): mean {ms.mean():.2f} ms, median {np.median(ms):.2f}, "
              f"p95 {np.percentile(ms, 95):.2f}, max {ms.max():.2f}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.planar.evaluate", description=__doc__.split("\n\n")[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
