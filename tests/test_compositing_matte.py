"""The occluder matte (stages.compositing.matte): a synthetic person in front of a poster, with the
foreground mask off by a pixel the way a background model's is (grown, shrunk, blocky from half
resolution). After compositing with the guided matte no rim wider than 1 px shows around the
person: neither the old poster beside them nor the ad over them; the plain feathered mask leaves
one. The OpenCV and torch filters agree."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stages.compositing.composite import composite_cv2, composite_torch
from stages.compositing.matte import GuidedMatte, guided_matte_cv2, guided_matte_torch

H, W = 120, 160
AD_BGR = (255, 0, 0)


def person_scene(seed: int = 0):
    """(frame BGR uint8, person (H,W) uint8 0/1): a light poster with a faint stripe texture and
    sensor noise; a dark head-and-shoulders figure in front of it, hard-edged (known outline)."""
    rng = np.random.default_rng(seed)
    frame = np.empty((H, W, 3), np.float32)
    frame[:] = (150, 175, 200)
    frame[:, (np.arange(W) // 6) % 2 == 1] += 12  # poster texture, weaker than the figure's edge
    person = np.zeros((H, W), np.uint8)
    cv2.ellipse(person, (80, 35), (14, 17), 0, 0, 360, 1, -1)
    cv2.rectangle(person, (58, 50), (102, H - 1), 1, -1)
    frame[person > 0] = (70, 60, 50)
    frame = np.clip(frame + rng.normal(0.0, 2.0, frame.shape), 0, 255).astype(np.uint8)
    return frame, person


def off_masks(person: np.ndarray):
    """Masks that miss the outline by about a pixel, as 0/255 uint8."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    half = cv2.resize(cv2.dilate(person, disc), (W // 2, H // 2), interpolation=cv2.INTER_NEAREST)
    return {"grown 1 px": cv2.dilate(person, disc) * 255, "shrunk 1 px": cv2.erode(person, disc) * 255,
            "blocky (half resolution)": cv2.resize(half, (W, H), interpolation=cv2.INTER_NEAREST) * 255,
            "shifted 2 px right": np.roll(person, 2, 1) * 255, "shifted 1 px down-right": np.roll(person, (1, 1), (0, 1)) * 255}


def composite(frame, mask, backend: str, device: str, **kw):
    """Opaque ad over the whole frame, hidden by the mask; returns the ad's coverage (H,W) in [0,1]."""
    ad = np.zeros((H, W, 4), np.uint8)
    ad[:] = (*AD_BGR, 255)
    roi = (0, 0, W, H)
    if backend == "opencv":
        _, cov = composite_cv2(frame, ad, np.eye(3), roi, None, mask, **kw)
        return cov / 255.0
    image = torch.from_numpy(frame).permute(2, 0, 1).to(device)
    ad_t = torch.from_numpy(ad).permute(2, 0, 1).to(device, torch.float32) / 255.0
    _, cov = composite_torch(image, ad_t, np.eye(3), roi, None, torch.from_numpy(mask).to(device), **kw)
    return cov.cpu().numpy()


def rims(cov: np.ndarray, person: np.ndarray) -> tuple[int, int]:
    """Pixels more than 1 px outside the person where the old surface dominates (coverage < 0.5),
    and more than 1 px inside where the ad does (coverage > 0.5)."""
    outside = cv2.distanceTransform(1 - person, cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(person, cv2.DIST_L2, 5)
    return int(((cov < 0.5) & (outside > 1)).sum()), int(((cov > 0.5) & (inside > 1)).sum())


@pytest.mark.parametrize("case", ["grown 1 px", "shrunk 1 px", "blocky (half resolution)", "shifted 2 px right",
                                  "shifted 1 px down-right"])
@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_no_rim_wider_than_a_pixel_around_a_person(case, backend, device):
    frame, person = person_scene()
    mask = off_masks(person)[case]
    cov = composite(frame, mask, backend, device, matte=GuidedMatte())
    assert rims(cov, person) == (0, 0)
    # away from the outline the matte is the mask: the ad in full, the person untouched
    outside = cv2.distanceTransform(1 - person, cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(person, cv2.DIST_L2, 5)
    assert cov[outside > 3].min() > 0.97 and cov[inside > 3].max() < 0.03


@pytest.mark.parametrize("case", ["blocky (half resolution)", "shifted 2 px right", "shifted 1 px down-right"])
def test_the_feathered_mask_leaves_a_rim(case):
    """What the guided matte fixes: blurring the mask's edge keeps the mask's error (and widens it)."""
    frame, person = person_scene()
    old, over = rims(composite(frame, off_masks(person)[case], "opencv", "cpu", feather=1.5), person)
    assert old >= 10


def test_a_mask_grown_by_two_pixels_leaves_a_much_narrower_rim():
    """Grown by 2 px all round, the mask fills the corners between head and shoulders more than
    the windows can outvote; what is left there is a fraction of the feathered mask's rim."""
    frame, person = person_scene()
    grown = cv2.dilate(person, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) * 255
    guided, _ = rims(composite(frame, grown, "opencv", "cpu", matte=GuidedMatte()), person)
    feathered, _ = rims(composite(frame, grown, "opencv", "cpu", feather=1.5), person)
    assert guided * 5 < feathered


def test_opencv_and_torch_mattes_agree(device):
    frame, person = person_scene(seed=3)
    mask = off_masks(person)["blocky (half resolution)"]
    for sub in (1, 2):
        matte = GuidedMatte(radius=4, subsample=sub)
        ref = guided_matte_cv2(frame[:, 1:], mask[:, 1:], matte)  # odd width: the padded path
        out = guided_matte_torch(torch.from_numpy(np.ascontiguousarray(frame[:, 1:])).permute(2, 0, 1).to(device),
                                 torch.from_numpy(np.ascontiguousarray(mask[:, 1:])).to(device), matte)
        assert np.abs(out.cpu().numpy() - ref).max() < 0.03


def test_matte_is_the_mask_away_from_edges_and_empty_without_one():
    frame, person = person_scene()
    matte = GuidedMatte()
    q = guided_matte_cv2(frame, person * 255, matte)
    far = cv2.distanceTransform(1 - person, cv2.DIST_L2, 5) > matte.reach
    deep = cv2.distanceTransform(person, cv2.DIST_L2, 5) > matte.reach
    assert (q[far] == 0).all() and np.allclose(q[deep], 1.0, atol=1e-4)
    assert not guided_matte_cv2(frame, np.zeros((H, W), np.uint8), matte).any()
    assert q.dtype == np.float32 and q.min() >= 0 and q.max() <= 1


@pytest.mark.parametrize("kwargs, message", [({"radius": 0}, "radius"), ({"eps": 0.0}, "eps"),
                                             ({"contrast": 0.5}, "contrast"), ({"subsample": 3}, "subsample")])
def test_bad_matte_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GuidedMatte(**kwargs)
