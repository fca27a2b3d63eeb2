"""Compositing kernels: ad loading, placement geometry, Lab colour transfer, blur kernels and the
blur fit, the OpenCV and torch composites (agreeing with each other), the evaluation metric."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stages.compositing.ad import ad_corners, load_ad, make_example_ad
from stages.compositing.blur import Blur, fit_blur, line_kernel
from stages.compositing.color import bgr_to_lab, lab_to_bgr, transfer, weighted_stats
from stages.compositing.composite import AdPyramid, composite_cv2, composite_torch
from stages.compositing.evaluate import drawn_region, iou, quad_mask, visible_truth
from stages.compositing.geometry import (inside_quad, is_convex_quad, on_screen_scale, project, quad_homography,
                                         ref_from_ad, roi_of, scale_homography)
from test_segmentation import textured_background


# ---- ad ----
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_load_ad_gives_bgra(tmp_path, channels):
    img = np.random.default_rng(0).integers(0, 255, (20, 30, channels) if channels > 1 else (20, 30), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "ad.png"), img)
    ad = load_ad(tmp_path / "ad.png")
    assert ad.shape == (20, 30, 4) and ad.dtype == np.uint8
    if channels < 4:
        assert (ad[..., 3] == 255).all()
    else:
        assert np.array_equal(ad, img)


def test_load_ad_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_ad(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_ad(tmp_path / "bad.png")


def test_example_ad_has_soft_alpha_edges():
    ad = make_example_ad(240, 120)
    assert ad.shape == (120, 240, 4)
    alpha = ad[..., 3]
    assert alpha[0, 0] == 0 and alpha[60, 120] == 255
    assert ((alpha > 0) & (alpha < 255)).sum() > 50  # anti-aliased rounded corners
    assert (make_example_ad(240, 120, opaque=True)[..., 3] == 255).all()


# ---- geometry ----
QUAD = np.array([[100.0, 50.0], [300.0, 60.0], [310.0, 200.0], [90.0, 190.0]])


def test_stretch_maps_ad_corners_onto_the_surface():
    h = ref_from_ad(200, 100, QUAD, "stretch")
    assert np.allclose(project(h, ad_corners(200, 100)), QUAD, atol=1e-6)


def test_contain_keeps_the_aspect_ratio_and_centres():
    rect = np.array([[0.0, 0.0], [400.0, 0.0], [400.0, 100.0], [0.0, 100.0]])
    placed = project(ref_from_ad(100, 100, rect, "contain"), ad_corners(100, 100))
    assert np.allclose(placed, [[150, 0], [250, 0], [250, 100], [150, 100]], atol=1e-6)
    inset = project(ref_from_ad(100, 100, rect, "contain", inset=0.1), ad_corners(100, 100))
    assert np.allclose(inset, [[160, 10], [240, 10], [240, 90], [160, 90]], atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"fit": "fill"}, {"inset": 0.5}])
def test_ref_from_ad_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ref_from_ad(10, 10, QUAD, **kwargs)


def test_roi_convexity_and_inside():
    assert roi_of(QUAD, 480, 640, pad=2) == (88, 48, 313, 203)
    assert roi_of(QUAD + 1000, 480, 640) is None and roi_of(QUAD * np.nan, 480, 640) is None
    assert is_convex_quad(QUAD) and not is_convex_quad(QUAD[[0, 2, 1, 3]])
    ys, xs = np.mgrid[0:240, 0:400].astype(np.float64)
    mine = inside_quad(QUAD, xs, ys)
    ref = np.array([[cv2.pointPolygonTest(QUAD.astype(np.float32), (float(x), float(y)), True) for x in range(0, 400, 7)]
                    for y in range(0, 240, 7)])
    sub = mine[::7, ::7]
    assert np.array_equal(sub[np.abs(ref) > 0.5], ref[np.abs(ref) > 0.5] > 0)
    assert np.array_equal(quad_mask(QUAD, 240, 400), mine)


def test_scales_and_pyramid_levels():
    assert np.allclose(project(scale_homography(1), np.array([[-0.5, -0.5], [99.5, 49.5]])), [[-0.5, -0.5], [49.5, 24.5]])
    h = quad_homography(ad_corners(200, 100), ad_corners(200, 100) * 0.25)
    assert on_screen_scale(h, 200, 100) == pytest.approx(0.25, rel=0.02)
    pyr = AdPyramid(make_example_ad(256, 128))
    assert [lvl[1].shape for lvl in pyr.levels][:3] == [(128, 256), (64, 128), (32, 64)]
    assert pyr.level_for(1.0) == 0 and pyr.level_for(0.5) == 1 and pyr.level_for(0.3) == 1 and pyr.level_for(0.2) == 2


# ---- colour ----
def test_torch_lab_matches_opencv(device):
    img = np.random.default_rng(1).random((16, 24, 3), dtype=np.float32)
    ref = cv2.cvtColor(img, cv2.COLOR_BGR2Lab)
    lab = bgr_to_lab(torch.from_numpy(img).permute(2, 0, 1).to(device))
    assert np.abs(lab.permute(1, 2, 0).cpu().numpy() - ref).max() < 0.5  # OpenCV tabulates the sRGB curve
    back = lab_to_bgr(lab).permute(1, 2, 0).cpu().numpy()
    assert np.abs(back - img).max() < 1e-3
    assert np.abs(back - cv2.cvtColor(ref, cv2.COLOR_Lab2BGR)).max() < 5e-3


def test_transfer_strength_and_lighting():
    ad = (np.array([60.0, 10.0, -20.0]), np.array([20.0, 10.0, 10.0]))
    region = (np.array([40.0, 0.0, 0.0]), np.array([10.0, 5.0, 5.0]))
    gain, offset = transfer(ad, region, strength=0.0)
    assert np.allclose(gain, 1) and np.allclose(offset, 0)
    gain, offset = transfer(ad, region, strength=1.0)
    assert np.allclose(ad[0] * gain + offset, region[0]) and np.allclose(ad[1] * gain, region[1])
    darker = (region[0] - np.array([10.0, 0, 0]), region[1])  # the light dims after placement began
    g0, o0 = transfer(ad, region, region, strength=0.5)
    g1, o1 = transfer(ad, darker, region, strength=0.5)
    assert np.allclose((ad[0] * g1 + o1) - (ad[0] * g0 + o0), [-10, 0, 0])
    with pytest.raises(ValueError):
        transfer(ad, region, strength=1.5)
    assert weighted_stats(np.ones((4, 3)), np.zeros(4)) is None


# ---- blur ----
def test_blur_kernels_and_separable_application():
    k = Blur(1.5).kernel()
    assert k.sum() == pytest.approx(1) and np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])
    line = line_kernel((8.0, 0.0), 1.0)
    rows, cols = np.nonzero(line.sum(1) > 1e-6)[0], np.nonzero(line.sum(0) > 1e-6)[0]
    assert len(rows) == 1 and 8 <= len(cols) <= 10  # a horizontal line ~8 px long
    assert line_kernel((0.3, 0.0), 1.0) is None and Blur().is_identity() and Blur().kernel().shape == (1, 1)
    img = np.random.default_rng(0).random((40, 50), dtype=np.float32)
    blur = Blur(1.2, (5.0, 3.0), 1.0)
    direct = cv2.filter2D(img, -1, blur.kernel(), borderType=cv2.BORDER_CONSTANT)
    assert np.abs(blur.apply(img, cv2.BORDER_CONSTANT) - direct)[8:-8, 8:-8].max() < 2e-3
    with pytest.raises(ValueError):
        Blur(-1.0)
    with pytest.raises(ValueError):
        line_kernel((1, 1), 2.0)


@pytest.mark.parametrize("sigma, motion, exposure", [(0.0, (0, 0), 0.0), (1.8, (0, 0), 0.0), (0.0, (10, 0), 1.0),
                                                    (0.7, (6, 6), 0.5)])
def test_fit_blur_recovers_the_blur(sigma, motion, exposure):
    ref = cv2.cvtColor(textured_background(120, 160, seed=4), cv2.COLOR_BGR2GRAY).astype(np.float32)
    cur = cv2.filter2D(ref, -1, Blur(sigma, motion, exposure).kernel(), borderType=cv2.BORDER_REPLICATE)
    cur = cur * 0.8 + 20 + np.random.default_rng(0).normal(0, 1, cur.shape).astype(np.float32)  # other lighting
    weights = np.ones_like(ref)
    weights[40:80, 60:100] = 0  # an occluder
    s, e, _ = fit_blur(cur, ref, weights, motion=motion)
    assert s == pytest.approx(sigma, abs=0.5) and e == pytest.approx(exposure, abs=0.26)


# ---- composite ----
def scene_and_ad():
    frame = textured_background(120, 160, seed=2)
    ad = make_example_ad(96, 64)
    h = quad_homography(ad_corners(96, 64), np.array([[30.0, 20.0], [130.0, 25.0], [125.0, 95.0], [35.0, 100.0]]))
    return frame, ad, h


@pytest.mark.parametrize("blur", [None, Blur(1.0, (4.0, 2.0), 1.0)])
def test_opencv_and_torch_composites_agree(blur, device):
    frame, ad, h = scene_and_ad()
    pyr = AdPyramid(ad)
    occ = np.zeros(frame.shape[:2], np.uint8)
    occ[40:90, 60:80] = 255
    roi = roi_of(project(h, ad_corners(96, 64)), 120, 160, pad=4)
    gain, offset = np.array([0.9, 1.0, 1.1]), np.array([-3.0, 2.0, 1.0])
    out_cv, cov_cv = composite_cv2(frame, pyr.colored(0, gain, offset), h, roi, blur, occ, 1.5, 0.9)
    out_t, cov_t = composite_torch(torch.from_numpy(frame).permute(2, 0, 1).to(device),
                                   pyr.colored_torch(0, device, gain, offset), h, roi, blur,
                                   torch.from_numpy(occ).to(device), 1.5, 0.9)
    out_t = out_t.permute(1, 2, 0).cpu().numpy()
    diff = np.abs(out_cv.astype(int) - out_t.astype(int))
    assert diff.max() <= 5 and diff.mean() < 0.3  # uint8 rounding on the OpenCV side
    assert cov_cv.dtype == np.uint8 and np.abs(cov_cv / 255.0 - cov_t.cpu().numpy()).max() < 0.025


def test_composite_places_hides_and_feathers():
    frame, _, h = scene_and_ad()
    ad = np.zeros((64, 96, 4), np.uint8)
    ad[...] = (0, 0, 255, 255)  # opaque red
    pyr = AdPyramid(ad)
    quad = project(h, ad_corners(96, 64))
    roi = roi_of(quad, 120, 160, pad=1)
    occ = np.zeros(frame.shape[:2], np.uint8)
    occ[:, 70:] = 255
    out, cov = composite_cv2(frame, pyr.colored(0), h, roi, None, occ, 2.0)
    drawn = drawn_region((roi, cov), 120, 160)
    truth = visible_truth(quad, occ > 0)
    assert iou(drawn, truth) > 0.97
    near = cv2.dilate(quad_mask(quad, 120, 160).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert np.array_equal(out[~near], frame[~near])  # outside (beyond the anti-aliased edge): untouched
    assert np.array_equal(out[:, 80:], frame[:, 80:])  # behind the occluder, away from its edge: untouched
    assert (out[50, 40] == (0, 0, 255)).all()
    row = cov[50 - roi[1], 60 - roi[0]:80 - roi[0]] / 255.0
    assert ((row > 0.05) & (row < 0.95)).sum() >= 3  # a soft edge, not a cut
    assert frame.base is None or not np.shares_memory(out, frame)


def test_iou_and_drawn_region():
    a = np.zeros((4, 4), bool)
    assert iou(a, a) == 1.0
    b = a.copy()
    b[:2] = True
    c = a.copy()
    c[1:3] = True
    assert iou(b, c) == pytest.approx(4 / 12)
    assert not drawn_region(None, 4, 4).any()
    assert drawn_region(((1, 1, 3, 3), np.full((2, 2), 0.6, np.float32)), 4, 4).sum() == 4


def test_fit_blur_local_search_follows_a_changing_blur():
    ref = cv2.cvtColor(textured_background(96, 96, seed=8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    weights = np.ones_like(ref)
    near = None
    for sigma in (0.0, 0.7, 1.2, 1.8, 1.8):  # one grid step per frame: the local search keeps up
        cur = cv2.GaussianBlur(ref, (0, 0), sigma) if sigma else ref
        near = fit_blur(cur, ref, weights, near=near)[:2]
    assert near == (1.8, 0.0)
