"""The `placement` stage: nothing drawn without a valid plane, the ad where the plane says and
hidden behind the mask, colour and sharpness matched, backends agreeing, and the visible-ad IoU
on a generated billboard scene (background stage + true planes) above 0.95."""
from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest

from pipeline.frame import Frame, Plane
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.compositing.ad import make_example_ad
from stages.compositing.evaluate import drawn_region, evaluate_placement, iou, quad_mask, visible_truth
from stages.compositing.geometry import quad_homography
from stages.placement import PlacementStage
from test_segmentation import textured_background

CORNERS = np.array([[60.0, 40.0], [250.0, 50.0], [245.0, 170.0], [65.0, 160.0]], np.float32)


@pytest.fixture
def ad_path(tmp_path):
    path = tmp_path / "ad.png"
    cv2.imwrite(str(path), make_example_ad(160, 100, opaque=True))
    return str(path)


def make_stage(ad_path, device="cpu", **raw) -> PlacementStage:
    stage = PlacementStage(build_or_raise(PlacementStage.Params, {"image": ad_path, **raw}, "stages[3]"))
    stage.setup(StageContext(device, SourceInfo("synthetic", 320, 240, 30.0, False), threading.Event(),
                             logging.getLogger("test")))
    return stage


def frame_with_plane(image, corners=CORNERS, valid=True, index=0, shift=(0.0, 0.0)):
    frame = Frame(index, index / 30, image)
    moved = corners + np.float32(shift)
    frame.plane = Plane(quad_homography(corners, moved), moved, valid, 1.0)  # reference = frame 0
    return frame


def test_nothing_is_drawn_while_the_plane_is_invalid(ad_path):
    stage = make_stage(ad_path)
    image = textured_background(240, 320)
    for plane_valid in (False, None):
        frame = Frame(0, 0.0, image)
        frame.plane = None if plane_valid is None else Plane(np.eye(3), CORNERS, False, 0.0)
        out = stage.process(frame)
        assert out.image is image and out.meta["placement"] == {"drawn": False}
    assert stage.last_coverage is None and stage.summary() == {"drawn": 0, "skipped": 2}


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_the_ad_covers_the_surface_and_hides_behind_the_mask(ad_path, backend, device):
    stage = make_stage(ad_path, device if backend == "torch" else "cpu", backend=backend)
    image = textured_background(240, 320)
    frame = frame_with_plane(image)
    mask = np.zeros((240, 320), np.uint8)
    mask[60:200, 120:150] = 255
    frame.mask = mask
    out = stage.process(frame)
    drawn = drawn_region(stage.last_coverage, 240, 320)
    assert iou(drawn, visible_truth(CORNERS, mask > 0)) > 0.97
    result = out.image
    assert np.array_equal(result[:, 290:], image[:, 290:])  # away from the surface: untouched
    assert np.array_equal(result[80:150, 128:142], image[80:150, 128:142])  # behind the person: untouched
    assert np.abs(result[100, 100].astype(int) - image[100, 100].astype(int)).sum() > 0


def test_backends_agree(ad_path, device):
    image = textured_background(240, 320, seed=3)
    outs = []
    for backend in ("opencv", "torch"):
        stage = make_stage(ad_path, device if backend == "torch" else "cpu", backend=backend, image=ad_path)
        for t in range(3):  # a few frames so that colour stats and the blur fit take part
            frame = frame_with_plane(image, index=t, shift=(2.0 * t, 0.0))
            out = stage.process(frame).image
        outs.append(out.astype(int))
    assert np.abs(outs[0] - outs[1]).max() <= 4 and np.abs(outs[0] - outs[1]).mean() < 0.1


def test_colour_follows_the_surface(ad_path):
    bright, dark = textured_background(240, 320), (textured_background(240, 320) * 0.4).astype(np.uint8)
    inside = quad_mask(CORNERS, 240, 320)
    means = {}
    for name, image, strength in (("plain", dark, 0.0), ("matched", dark, 1.0), ("bright", bright, 1.0)):
        stage = make_stage(ad_path, color_strength=strength, follow_lighting=False, match_sharpness=False)
        means[name] = stage.process(frame_with_plane(image)).image[inside].mean()
    assert means["matched"] < means["plain"] - 20  # pulled down to the dark surface
    assert means["bright"] > means["matched"] + 20


def test_lighting_change_is_followed(ad_path):
    stage = make_stage(ad_path, color_strength=0.0, color_smoothing=0.0, match_sharpness=False)
    image = textured_background(240, 320)
    inside = quad_mask(CORNERS, 240, 320)
    first = stage.process(frame_with_plane(image, index=0)).image[inside].mean()
    later = stage.process(frame_with_plane((image * 0.6).astype(np.uint8), index=1)).image[inside].mean()
    assert later < first - 15


def test_blurred_surface_blurs_the_ad(ad_path):
    image = textured_background(240, 320, seed=6)
    stage = make_stage(ad_path, blur_every=1)
    stage.process(frame_with_plane(image, index=0))
    for t in range(1, 6):
        stage.process(frame_with_plane(cv2.GaussianBlur(image, (0, 0), 2.0), index=t))
    sigma = stage.process(frame_with_plane(cv2.GaussianBlur(image, (0, 0), 2.0), index=6)).meta["placement"]["blur_sigma"]
    assert 1.2 < sigma < 3.0
    sharp = make_stage(ad_path, blur_every=1)
    for t in range(7):
        meta = sharp.process(frame_with_plane(image, index=t)).meta["placement"]
    assert meta["blur_sigma"] < 0.5


@pytest.fixture
def rounded_ad_path(tmp_path):
    """A red 160x80 ad whose 14x14 corners are transparent (a rounded panel, squared off)."""
    ad = np.zeros((80, 160, 4), np.uint8)
    ad[:] = (0, 0, 255, 255)
    for ys in (slice(0, 14), slice(66, 80)):
        for xs in (slice(0, 14), slice(146, 160)):
            ad[ys, xs, 3] = 0
    path = tmp_path / "rounded.png"
    cv2.imwrite(str(path), ad)
    return str(path)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
@pytest.mark.parametrize("fill, backdrop", [("color", (255, 0, 0)), ("edge", (0, 0, 255)), ("none", None)])
def test_backdrop_covers_the_whole_surface(rounded_ad_path, fill, backdrop, backend, device):
    """Inside the surface but outside the ad's alpha (its transparent corners, the margins that
    `contain` leaves above and below a 2:1 ad on this ~1.6:1 surface) the backdrop is drawn and
    nothing of the old (green) surface shows; `fill: none` keeps the old behaviour."""
    old = np.zeros((240, 320, 3), np.uint8)
    old[:] = (0, 200, 0)
    stage = make_stage(rounded_ad_path, device if backend == "torch" else "cpu", backend=backend, fit="contain",
                       fill=fill, fill_color=[255, 0, 0], color_strength=0.0, follow_lighting=False,
                       match_sharpness=False)
    out = stage.process(frame_with_plane(old)).image
    out = out if isinstance(out, np.ndarray) else out.permute(1, 2, 0).cpu().numpy()
    interior = cv2.erode(quad_mask(CORNERS, 240, 320).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    pixels = out[interior].astype(int)
    red = (np.abs(pixels - (0, 0, 255)).max(1) <= 3).sum()
    assert red > 0.5 * len(pixels)  # the ad
    if backdrop is None:
        assert (np.abs(pixels - (0, 200, 0)).max(1) <= 3).sum() > 0.1 * len(pixels)  # old surface in the margins
        return
    assert pixels[:, 1].max() <= 3  # no green at all: nothing of the old surface, even mixed in
    filled = (np.abs(pixels - backdrop).max(1) <= 3).sum()
    assert filled == len(pixels) if fill == "edge" else filled > 0.1 * len(pixels)
    assert stage.pyramid.width > 160 or stage.pyramid.height > 80  # a panel larger than the ad is drawn


@pytest.mark.parametrize("raw, message", [({"fit": "fill"}, "stages[3].fit"), ({"opacity": 2}, "stages[3].opacity"),
                                          ({"feather": -1}, "stages[3].feather"), ({"fill": "paint"}, "stages[3].fill"),
                                          ({"fill_color": [0, 300, 0]}, "stages[3].fill_color"),
                                          ({"matte": "soft"}, "stages[3].matte"), ({"matte_radius": 0}, "stages[3].matte_radius")])
def test_bad_params_name_their_path(raw, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        build_or_raise(PlacementStage.Params, raw, "stages[3]")


def test_missing_ad_is_a_config_error(tmp_path):
    """Caught when the config is checked (`vidpipe validate`, exit 2), not as a crash in setup."""
    with pytest.raises(ConfigError, match=r"stages\[3\]\.image: file not found: .*none\.png"):
        build_or_raise(PlacementStage.Params, {"image": str(tmp_path / "none.png")}, "stages[3]")


def test_unreadable_ad_fails_at_setup(tmp_path):
    (tmp_path / "bad.png").write_text("not a picture")
    stage = PlacementStage(build_or_raise(PlacementStage.Params, {"image": str(tmp_path / "bad.png")}))
    with pytest.raises(ValueError, match="bad.png"):
        stage.setup(StageContext("cpu", SourceInfo("x", 8, 8, 30.0, False), threading.Event(), logging.getLogger()))


def test_visible_ad_iou_on_a_generated_billboard_scene(device):
    """The ad hides behind the figures as the poster would: IoU of the drawn region with the
    truth (poster minus figures) >= 0.95 over a generated clip with a moving camera."""
    import scenes

    clip = list(scenes.render_billboard(0, (320, 180), 120, noise=2.0))
    result = evaluate_placement([c[0] for c in clip], [c[1] for c in clip], device=device,
                                background={"compensate": "homography", "shadows": False, "scale": 1.0})
    assert result["mean_iou"] >= 0.95, result["mean_iou"]
    assert result["pooled_iou"] >= 0.95 and not result["invalid_frames"]


@pytest.mark.parametrize("argv, message", [
    (["--scene", "no_such_scene"], "error: --scene no_such_scene: not a written billboard scene"),
    (["--size", "640"], "error: --size: expected WIDTHxHEIGHT, e.g. 640x360, got '640'"),
    (["--frames", "0"], "error: --frames: expected >= 1, got 0"),
])
def test_eval_placement_mistakes_are_one_line(capsys, argv, message):
    from pipeline.cli import main

    assert main(["eval", "placement", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
