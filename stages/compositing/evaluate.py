"""Evaluation of product placement against ground truth: where the ad is visible versus where it
should be (the surface minus whatever is in front of it), as an IoU per frame.

`evaluate_placement` runs the background and placement stages (and a tracker, or the ground-truth
planes) over any clip with truth, so it serves the tests, the benchmarks and
`python -m stages.compositing.evaluate` (a generated billboard scene).

Convention: quads (4,2) in frame pixels, pixel centres at integers, clockwise from top-left;
masks (H,W) bool; a pixel belongs to a quad when its centre lies inside.
"""
from __future__ import annotations

import argparse
from typing import Iterable

import numpy as np

from .geometry import inside_quad


def quad_mask(quad: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H,W) bool: pixels whose centre lies inside the convex quad."""
    ys, xs = np.mgrid[0:height, 0:width]
    return inside_quad(quad, xs.astype(np.float64), ys.astype(np.float64))


def visible_truth(quad: np.ndarray, figures: np.ndarray) -> np.ndarray:
    """Where the ad should be seen: the surface quad minus the figures in front. (H,W) bool."""
    return quad_mask(quad, *figures.shape) & ~np.asarray(figures, bool)


def drawn_region(coverage, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """(H,W) bool where the ad was drawn with opacity > threshold, from a placement stage's
    `last_coverage` ((x0,y0,x1,y1), (h,w) coverage: uint8 0..255, or float 0..1 numpy or torch) or
    None (nothing drawn)."""
    out = np.zeros((height, width), bool)
    if coverage is None:
        return out
    (x0, y0, x1, y1), cov = coverage
    cov = cov if isinstance(cov, np.ndarray) else cov.detach().cpu().numpy()
    out[y0:y1, x0:x1] = cov > (threshold * 255 if cov.dtype == np.uint8 else threshold)
    return out


def coverage_map(coverage, height: int, width: int) -> np.ndarray:
    """(H,W) float32 ad opacity in [0,1] from a placement stage's `last_coverage` (see drawn_region)."""
    out = np.zeros((height, width), np.float32)
    if coverage is None:
        return out
    (x0, y0, x1, y1), cov = coverage
    cov = cov if isinstance(cov, np.ndarray) else cov.detach().cpu().numpy()
    out[y0:y1, x0:x1] = cov.astype(np.float32) / (255.0 if cov.dtype == np.uint8 else 1.0)
    return out


def rim_errors(quad: np.ndarray, figures: np.ndarray, opacity: np.ndarray, reach: float = 6.0):
    """The rims where the ad meets what is in front of it: (old, over, outline), with `old` the
    old surface still showing around the figures (sum of 1 - opacity over surface pixels outside the
    figures, within `reach` px of them), `over` the ad drawn over the figures (sum of opacity over
    figure pixels on the surface within `reach` px of their outline) and `outline` the number of
    figure pixels on the surface that touch the background. old / outline and over / outline are
    rim widths in px. Convention: figures (H,W) bool, opacity (H,W) float in [0,1]."""
    import cv2

    surface = quad_mask(quad, *figures.shape)
    fig = np.asarray(figures, bool).astype(np.uint8)
    outside = cv2.distanceTransform(1 - fig, cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(fig, cv2.DIST_L2, 5)
    old_band = surface & (fig == 0) & (outside <= reach)
    over_band = surface & (fig == 1) & (inside <= reach)
    outline = surface & (fig == 1) & (cv2.erode(fig, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) == 0)
    return float((1.0 - opacity[old_band]).sum()), float(opacity[over_band].sum()), int(np.count_nonzero(outline))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def evaluate_placement(frames: Iterable, truths: Iterable[dict], *, background: dict | str | None = None,
                       placement: dict | None = None, tracker: dict | None = None, device: str = "cpu",
                       ad_path: str | None = None, skip: int = 0) -> dict:
    """Run background -> (planar_track | truth planes) -> placement over a clip and score the drawn
    region against `visible_truth` per frame.

    frames: BGR uint8 images; truths: dicts with `corners` (4,2), `frame_from_ref` (3,3), `mask`
    (H,W) bool figures (as scenes.render_billboard yields). background / placement / tracker: stage
    params as in YAML; background "truth" occludes with the true figure masks (the compositing's own
    upper bound), None with nothing; tracker None uses the true planes (else the tracker runs after
    the background stage, or before it when the background compensates with the plane).
    The ad defaults to an opaque generated one (so drawn region = surface, not the logo's shape).
    `skip` frames at the start are run but not scored. Returns mean/min/pooled IoU, per-frame IoUs,
    the frames where the plane was invalid and the rim widths around the figures in px (`rim_old_px`:
    old surface showing beside them, `rim_over_px`: ad drawn over them; see rim_errors)."""
    import logging
    import tempfile
    import threading
    from pathlib import Path

    import cv2

    from pipeline.frame import Frame, Plane
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo
    from pipeline.stage import StageContext
    from stages.background import BackgroundStage
    from stages.placement import PlacementStage

    from .ad import make_example_ad

    with tempfile.TemporaryDirectory() as tmp:
        if ad_path is None:
            ad_path = str(Path(tmp) / "opaque_ad.png")
            cv2.imwrite(ad_path, make_example_ad(320, 200, opaque=True))
        stages, tracker_stage = [], None
        if isinstance(background, dict):
            stages.append(BackgroundStage(build_or_raise(BackgroundStage.Params, background, "background")))
        if tracker is not None:
            from stages.planar_track import PlanarTrackStage

            tracker_stage = PlanarTrackStage(build_or_raise(PlanarTrackStage.Params, tracker, "tracker"))
            # compensate: plane needs the plane first (the tracker then runs without a mask)
            plane_first = isinstance(background, dict) and background.get("compensate") == "plane"
            stages.insert(0 if plane_first else len(stages), tracker_stage)
        place = PlacementStage(build_or_raise(PlacementStage.Params, {**(placement or {}), "image": ad_path}, "placement"))
        stages.append(place)
        per_frame, invalid, inter, union, context = [], [], 0, 0, None
        rims = np.zeros(3)
        try:
            for t, (image, truth) in enumerate(zip(frames, truths)):
                h, w = image.shape[:2]
                if context is None:
                    context = StageContext(device, SourceInfo("evaluation", w, h, 30.0, False), threading.Event(),
                                           logging.getLogger("vidpipe.evaluate"))
                    for stage in stages:
                        stage.setup(context)
                frame = Frame(t, t / 30.0, image)
                if tracker_stage is None:
                    frame.plane = Plane(np.asarray(truth["frame_from_ref"], np.float64),
                                        np.asarray(truth["corners"], np.float32), True, 1.0)
                if background == "truth":
                    frame.mask = np.asarray(truth["mask"], bool).astype(np.uint8) * 255
                for stage in stages:
                    frame = stage.process(frame)
                if frame.plane is None or not frame.plane.valid:
                    invalid.append(t)
                if t < skip:
                    continue
                truth_mask = visible_truth(truth["corners"], truth["mask"])
                drawn = drawn_region(place.last_coverage, h, w)
                per_frame.append(iou(drawn, truth_mask))
                inter += np.count_nonzero(drawn & truth_mask)
                union += np.count_nonzero(drawn | truth_mask)
                rims += rim_errors(truth["corners"], truth["mask"], coverage_map(place.last_coverage, h, w))
        finally:
            for stage in stages if context is not None else ():
                stage.close()
    scores = np.asarray(per_frame)
    return {"frames": len(per_frame), "mean_iou": float(scores.mean()) if len(scores) else float("nan"),
            "min_iou": float(scores.min()) if len(scores) else float("nan"),
            "pooled_iou": inter / union if union else 1.0, "per_frame": per_frame, "invalid_frames": invalid,
            "rim_old_px": rims[0] / rims[2] if rims[2] else 0.0, "rim_over_px": rims[1] / rims[2] if rims[2] else 0.0}


def _clip(args):
    """(frames, truths) of a written billboard scene (`--scene`) or a freshly generated one."""
    import scenes

    if args.scene:
        from stages.planar.evaluate import read_frames

        truth = scenes.load_billboard(args.scene)
        if truth.video_path is None:
            raise SystemExit(f"--scene {args.scene}: no video next to its ground truth")
        frames = list(read_frames(str(truth.video_path)))[: truth.n_frames]
        truths = [{"corners": truth.corners[t], "frame_from_ref": truth.homographies[t], "mask": truth.mask(t)}
                  for t in range(len(frames))]
        return frames, truths
    w, h = (int(v) for v in args.size.lower().split("x"))
    clip = list(scenes.render_billboard(args.seed, (w, h), args.frames, noise=args.noise))
    return [img for img, _ in clip], [t for _, t in clip]


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vidpipe eval placement` / `python -m stages.compositing.evaluate`."""
    parser.description = "visible-ad IoU (drawn ad vs poster minus figures) on a billboard scene"
    parser.add_argument("--scene", help="a written billboard scene, e.g. 'billboard' (sample_videos) or a path stem")
    parser.add_argument("--seed", type=int, default=0, help="generated scene: seed")
    parser.add_argument("--frames", type=int, default=150, help="generated scene: frames")
    parser.add_argument("--size", default="640x360", help="generated scene: WIDTHxHEIGHT")
    parser.add_argument("--noise", type=float, default=2.0, help="generated scene: sensor noise")
    parser.add_argument("--tracker", action="store_true", help="track the plane (planar_track) instead of the truth")
    parser.add_argument("--compensate", default="homography", choices=("homography", "plane", "none"))
    parser.add_argument("--scale", type=float, default=0.5, help="background processing scale")
    parser.add_argument("--shadows", action="store_true", help="background: detect shadows (off: generated scenes have none)")
    parser.add_argument("--truth-mask", action="store_true", help="occlude with the true figure masks (upper bound)")
    parser.add_argument("--matte", default="guided", choices=("guided", "feather"),
                        help="placement: occlusion edge (feather: the mask blurred by --feather px, the old behaviour)")
    parser.add_argument("--feather", type=float, default=1.5, help="placement: sigma in px with --matte feather")
    parser.add_argument("--device", default="cpu")


def check_args(args) -> list[str]:
    """The command line's mistakes, one line each (empty when fine)."""
    import re

    errors = []
    if not 0 <= args.feather <= 20:
        errors.append(f"--feather: expected 0 <= x <= 20, got {args.feather}")
    if args.frames < 1:
        errors.append(f"--frames: expected >= 1, got {args.frames}")
    if not re.fullmatch(r"\d+x\d+", str(args.size).lower()):
        errors.append(f"--size: expected WIDTHxHEIGHT, e.g. 640x360, got {args.size!r}")
    if args.scene:
        import scenes

        try:
            scenes.load_billboard(args.scene)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            where = getattr(exc, "filename", None) or exc
            errors.append(f"--scene {args.scene}: not a written billboard scene ({where}); "
                          f"write one with `vidpipe generate billboard`")
    return errors


def run(args) -> int:
    errors = check_args(args)
    if errors:
        from pipeline.params import ConfigError

        raise ConfigError(errors)
    frames, truths = _clip(args)
    tracker = {"corners": [[float(x), float(y)] for x, y in truths[0]["corners"]]} if args.tracker else None
    background = "truth" if args.truth_mask else {"compensate": args.compensate, "scale": args.scale,
                                                   "shadows": args.shadows}
    placement = {"matte": args.matte, "feather": args.feather}
    result = evaluate_placement(frames, truths, background=background, placement=placement, tracker=tracker,
                                device=args.device)
    print(f"visible-ad IoU: frames {result['frames']}  mean {result['mean_iou']:.4f}  min {result['min_iou']:.4f}  "
          f"pooled {result['pooled_iou']:.4f}  invalid {len(result['invalid_frames'])}")
    print(f"rim around figures (px per px of outline): old surface showing {result['rim_old_px']:.3f}  "
          f"ad over figures {result['rim_over_px']:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import sys

    from pipeline.params import ConfigError

    parser = argparse.ArgumentParser(prog="python -m stages.compositing.evaluate")
    configure(parser)
    try:
        return run(parser.parse_args(argv))
    except ConfigError as exc:  # one line per mistake, like the CLI
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
