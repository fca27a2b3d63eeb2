"""Planar tracking kernels: robust homographies, detectors/matchers, One-Euro smoothing and the
drift-free tracker, against synthetic sequences with exact ground truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages.planar.features import DETECTORS, Matcher, available_detectors, detect, make_detector
from stages.planar.homography import corner_errors, find_homography, project, quad_is_sane
from stages.planar.smoothing import OneEuroFilter
from stages.planar.synthetic import make_sequence, textured_image
from stages.planar.tracker import PlanarTracker, TrackerConfig

H_TRUE = np.array([[0.9, 0.12, 30.0], [-0.08, 1.05, 12.0], [2e-4, -1e-4, 1.0]])


def _gray(img):
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _run(seq, config=None, masks=True, period=0.04):
    tracker = PlanarTracker(config or TrackerConfig(smoothing="none"))
    out = []
    for i, frame in enumerate(seq.frames):
        mask = seq.masks[i] if masks and seq.masks[i].any() else None
        gray = _gray(frame)
        out.append(tracker.start(gray, seq.corners[0], mask) if i == 0 else tracker.update(gray, mask, period))
    return tracker, out


@pytest.mark.parametrize("method", ["ransac", "rho", "magsac", "usac", "lmeds"])
def test_find_homography_recovers_known_h_among_outliers(method):
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 400, (200, 2))
    dst = project(H_TRUE, src)
    bad = rng.random(200) < (0.3 if method != "lmeds" else 0.2)
    dst[bad] += rng.uniform(20, 80, (bad.sum(), 2))
    H, inliers = find_homography(src, dst, 2.0, method)
    assert H is not None
    assert np.abs(project(H, src[~bad]) - project(H_TRUE, src[~bad])).max() < 1e-3
    assert not inliers[bad].any() and inliers[~bad].mean() > 0.95


def test_find_homography_degenerate_and_bad_arguments():
    assert find_homography(np.zeros((3, 2)), np.zeros((3, 2)))[0] is None
    with pytest.raises(ValueError, match="method"):
        find_homography(np.zeros((4, 2)), np.zeros((4, 2)), method="magic")
    with pytest.raises(ValueError, match="threshold"):
        find_homography(np.zeros((4, 2)), np.zeros((4, 2)), threshold=0)


SQUARE = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float)


@pytest.mark.parametrize("corners, ref_area, expected", [
    (SQUARE, None, True),
    (SQUARE[[0, 2, 1, 3]], None, False),                  # bow tie
    (SQUARE[::-1], 10000.0, False),                        # winding flipped (mirrored)
    (SQUARE * 1.3, 10000.0, False),                        # area x1.69 > 1.5 in one frame
    (SQUARE * 1.1, 10000.0, True),
    (np.array([[0, 0], [100, 0], [20, 20], [0, 100]], float), None, False),  # concave
    (SQUARE * 0.02, None, False),                          # degenerate (area < 16 px^2)
    (np.full((4, 2), np.nan), None, False),
])
def test_quad_is_sane(corners, ref_area, expected):
    assert quad_is_sane(corners, ref_area, 1.5) is expected


def test_unknown_detector_lists_available_ones():
    assert {"orb", "sift"} <= set(available_detectors())
    with pytest.raises(ValueError, match="available: orb"):
        make_detector("surf")


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("kind", ["bf", "flann"])
def test_detector_and_matcher_recover_a_known_warp(detector, kind):
    if detector not in available_detectors():
        pytest.skip(f"{detector} not in this OpenCV build")
    img = _gray(textured_image(360, 480, seed=1))
    warped = cv2.warpPerspective(img, H_TRUE, (480, 360))
    det = make_detector(detector, 1500)
    xy0, d0 = detect(det, img)
    xy1, d1 = detect(det, warped)
    qi, ti = Matcher(kind, detector != "sift", 0.8).match(d1, d0)
    H, inliers = find_homography(xy0[ti], xy1[qi], 3.0)
    assert H is not None and inliers.sum() >= 20
    pts = np.array([[100, 100], [380, 100], [380, 260], [100, 260]], float)
    assert corner_errors(project(H, pts), project(H_TRUE, pts)).max() < 1.5


def test_one_euro_smooths_rest_and_follows_motion():
    rng = np.random.default_rng(0)
    still = 50 + rng.normal(0, 0.3, (100, 4, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.1, d_cutoff=1.0)
    out = np.array([f(x, 0.04) for x in still])
    assert out[20:].std(axis=0).mean() < 0.5 * still[20:].std(axis=0).mean()
    ramp = np.arange(100)[:, None, None] * 4.0 + np.zeros((100, 4, 2))   # 100 px/s

    def lag(beta):
        f = OneEuroFilter(1.0, beta, 20.0)
        return np.abs(np.array([f(x, 0.04) for x in ramp]) - ramp)[50:].max()
    assert lag(3.0) < 0.2 < 2.0 < lag(0.0)       # speed-keyed: no lag on fast motion
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)


def test_tracks_known_homographies_exactly():
    seq = make_sequence(n=40, shake=1.5, seed=3)
    tracker, out = _run(seq)
    assert all(r.valid for r in out)
    err = corner_errors(np.array([r.corners for r in out]), seq.corners)
    assert err.max() < 0.3, err.max()
    ref_pts = np.array([[200.0, 150.0], [400.0, 300.0]])
    for r, H in zip(out, seq.frame_from_ref):
        assert np.abs(project(r.frame_from_ref, ref_pts) - project(H, ref_pts)).max() < 0.3


def test_no_drift_over_a_long_sequence_returning_to_the_start():
    seq = make_sequence(n=150, size=(320, 240), loop=True, amplitude=1.5, seed=4)
    assert np.abs(seq.corners[-1] - seq.corners[0]).max() < 1e-6
    _, out = _run(seq, TrackerConfig())
    assert all(r.valid for r in out)
    assert corner_errors(out[-1].corners, seq.corners[0]).max() < 0.1
    assert corner_errors(np.array([r.corners for r in out]), seq.corners).max() < 0.4


def test_points_under_the_mask_are_ignored():
    seq = make_sequence(n=40, occluder=True, shake=1.0, seed=5)
    tracker, out = _run(seq)
    covered = [i for i, m in enumerate(seq.masks) if m.any()]
    assert len(covered) > 10
    err = corner_errors(np.array([r.corners for r in out]), seq.corners)
    assert err.max() < 0.3, err.max()
    # the last frame's active points (those the next frame starts from) avoid the occluder
    last = seq.masks[-1]
    pts = np.rint(tracker._act_pts).astype(int)
    if last.any():
        assert not last[pts[:, 1], pts[:, 0]].any()


def test_reanchors_after_a_lost_spell():
    seq = make_sequence(n=45, blank=(15, 25), amplitude=1.2, seed=6)
    tracker, out = _run(seq)
    valid = np.array([r.valid for r in out])
    assert valid[:15].all() and not valid[15:25].any() and valid[25:].all()
    assert tracker.stats["reanchors"] >= 1
    err = corner_errors(np.array([r.corners for r in out[25:]]), seq.corners[25:])
    assert err.max() < 0.3


@pytest.mark.parametrize("upscale", [1, 5])
def test_locates_a_reference_image_by_matching(upscale):
    seq = make_sequence(n=12, seed=7)
    tracker = PlanarTracker(TrackerConfig(smoothing="none", detector="orb"))
    picture = _gray(seq.poster)
    if upscale > 1:  # a big picture is tracked at <= 1024 px, frame_from_ref still maps its own pixels
        picture = cv2.resize(picture, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    tracker.set_reference_image(picture)
    out = [tracker.update(_gray(f)) for f in seq.frames]
    assert all(r.valid for r in out)
    h, w = picture.shape
    picture_corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    ph, pw = seq.poster.shape[:2]
    poster_corners = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], float)
    in_poster = (picture_corners + 0.5) / upscale - 0.5        # pixel centres of the resized picture
    truth = np.array([project(cv2.getPerspectiveTransform(np.float32(poster_corners), np.float32(c)), in_poster)
                      for c in seq.corners])
    assert corner_errors(np.array([r.corners for r in out]), truth).max() < 0.5
    assert corner_errors(project(out[-1].frame_from_ref, picture_corners), out[-1].corners).max() < 1e-3


def test_follows_a_brightness_ramp():
    seq = make_sequence(n=40, seed=8)
    tracker = PlanarTracker(TrackerConfig(smoothing="none"))
    out = []
    for i, f in enumerate(seq.frames):
        g = np.clip(_gray(f) * (0.7 + 0.6 * i / 39) + 10, 0, 255).astype(np.uint8)
        out.append(tracker.start(g, seq.corners[0]) if i == 0 else tracker.update(g))
    assert all(r.valid for r in out)
    assert corner_errors(np.array([r.corners for r in out]), seq.corners).max() < 0.3


def test_bad_references_and_arguments_are_refused():
    img = _gray(textured_image(240, 320))
    with pytest.raises(ValueError, match="convex"):
        PlanarTracker().start(img, SQUARE[[0, 2, 1, 3]])
    with pytest.raises(ValueError, match="texture"):
        PlanarTracker().start(np.full((240, 320), 128, np.uint8), SQUARE + 50)
    with pytest.raises(ValueError, match="odd"):
        PlanarTracker(TrackerConfig(lk_window=20))
    with pytest.raises(ValueError, match="smoothing"):
        PlanarTracker(TrackerConfig(smoothing="kalman"))
    with pytest.raises(ValueError, match="ransac_method"):
        PlanarTracker(TrackerConfig(ransac_method="magic"))
    with pytest.raises(RuntimeError, match="start"):
        PlanarTracker().update(img)
