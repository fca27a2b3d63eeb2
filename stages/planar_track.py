"""`planar_track`: follow a planar surface (a poster, a wall, a table) through the video.

The surface is given by its four corners in a reference frame, or by a picture of it found by
feature matching. Every frame gets `Frame.plane`: `frame_from_ref` (reference pixels -> this
frame), the corners in this frame, validity and the inlier ratio. Points under `Frame.mask` (a
person in front) are ignored when a stage before wrote one. Kernels: stages/planar/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

import cv2
import numpy as np

from pipeline.frame import Frame, Plane
from pipeline.params import param
from pipeline.stage import Stage, StageContext
from stages.planar.features import DETECTORS, MATCHERS, available_detectors
from stages.planar.homography import METHODS
from stages.planar.tracker import PlanarTracker, TrackerConfig

_D = TrackerConfig  # defaults live with the kernel


@dataclass
class PlanarTrackParams:
    corners: list[tuple[float, float]] | None = param(
        None, doc="the surface's 4 corners [x, y] in the reference frame, clockwise from top-left")
    reference_frame: int = param(0, ge=0, doc="index of the frame the corners are given in (frames before it: no plane)")
    reference_image: str | None = param(
        None, path="file", doc="instead of corners: a picture of the surface, located by feature matching; its "
                               "corners are the picture's corner pixels and frame_from_ref maps picture pixels to "
                               "the frame")
    detector: str = param(_D.detector, choices=DETECTORS, doc="keypoints for re-anchoring / locating the picture")
    matcher: str = param(_D.matcher, choices=MATCHERS, doc="bf (brute force) or flann")
    ratio: float = param(_D.ratio, gt=0, le=1, doc="Lowe ratio test for descriptor matches")
    max_features: int = param(_D.max_features, ge=10, le=100000, doc="keypoints per image for matching")
    ransac_method: str = param(_D.ransac_method, choices=tuple(METHODS), doc="robust homography estimator")
    ransac_threshold: float = param(_D.ransac_threshold, gt=0, le=50, doc="inlier reprojection error, px")
    max_points: int = param(_D.max_points, ge=8, le=5000, doc="reference points aligned per frame")
    point_spacing: int = param(_D.point_spacing, ge=1, le=100, doc="min distance between reference points, px")
    lk_window: int = param(_D.lk_window, ge=5, le=101, doc="frame-to-frame Lucas-Kanade window, px (odd)")
    lk_levels: int = param(_D.lk_levels, ge=0, le=6, doc="frame-to-frame LK pyramid levels")
    refine_window: int = param(_D.refine_window, ge=5, le=101, doc="LK window against the warped reference, px (odd)")
    refine_levels: int = param(_D.refine_levels, ge=0, le=6, doc="LK pyramid levels against the warped reference")
    photometric: bool = param(_D.photometric, doc="map the reference's grey levels to the frame's (gain and bias "
                                                  "fitted on inlier patches: lighting changes, auto exposure)")
    max_residual: float = param(_D.max_residual, ge=0, le=100,
                                doc="drop points whose LK patch residual exceeds this times the median (0: off)")
    min_inliers: int = param(_D.min_inliers, ge=4, le=5000, doc="fewer inliers: the plane is invalid")
    min_inlier_ratio: float = param(_D.min_inlier_ratio, ge=0, le=1, doc="lower inlier ratio: invalid")
    max_area_change: float = param(_D.max_area_change, gt=1, le=100, doc="max area change per frame (factor)")
    reanchor_below: float = param(_D.reanchor_below, ge=0, le=1,
                                  doc="re-anchor by feature matching when the inlier ratio drops below this")
    reanchor_every: int = param(_D.reanchor_every, ge=0, doc="also re-anchor every N frames (0: only on need)")
    smoothing: str = param(_D.smoothing, choices=("one_euro", "none"), doc="corner smoothing over time")
    min_cutoff: float = param(_D.min_cutoff, gt=0, le=1000, doc="One-Euro cutoff at rest, Hz")
    beta: float = param(_D.beta, ge=0, le=1000, doc="One-Euro cutoff growth with corner speed, Hz per px/s")
    d_cutoff: float = param(_D.d_cutoff, gt=0, le=1000, doc="One-Euro cutoff of the speed estimate, Hz")
    use_mask: bool = param(True, doc="ignore points under Frame.mask (foreground) when a stage wrote one")

    def validate(self) -> list[str]:
        errors = []
        if (self.corners is None) == (self.reference_image is None):
            errors.append("corners: give exactly one of corners (4 [x, y] points) or reference_image")
        if self.corners is not None and len(self.corners) != 4:
            errors.append(f"corners: expected 4 [x, y] points, got {len(self.corners)}")
        if self.reference_image is not None and not os.path.isfile(self.reference_image):
            errors.append(f"reference_image: file not found: {self.reference_image}")
        if self.detector not in available_detectors():
            errors.append(f"detector: {self.detector!r} is not in this OpenCV build; available: "
                          f"{', '.join(available_detectors())}")
        for name in ("lk_window", "refine_window"):
            if getattr(self, name) % 2 == 0:
                errors.append(f"{name}: expected an odd number of pixels, got {getattr(self, name)}")
        return errors

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(**{f.name: getattr(self, f.name) for f in fields(TrackerConfig)})


def _host_mask(mask) -> np.ndarray | None:
    """Frame.mask (numpy or torch, bool or 0/255) -> (H,W) numpy, or None when empty."""
    if mask is None:
        return None
    if hasattr(mask, "detach"):
        mask = mask.detach().to("cpu").numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0] if mask.shape[-1] == 1 else mask[0]
    return mask if mask.any() else None


class PlanarTrackStage(Stage):
    type_name = "planar_track"
    host_stage = True   # numpy/OpenCV work: a worker process helps on a GPU run too
    input_views = True  # keeps no input array past process() (Stage.input_views)
    Params = PlanarTrackParams
    optional_reads = frozenset({"mask"})
    writes = frozenset({"plane"})

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        p = self.params
        self.tracker = PlanarTracker(p.tracker_config())
        self._started = False
        if p.reference_image is not None:
            ref = cv2.imread(p.reference_image, cv2.IMREAD_GRAYSCALE)
            if ref is None:
                raise ValueError(f"reference_image: cannot read {p.reference_image}")
            self.tracker.set_reference_image(ref)
            self._started = True
        fps = context.source.fps if context.source is not None and context.source.fps else 30.0
        self._period = 1.0 / fps
        self._last_time: float | None = None
        self._valid = 0
        self._ratio_sum = 0.0

    def process(self, frame: Frame) -> Frame:
        p = self.params
        if not self._started and frame.index < p.reference_frame:
            frame.plane = Plane(None, None, False, 0.0)
            return frame
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        mask = _host_mask(frame.mask) if p.use_mask else None
        if mask is not None and mask.shape != gray.shape:
            raise ValueError(f"Frame.mask: expected shape {gray.shape}, got {mask.shape}")
        dt = self._period if self._last_time is None or frame.time <= self._last_time else frame.time - self._last_time
        self._last_time = frame.time
        if not self._started:
            result = self.tracker.start(gray, p.corners, mask)
            self._started = True
        else:
            result = self.tracker.update(gray, mask, dt)
        frame.plane = Plane(result.frame_from_ref, result.corners, result.valid, result.inlier_ratio)
        frame.meta["plane_inliers"] = result.inliers
        self._valid += int(result.valid)
        self._ratio_sum += result.inlier_ratio if result.valid else 0.0
        return frame

    def summary(self) -> dict:
        s = dict(self.tracker.stats)
        s["valid"] = self._valid
        s["mean_inlier_ratio"] = round(self._ratio_sum / max(self._valid, 1), 3)
        return s
