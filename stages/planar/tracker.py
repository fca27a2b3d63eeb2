"""A drift-free planar tracker: Lucas-Kanade between frames, refined against the reference.

Each tracked point keeps its reference coordinates, so every frame's homography is estimated to
the REFERENCE (never chained frame to frame). Per frame:
1. predict: pyramidal LK moves the last frame's inlier points to this frame; RANSAC gives a
   first frame_from_ref (falls back to the last one);
2. refine: the reference is warped into this frame by the prediction (only over the surface's
   bounding box, from a reference pyramid level that matches the scale, gain/bias matched), and LK
   aligns reference points from that warped image to this frame. The residual it finds is the
   drift the prediction would have carried; RANSAC + least squares on the result give the frame's
   homography. Reference points are re-seeded from the reference pool every frame;
3. re-anchor: when lost, when the inlier ratio drops, or periodically, keypoints matched against
   the reference (ORB/SIFT/BRISK/AKAZE, ratio test, RANSAC) give a second candidate;
4. validity (inliers, ratio, convex quad, bounded area change) and corner smoothing (One-Euro).
Points under the foreground mask (a person in front of the poster) are ignored throughout.

Convention: grey images (H,W) uint8; mask (H,W) nonzero = foreground (ignored); corners (4,2)
pixels clockwise from top-left; `frame_from_ref` 3x3 float64 maps reference pixels to frame pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .features import BINARY, Matcher, detect, make_detector
from .homography import (METHODS, find_homography, homography_from_corners, polygon_mask, project, quad_is_sane,
                         signed_area)
from .smoothing import OneEuroFilter


@dataclass
class TrackerConfig:
    """Knobs of the planar tracker (the stage exposes each one with its range and doc)."""

    detector: str = "orb"            # re-anchoring keypoints: orb, sift, brisk, akaze
    matcher: str = "bf"              # bf or flann
    ratio: float = 0.8               # Lowe ratio test
    max_features: int = 1000         # keypoints per image for re-anchoring
    ransac_method: str = "rho"       # rho, ransac, usac, magsac, prosac, lmeds
    ransac_threshold: float = 2.0    # px, for LK point correspondences
    max_points: int = 150            # reference points aligned per frame
    point_spacing: int = 8           # px between reference points
    lk_window: int = 21              # frame-to-frame LK window (px, odd)
    lk_levels: int = 3               # frame-to-frame LK pyramid levels
    refine_window: int = 15          # LK window against the warped reference
    refine_levels: int = 2           # pyramid levels against the warped reference
    photometric: bool = True         # map the reference's grey levels to the frame's (gain, bias from inlier patches)
    max_residual: float = 2.5        # drop points whose LK patch residual exceeds this x the median (0: off)
    min_inliers: int = 12
    min_inlier_ratio: float = 0.3
    max_area_change: float = 1.5     # per frame, factor
    reanchor_below: float = 0.5      # re-anchor by matching when the inlier ratio drops below this
    reanchor_every: int = 0          # also every N frames (0: never periodically)
    smoothing: str = "one_euro"      # one_euro or none
    min_cutoff: float = 3.0          # Hz
    beta: float = 3.0                # 1/px
    d_cutoff: float = 20.0           # Hz


@dataclass
class TrackResult:
    frame_from_ref: np.ndarray | None   # smoothed, None when never located
    corners: np.ndarray | None          # (4,2) float32, smoothed
    valid: bool
    inlier_ratio: float = 0.0
    inliers: int = 0
    raw_corners: np.ndarray | None = None
    reanchored: bool = False


_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.01)


def _under_mask(mask: np.ndarray | None, pts: np.ndarray, r: int) -> np.ndarray:
    """True for points whose LK window (centre or one of its corners) touches the mask."""
    if mask is None or len(pts) == 0:
        return np.zeros(len(pts), bool)
    h, w = mask.shape[:2]
    hit = np.zeros(len(pts), bool)
    for dx, dy in ((0, 0), (-r, -r), (r, -r), (-r, r), (r, r)):
        x = np.clip(np.rint(pts[:, 0]).astype(np.int64) + dx, 0, w - 1)
        y = np.clip(np.rint(pts[:, 1]).astype(np.int64) + dy, 0, h - 1)
        hit |= mask[y, x] > 0
    return hit


class PlanarTracker:
    """`start(gray, corners)` on the reference frame, or `set_reference_image(ref)`, then
    `update(gray, mask, dt)` on every following frame, in order.

    Convention: gray (H,W) uint8; mask (H,W) numpy, nonzero = foreground; dt seconds since the
    previous frame (for the smoother); results hold frame_from_ref 3x3 float64 and corners (4,2)
    float32 px clockwise from top-left; `stats` counts frames, lost frames, matches, re-anchors."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.cfg = config or TrackerConfig()
        for name in ("lk_window", "refine_window"):
            if getattr(self.cfg, name) < 5 or getattr(self.cfg, name) % 2 == 0:
                raise ValueError(f"{name}: expected an odd number >= 5, got {getattr(self.cfg, name)}")
        if self.cfg.smoothing not in ("one_euro", "none"):
            raise ValueError(f"smoothing: expected 'one_euro' or 'none', got {self.cfg.smoothing!r}")
        if self.cfg.ransac_method not in METHODS:
            raise ValueError(f"ransac_method: expected one of {', '.join(METHODS)}, got {self.cfg.ransac_method!r}")
        self._detector = make_detector(self.cfg.detector, self.cfg.max_features)
        # a whole frame holds more than the surface: search it with twice the keypoints
        self._frame_detector = make_detector(self.cfg.detector, 2 * self.cfg.max_features)
        self._matcher = Matcher(self.cfg.matcher, self.cfg.detector in BINARY, self.cfg.ratio)
        self._smoother = OneEuroFilter(self.cfg.min_cutoff, self.cfg.beta, self.cfg.d_cutoff) \
            if self.cfg.smoothing == "one_euro" else None
        self.ref_corners: np.ndarray | None = None
        self.stats = {"frames": 0, "lost": 0, "reanchors": 0, "matches": 0}

    # ---------------------------------------------------------------- reference
    def start(self, gray: np.ndarray, corners, mask: np.ndarray | None = None) -> TrackResult:
        """Take `gray` as the reference frame with the surface at `corners` (4,2); returns its result
        (identity homography)."""
        self._set_reference(gray, corners, mask)
        self._prev = gray
        idx = np.arange(len(self._pool))
        keep = ~_under_mask(mask, self._pool, self.cfg.lk_window // 2)
        self._accept(np.eye(3), idx[keep], self._pool[keep], 1.0)
        return self._result(np.eye(3), True, 1.0, int(keep.sum()), dt=0.0)

    def set_reference_image(self, ref_gray: np.ndarray, max_size: int = 1024) -> None:
        """A picture of the surface: its corners are the image's corner pixels; it is located in the
        following frames by feature matching. A picture larger than `max_size` px is tracked at that
        size; frame_from_ref still maps the picture's own pixels."""
        h, w = ref_gray.shape[:2]
        scale = min(1.0, max_size / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            ref_gray = cv2.resize(ref_gray, size, interpolation=cv2.INTER_AREA)
        sh, sw = ref_gray.shape[:2]
        self._set_reference(ref_gray, [[0, 0], [sw - 1, 0], [sw - 1, sh - 1], [0, sh - 1]], None)
        # small_from_picture: corner pixel to corner pixel
        self._out_from_ref = np.diag([(sw - 1) / max(w - 1, 1), (sh - 1) / max(h - 1, 1), 1.0])

    def _set_reference(self, gray, corners, mask) -> None:
        cfg = self.cfg
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"reference: expected (H,W) uint8 grey image, got {gray.shape} {gray.dtype}")
        corners = np.asarray(corners, np.float64).reshape(-1, 2)
        if corners.shape != (4, 2) or not quad_is_sane(corners):
            raise ValueError(f"corners: expected 4 [x, y] points forming a convex quad, got {corners.tolist()}")
        self.ref_corners, self._ref_area = corners, signed_area(corners)
        self._out_from_ref = np.eye(3)
        self._ref_pyr = [gray]
        while len(self._ref_pyr) < 5 and min(self._ref_pyr[-1].shape) >= 32:
            self._ref_pyr.append(cv2.pyrDown(self._ref_pyr[-1]))
        margin = cfg.refine_window // 2
        region = polygon_mask(gray.shape, corners, erode=margin)
        fg = None if mask is None else cv2.dilate((np.asarray(mask) > 0).astype(np.uint8) * 255, None, iterations=margin)
        if fg is not None:
            region[fg > 0] = 0
        pts = cv2.goodFeaturesToTrack(gray, 3 * cfg.max_points, 0.005, cfg.point_spacing, mask=region, blockSize=5)
        self._pool = np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2).astype(np.float32)
        self._score = np.ones(len(self._pool))  # running inlier rate of each reference point
        if len(self._pool) < cfg.min_inliers:
            raise ValueError(f"the surface has too little texture to track: {len(self._pool)} points "
                             f"(min_inliers is {cfg.min_inliers})")
        feat_region = polygon_mask(gray.shape, corners)
        if fg is not None:
            feat_region[fg > 0] = 0
        self._ref_xy, self._ref_desc = detect(self._detector, gray, feat_region, cfg.max_features)
        self._H = self._prev = None
        self._act_idx = np.zeros(0, np.int64)
        self._act_pts = np.zeros((0, 2), np.float32)
        self._lost, self._lost_for, self._since_anchor, self._last_ratio = True, 0, 0, 1.0
        self._last_area = self._ref_area
        self._gain, self._bias = 1.0, 0.0
        if self._smoother is not None:
            self._smoother.reset()

    # ---------------------------------------------------------------- per frame
    def update(self, gray: np.ndarray, mask: np.ndarray | None = None, dt: float = 1 / 30) -> TrackResult:
        if self.ref_corners is None:
            raise RuntimeError("PlanarTracker.update before start() or set_reference_image()")
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"update: expected (H,W) uint8 grey image, got {gray.shape} {gray.dtype}")
        cfg = self.cfg
        self.stats["frames"] += 1
        self._since_anchor += 1
        candidates = []  # (frame_from_ref guess, from matching); the last H only when nothing better holds
        if not self._lost:
            predicted = self._predict(gray, mask)
            if predicted is not None:
                candidates.append((predicted, False))
            candidates.append((self._H, False))
        elif self._H is not None and self._lost_for <= 5:
            candidates.append((self._H, False))
        reanchor = (self._lost or self._last_ratio < cfg.reanchor_below
                    or (cfg.reanchor_every > 0 and self._since_anchor >= cfg.reanchor_every))
        if reanchor:
            self.stats["matches"] += 1
            self._since_anchor = 0
            H_match = self._match(gray, mask)
            if H_match is not None and (not candidates or self._differs(H_match, candidates[0][0])):
                candidates.append((H_match, True))
        # the tracked prediction wins unless the matched one is valid with clearly more inliers
        best, fallback = None, None
        for H_pred, from_match in candidates:
            if best is not None and not from_match:
                continue
            refined = self._refine(gray, H_pred, mask)
            if refined is None:
                continue
            refined = refined + (from_match,)
            if not self._is_valid(refined):
                fallback = fallback or refined
            elif best is None or refined[3] > 1.5 * best[3]:
                best = refined
        self._prev = gray
        if best is None:
            return self._fail(None if fallback is None else fallback[0], 0.0 if fallback is None else fallback[4],
                              0 if fallback is None else fallback[3], dt)
        H, idx, pts, n_in, ratio, tested, hit, from_match = best
        if from_match or self._lost:
            self.stats["reanchors"] += int(from_match)
            if self._smoother is not None:
                self._smoother.reset()
        self._score[tested] = 0.9 * self._score[tested] + 0.1 * hit
        self._accept(H, idx, pts, ratio)
        return self._result(H, True, ratio, n_in, dt, reanchored=from_match)

    def _is_valid(self, refined) -> bool:
        """Enough inliers, a high enough inlier ratio, and a sane quad (bounded area change)."""
        H, n_in, ratio = refined[0], refined[3], refined[4]
        area_ref = self._last_area if not self._lost else self._ref_area
        max_change = self.cfg.max_area_change if not self._lost else 1e6
        return (n_in >= self.cfg.min_inliers and ratio >= self.cfg.min_inlier_ratio
                and quad_is_sane(project(H, self.ref_corners), area_ref, max_change))

    def _predict(self, gray, mask) -> np.ndarray | None:
        """frame_from_ref from LK on last frame's inliers (None when too few points survive)."""
        cfg = self.cfg
        if self._prev is None or len(self._act_idx) < 4:
            return None
        step = max(1, len(self._act_idx) // 60)           # 60 spread points predict well enough
        idx, p0 = self._act_idx[::step], self._act_pts[::step]
        h, w = gray.shape
        pad = (cfg.lk_window // 2 + 2) * 2 ** cfg.lk_levels  # the motion LK can find, about
        x0, y0 = np.maximum(np.floor(p0.min(0)) - pad, 0).astype(int)
        x1, y1 = np.minimum(np.ceil(p0.max(0)) + pad, (w, h)).astype(int)
        off = np.float32((x0, y0))
        p1, st, _ = cv2.calcOpticalFlowPyrLK(self._prev[y0:y1, x0:x1], gray[y0:y1, x0:x1], np.ascontiguousarray(p0 - off),
                                             None, winSize=(cfg.lk_window, cfg.lk_window), maxLevel=cfg.lk_levels,
                                             criteria=_CRITERIA)
        p1 = p1.reshape(-1, 2) + off
        ok = (st.ravel() == 1) & np.isfinite(p1).all(1) & (p1[:, 0] >= 0) & (p1[:, 1] >= 0) \
            & (p1[:, 0] < w) & (p1[:, 1] < h) & ~_under_mask(mask, p1, cfg.lk_window // 2)
        if ok.sum() < 6:
            return None
        H, inl = find_homography(self._pool[idx[ok]], p1[ok], 2 * cfg.ransac_threshold, cfg.ransac_method, polish=False)
        if H is None or inl.sum() < max(6, min(cfg.min_inliers, len(idx) // 2), 0.3 * ok.sum()) \
                or not quad_is_sane(project(H, self.ref_corners), self._last_area, cfg.max_area_change):
            return None
        return H

    def _refine(self, gray, H_pred, mask):
        """Align reference points from the reference warped by H_pred to `gray`: (H, inlier pool
        indices, their positions, inlier count, inlier ratio, tested indices, hit mask) or None."""
        cfg = self.cfg
        h, w = gray.shape
        r = cfg.refine_window // 2
        p = project(H_pred, self._pool)
        vis = np.isfinite(p).all(1)
        vis[vis] = (p[vis, 0] >= r) & (p[vis, 1] >= r) & (p[vis, 0] < w - r) & (p[vis, 1] < h - r)
        if mask is not None:
            vis[vis] = ~_under_mask(mask, p[vis], r)
        idx = np.flatnonzero(vis)[: cfg.max_points]
        if len(idx) < max(4, cfg.min_inliers):
            return None
        pad = (r + 2) * 2 ** cfg.refine_levels
        x0, y0 = (np.floor(p[idx].min(0)) - pad).astype(int).clip(0)
        x1, y1 = np.ceil(p[idx].max(0) + pad).astype(int)
        x1, y1 = min(x1, w), min(y1, h)
        pred_corners = project(H_pred, self.ref_corners)
        scale = math.sqrt(abs(signed_area(pred_corners)) / abs(self._ref_area)) if np.isfinite(pred_corners).all() else 1.0
        level = int(np.clip(math.floor(math.log2(1.0 / max(scale, 1e-6))), 0, len(self._ref_pyr) - 1))
        M = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ H_pred @ np.diag([2.0 ** level, 2.0 ** level, 1.0])
        warped = cv2.warpPerspective(self._ref_pyr[level], M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        cur = gray[y0:y1, x0:x1]
        raw_warped = warped
        if cfg.photometric and (self._gain != 1.0 or self._bias != 0.0):
            warped = cv2.LUT(warped, np.clip(np.arange(256) * self._gain + self._bias, 0, 255).astype(np.uint8))
        p0 = (p[idx] - (x0, y0)).astype(np.float32)
        p1, st, err = cv2.calcOpticalFlowPyrLK(warped, cur, p0, p0.copy(), winSize=(cfg.refine_window,) * 2,
                                               maxLevel=cfg.refine_levels, criteria=_CRITERIA,
                                               flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        p1, err = p1.reshape(-1, 2), err.ravel()
        ok = (st.ravel() == 1) & np.isfinite(p1).all(1)
        if cfg.max_residual > 0 and ok.sum() >= 8:  # occluded or changed patches: appearance does not match
            ok &= err <= max(1.0, cfg.max_residual * float(np.median(err[ok])))
        if ok.sum() < max(4, cfg.min_inliers):
            return None
        p1 = p1 + np.float32((x0, y0))
        H, inl = find_homography(self._pool[idx[ok]], p1[ok], cfg.ransac_threshold, cfg.ransac_method)
        if H is None:
            return None
        n_in = int(inl.sum())
        keep = np.flatnonzero(ok)[inl]
        if cfg.photometric and self.stats["frames"] % 3 == 0:  # lighting changes slowly: refit every 3rd frame
            self._update_gain(raw_warped, cur, p0[keep], p1[keep] - np.float32((x0, y0)))
        hit = np.zeros(len(idx), bool)
        hit[keep] = True
        # the ratio counts only points that have been reliable lately (not, e.g., a person who stood
        # in front of the surface in the reference frame)
        reliable = (self._score[idx] > 0.25) | hit
        return H, idx[keep], p1[keep], n_in, n_in / max(1, int(reliable.sum())), idx, hit

    def _update_gain(self, warped, cur, p0, p1) -> None:
        """Refit the grey-level map reference -> frame (gain, bias) from the mean grey level of the
        inlier patches (so people in front, being outliers, do not bias it); used on the next frame."""
        r = self.cfg.refine_window // 2
        means = []
        for img, pts in ((warped, p0), (cur, p1)):
            integral = cv2.integral(img)
            h, w = img.shape
            x = np.clip(np.rint(pts[:, 0]).astype(np.int64), r, w - r - 1)
            y = np.clip(np.rint(pts[:, 1]).astype(np.int64), r, h - r - 1)
            box = (integral[y + r + 1, x + r + 1] - integral[y - r, x + r + 1]
                   - integral[y + r + 1, x - r] + integral[y - r, x - r])
            means.append(box / float((2 * r + 1) ** 2))
        a, b = means
        if len(a) < 8 or np.ptp(a) < 10:
            return
        keep = np.ones(len(a), bool)
        for _ in range(2):
            gain, bias = np.polyfit(a[keep], b[keep], 1)
            res = np.abs(b - (gain * a + bias))
            keep = res <= max(2.0, 3.0 * 1.4826 * float(np.median(res[keep])))
            if keep.sum() < 8:
                return
        if 0.4 <= gain <= 2.5:
            self._gain, self._bias = float(gain), float(bias)

    def _match(self, gray, mask) -> np.ndarray | None:
        """Re-anchor: keypoints of this frame matched to the reference's; frame_from_ref or None."""
        cfg = self.cfg
        search = None if mask is None else np.where(np.asarray(mask) > 0, 0, 255).astype(np.uint8)
        xy, desc = detect(self._frame_detector, gray, search, 2 * cfg.max_features)
        qi, ti = self._matcher.match(desc, self._ref_desc)
        if len(qi) < cfg.min_inliers:
            return None
        H, inl = find_homography(self._ref_xy[ti], xy[qi], max(3.0, 2 * cfg.ransac_threshold), cfg.ransac_method)
        if H is None or inl.sum() < cfg.min_inliers or not quad_is_sane(project(H, self.ref_corners), self._ref_area, 1e6):
            return None
        return H

    def _differs(self, Ha, Hb) -> bool:
        d = np.linalg.norm(project(Ha, self.ref_corners) - project(Hb, self.ref_corners), axis=1)
        return not np.all(d < 2 * self.cfg.ransac_threshold)

    # ---------------------------------------------------------------- bookkeeping
    def _accept(self, H, idx, pts, ratio) -> None:
        self._H, self._act_idx, self._act_pts = H, idx, np.float32(pts).reshape(-1, 2)
        self._lost, self._lost_for, self._last_ratio = False, 0, ratio
        self._last_area = signed_area(project(H, self.ref_corners))

    def _fail(self, H, ratio, n_in, dt) -> TrackResult:
        self.stats["lost"] += 1
        self._lost, self._lost_for = True, self._lost_for + 1
        self._act_idx = np.zeros(0, np.int64)
        self._act_pts = np.zeros((0, 2), np.float32)
        if self._smoother is not None:
            self._smoother.reset()
        guess = H if H is not None else self._H
        return self._result(guess, False, ratio, n_in, dt)

    def _result(self, H, valid, ratio, n_in, dt, reanchored=False) -> TrackResult:
        if H is None:
            return TrackResult(None, None, valid, float(ratio), int(n_in))
        raw = project(H, self.ref_corners)
        corners, H_out = raw, H
        if valid and self._smoother is not None:
            corners = self._smoother(raw, dt)
            H_out = homography_from_corners(self.ref_corners, corners)
        return TrackResult(np.asarray(H_out @ self._out_from_ref, np.float64), np.float32(corners), bool(valid),
                           float(ratio), int(n_in), np.float32(raw), reanchored)
