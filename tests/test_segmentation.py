"""Segmentation kernels: morphology (known answers, pool == shift), the running Gaussian model
(moving blobs recovered, shadows kept out, ghosts absorbed), motion compensation, mask helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.segmentation.gaussian import GaussianBackground, downscale
from stages.segmentation.masks import boxes_mask, device_mask, host_mask
from stages.segmentation.morphology import clean, closing, dilate, erode, opening
from stages.segmentation.motion import FrameMotion, homography_grid, rescale_homography


def textured_background(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8), (w, h),
                        interpolation=cv2.INTER_CUBIC)
    return np.clip(coarse.astype(np.int16) + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def blob_scene(n: int, h: int = 120, w: int = 160, start: int = 0, noise: float = 3.0, seed: int = 0):
    """Two textured ellipses crossing a static textured background with sensor noise; they appear
    at frame `start`. Yields (BGR uint8 image, gt mask bool)."""
    import cv2

    rng = np.random.default_rng(seed)
    bg = textured_background(h, w, seed)
    blobs = [((10.0, 40.0), (2.0, 0.5), (8, 16), (40, 200, 60)), ((140.0, 80.0), (-1.5, -0.3), (10, 14), (200, 40, 180))]
    for t in range(n):
        img = bg.astype(np.float32)
        gt = np.zeros((h, w), np.uint8)
        if t >= start:
            for (x, y), (vx, vy), axes, col in blobs:
                m = np.zeros((h, w), np.uint8)
                cv2.ellipse(m, (int(x + vx * (t - start)), int(y + vy * (t - start))), axes, 0, 0, 360, 255, -1)
                sel = m > 0
                img[sel] = np.float32(col) + rng.normal(0, 12, (int(sel.sum()), 3))
                gt |= m
        img = img + rng.normal(0, noise, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8), gt > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


def as_tensor(img: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(device)


# ---- morphology ----
@pytest.mark.parametrize("fn", [dilate, erode, opening, closing])
@pytest.mark.parametrize("size", [3, 5, 7])
def test_pool_and_shift_agree(fn, size, device):
    g = torch.Generator().manual_seed(size)
    mask = (torch.rand(2, 37, 53, generator=g) > 0.8).to(device)
    assert torch.equal(fn(mask, size, method="pool"), fn(mask, size, method="shift"))


@pytest.mark.parametrize("method", ["pool", "shift"])
def test_morphology_known_answers(method, device):
    m = torch.zeros(9, 9, dtype=torch.bool, device=device)
    m[4, 4] = True
    d = dilate(m, 3, method)
    assert d.sum() == 9 and d[3:6, 3:6].all()
    assert erode(d, 3, method).sum() == 1 and erode(d, 3, method)[4, 4]
    assert opening(m, 3, method).sum() == 0  # a speck goes
    ring = d.clone()
    ring[4, 4] = False
    assert torch.equal(closing(ring, 3, method), d)  # a hole is filled
    edge = torch.zeros(5, 5, dtype=torch.bool, device=device)
    edge[:, :2] = True
    assert torch.equal(erode(edge, 3, method)[:, 0], torch.ones(5, dtype=torch.bool, device=device))  # border kept


@pytest.mark.parametrize("kwargs, exception", [({"size": 4}, ValueError), ({"size": -1}, ValueError),
                                              ({"size": 3, "method": "max"}, ValueError)])
def test_morphology_bad_arguments(kwargs, exception):
    with pytest.raises(exception):
        dilate(torch.zeros(4, 4, dtype=torch.bool), **kwargs)


def test_clean_accepts_uint8_and_float():
    m = torch.zeros(10, 10, dtype=torch.uint8)
    m[2:8, 2:8] = 255
    m[0, 9] = 255
    out = clean(m, 3, 3)
    assert out.dtype == torch.bool and out.sum() == 36
    assert torch.equal(clean(m.float() / 255, 3, 3), out)


# ---- the running Gaussian ----
def run_model(model, frames, device, first_scored=20):
    ious = []
    for t, (img, gt) in enumerate(frames):
        fg, _ = model.apply(as_tensor(img, device))
        if t >= first_scored:
            ious.append(iou(fg[0].cpu().numpy(), gt))
    return float(np.mean(ious))


def test_moving_blobs_are_recovered(device):
    model = GaussianBackground(rate=0.02)
    assert run_model(model, blob_scene(50, start=12), device) > 0.85


def test_static_noisy_background_is_quiet(device):
    model = GaussianBackground()
    for t, (img, _) in enumerate(blob_scene(40, start=10 ** 6, noise=4.0)):
        fg, _ = model.apply(as_tensor(img, device))
    assert fg.float().mean() < 0.002


@pytest.mark.parametrize("shadows, expect_fg", [(True, False), (False, True)])
def test_darkened_region_is_a_shadow_not_foreground(shadows, expect_fg, device):
    model = GaussianBackground(shadows=shadows)
    bg = textured_background(80, 80)
    rng = np.random.default_rng(1)
    for _ in range(15):
        model.apply(as_tensor(np.clip(bg + rng.normal(0, 2, bg.shape), 0, 255).astype(np.uint8), device))
    dark = bg.astype(np.float32)
    dark[20:60, 20:60] *= 0.65
    fg, shadow = model.apply(as_tensor(np.clip(dark, 0, 255).astype(np.uint8), device))
    region = (slice(None), slice(22, 58), slice(22, 58))
    assert (fg[region].float().mean() > 0.9) == expect_fg
    if shadows:
        assert shadow[region].float().mean() > 0.9
    # a brighter or differently coloured patch is never a shadow
    odd = bg.copy()
    odd[20:60, 20:60] = (30, 220, 30)
    fg, shadow = model.apply(as_tensor(odd, device), learn=False)
    assert fg[region].float().mean() > 0.95 and shadow[region].float().mean() < 0.05


@pytest.mark.parametrize("absorb_min, early_ghost", [(20, True), (5, False)])
def test_ghost_of_an_object_in_the_first_frame_is_absorbed(absorb_min, early_ghost, device):
    # blobs present from frame 0 leave ghosts where they started, absorbed after absorb_frames of
    # stillness; young pixels absorb sooner (absorb_min), so early ghosts go faster
    frames = list(blob_scene(60, start=0))
    model = GaussianBackground(absorb_frames=20, absorb_min=absorb_min)
    ghost = frames[0][1] & ~frames[40][1]
    for t, (img, gt) in enumerate(frames):
        fg, _ = model.apply(as_tensor(img, device))
        if t == 12:
            assert (fg[0].cpu().numpy()[ghost & ~gt].mean() > 0.5) == early_ghost
    assert fg[0].cpu().numpy()[ghost & ~gt].mean() < 0.05
    assert iou(fg[0].cpu().numpy(), frames[-1][1]) > 0.85


def test_bad_model_arguments():
    for kwargs in ({"rate": 0}, {"threshold": -1}, {"shadow_ratio": 1.0}, {"var_min": 500.0}, {"absorb_frames": -1}):
        with pytest.raises(ValueError):
            GaussianBackground(**kwargs)


def test_batched_equals_single(device):
    frames = [img for img, _ in blob_scene(8, start=3)]
    single = [GaussianBackground(), GaussianBackground()]
    batched = GaussianBackground()
    for img in frames:
        a = single[0].apply(as_tensor(img, device))[0]
        b = single[1].apply(as_tensor(img[::-1].copy(), device))[0]
        both = batched.apply(torch.stack([as_tensor(img, device), as_tensor(img[::-1].copy(), device)]))[0]
        assert torch.equal(both, torch.cat([a, b]))


def test_downscale_is_area_average():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    assert torch.allclose(downscale(x, 0.5)[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    with pytest.raises(ValueError):
        downscale(x, 1.5)


# ---- moving camera ----
def test_warped_model_follows_a_panning_camera(device):
    big = textured_background(140, 220, seed=3)
    compensated, plain = GaussianBackground(), GaussianBackground()
    rng = np.random.default_rng(0)
    frac_c, frac_p = [], []
    for t in range(20):
        crop = np.clip(big[10:130, 10 + 2 * t:170 + 2 * t] + rng.normal(0, 2, (120, 160, 3)), 0, 255).astype(np.uint8)
        if t:
            cur_from_prev = np.array([[1, 0, -2.0], [0, 1, 0], [0, 0, 1]])  # content moves 2 px left
            compensated.warp(homography_grid(np.linalg.inv(cur_from_prev), 120, 160, device))
        fg_c, _ = compensated.apply(as_tensor(crop, device))
        fg_p, _ = plain.apply(as_tensor(crop, device))
        if t >= 3:
            frac_c.append(float(fg_c.float().mean()))
            frac_p.append(float(fg_p.float().mean()))
    assert max(frac_c) < 0.01
    assert np.mean(frac_p) > 0.1


def test_identity_grid_reproduces_the_image(device):
    img = torch.rand(1, 3, 12, 17, device=device)
    grid = homography_grid(np.eye(3), 12, 17, device)
    out = torch.nn.functional.grid_sample(img, grid, align_corners=False)
    assert torch.allclose(out, img, atol=1e-5)


def test_frame_motion_recovers_a_known_homography():
    import cv2

    img = cv2.cvtColor(textured_background(180, 240, seed=5), cv2.COLOR_BGR2GRAY)
    true = np.array([[1.01, 0.02, 3.0], [-0.015, 0.99, -2.0], [1e-5, -2e-5, 1.0]])
    moved = cv2.warpPerspective(img, true, (240, 180), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    motion = FrameMotion()
    assert motion.update(img) is None
    est = motion.update(moved)
    corners = np.array([[0, 0, 1], [239, 0, 1], [239, 179, 1], [0, 179, 1]], np.float64).T
    err = lambda h: (h @ corners)[:2] / (h @ corners)[2]
    assert np.abs(err(est) - err(true)).max() < 0.5
    assert motion.inlier_ratio > 0.5


def test_rescale_homography_matches_resized_frames():
    h_full = np.array([[1.0, 0, 8.0], [0, 1.0, -4.0], [0, 0, 1]])
    h_half = rescale_homography(h_full, 0.5)
    assert np.allclose(h_half, [[1, 0, 4.0], [0, 1, -2.0], [0, 0, 1]])


# ---- masks ----
def test_boxes_mask_and_conversions(device):
    m = boxes_mask(np.array([[2.0, 1.0, 5.0, 3.0]]), 6, 8, grow=1.0)
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 255}
    assert m[0:4, 1:6].all() and m.sum() == 255 * 4 * 5
    t = device_mask(m, device)
    assert t.dtype == torch.bool and t.sum() == 20
    assert np.array_equal(host_mask(t), m) and np.array_equal(host_mask(m > 0), m)
    assert host_mask(None) is None and boxes_mask(np.zeros((0, 4)), 3, 3).sum() == 0
