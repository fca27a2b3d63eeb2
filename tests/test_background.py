"""The `background` stage: backends on a synthetic static-camera scene, mask conventions,
motion compensation, box masks from detections, config validation."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from pipeline.frame import Detections, Frame, Plane
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.background import BackgroundStage
from test_segmentation import blob_scene, iou, textured_background


def make_stage(device="cpu", **raw) -> BackgroundStage:
    stage = BackgroundStage(build_or_raise(BackgroundStage.Params, raw, "stages[0]"))
    stage.setup(StageContext(device, SourceInfo("synthetic", 160, 120, 30.0, False), threading.Event(),
                             logging.getLogger("test")))
    return stage


def host(mask) -> np.ndarray:
    return mask if isinstance(mask, np.ndarray) else mask.cpu().numpy()


@pytest.mark.parametrize("raw, min_iou", [
    ({}, 0.8),
    ({"scale": 1.0}, 0.85),
    ({"backend": "mog2"}, 0.7),
    ({"backend": "knn"}, 0.7),
])
def test_backends_recover_moving_blobs(raw, min_iou, device):
    stage = make_stage(device if raw.get("backend", "torch") == "torch" else "cpu", **raw)
    scores = []
    for t, (img, gt) in enumerate(blob_scene(55, start=25)):
        frame = stage.process(Frame(t, t / 30, img))
        mask = host(frame.mask)
        assert mask.shape == (120, 160) and mask.dtype == np.uint8
        if t >= 30:
            scores.append(iou(mask > 0, gt))
    stage.close()
    assert np.mean(scores) > min_iou, np.mean(scores)
    assert set(np.unique(mask)) <= {0, 255}


def test_mask_convention_by_device(device):
    stage = make_stage(device)
    frame = stage.process(Frame(0, 0.0, textured_background(120, 160)))
    if device == "cpu":
        assert isinstance(frame.mask, np.ndarray)
    else:
        assert str(frame.mask.device).startswith("cuda") and str(frame.mask.dtype) == "torch.uint8"


def test_warmup_gives_empty_masks():
    stage = make_stage(warmup=20)
    for t, (img, gt) in enumerate(blob_scene(20, start=12)):
        assert stage.process(Frame(t, t / 30, img)).mask.max() == 0


def pan(n, step=4.0, blob=True):
    import cv2

    big = textured_background(200, 320, seed=7)
    rng = np.random.default_rng(2)
    for t in range(n):
        shift = np.array([[1, 0, -step * t], [0, 1, -0.5 * t], [0, 0, 1]])  # frame_from_world
        img = cv2.warpAffine(big, shift[:2], (160, 120), flags=cv2.INTER_LINEAR)
        gt = np.zeros((120, 160), bool)
        if blob and t >= 10:
            gt[40:80, 20 + 3 * (t - 10):40 + 3 * (t - 10)] = True
            img[gt] = (30, 220, 40)
        yield np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8), gt, shift


@pytest.mark.parametrize("compensate", ["homography", "plane"])
def test_motion_compensation_on_a_panning_camera(compensate, device):
    stage = make_stage(device, compensate=compensate, scale=1.0)
    plain = make_stage(device, scale=1.0)
    comp_scores, plain_scores = [], []
    for t, (img, gt, frame_from_world) in enumerate(pan(30)):
        frame = Frame(t, t / 30, img)
        frame.plane = Plane(frame_from_world, None, True, 1.0)
        mask = host(stage.process(frame).mask) > 0
        other = host(plain.process(Frame(t, t / 30, img)).mask) > 0
        if t >= 15:
            comp_scores.append(iou(mask, gt))
            plain_scores.append(iou(other, gt))
    assert np.mean(comp_scores) > 0.8, np.mean(comp_scores)
    assert np.mean(plain_scores) < np.mean(comp_scores) - 0.2  # uncompensated: the pan saturates the variance
    if compensate == "homography":
        assert stage.summary()["motion_lost"] == 0


def test_mask_from_detections():
    stage = make_stage(source="detections", classes=[0], min_score=0.5, grow=0.0)
    assert stage.reads == {"detections"}
    frame = Frame(0, 0.0, np.zeros((120, 160, 3), np.uint8))
    frame.detections = Detections(np.array([[10, 10, 20, 30], [50, 50, 60, 60], [70, 5, 80, 9]], np.float32),
                                  np.array([0.9, 0.9, 0.2]), np.array([0, 1, 0]))
    mask = stage.process(frame).mask
    assert mask[10:30, 10:20].all() and mask.sum() == 255 * 200
    frame.detections = None
    assert stage.process(frame).mask.sum() == 0


@pytest.mark.parametrize("raw, message", [
    ({"backend": "mog2", "compensate": "homography"}, "stages[0].compensate"),
    ({"open_size": 4}, "stages[0].open_size"),
    ({"scale": 0}, "stages[0].scale"),
    ({"backend": "gmm"}, "stages[0].backend"),
])
def test_bad_params_name_their_path(raw, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        build_or_raise(BackgroundStage.Params, raw, "stages[0]")


def test_mask_layer_tints_and_outlines_foreground():
    from stages.segmentation.draw import draw_mask

    canvas = np.full((40, 60, 3), 100, np.uint8)
    frame = Frame(0, 0.0, canvas.copy())
    frame.mask = np.zeros((40, 60), np.uint8)
    frame.mask[10:30, 20:40] = 255
    out = draw_mask(canvas.copy(), frame, {"color": (0, 0, 255), "alpha": 0.5})
    assert tuple(out[20, 30]) == (50, 50, 178) and tuple(out[2, 2]) == (100, 100, 100)
    assert tuple(out[10, 30]) != (50, 50, 178)  # outline on the border
    frame.mask = None
    assert np.array_equal(draw_mask(canvas.copy(), frame, {}), canvas)


@pytest.fixture(scope="module")
def street_clip():
    """60 frames of the generated street scene (static camera) with the union of the figures' masks."""
    import scenes

    out = []
    for img, truth in scenes.render_street(0, (640, 360), 60, noise=2.0, masks=True):
        gt = np.zeros(img.shape[:2], bool)
        for x0, y0, patch in truth.masks:
            h, w = patch.shape
            ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(640, x0 + w), min(360, y0 + h)
            if ix1 > ix0 and iy1 > iy0:
                gt[iy0:iy1, ix0:ix1] |= patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        out.append((img, gt))
    return out


def test_street_scene_figures_are_recovered_better_than_mog2(street_clip):
    scores = {}
    for name, raw in (("torch", {}), ("mog2", {"backend": "mog2"})):
        stage = make_stage(**raw)
        ious = []
        for t, (img, gt) in enumerate(street_clip):
            mask = stage.process(Frame(t, t / 30, img)).mask
            if t >= 30:  # every model is still learning the first second (figures stand in frame 0)
                ious.append(iou(mask > 0, gt))
        scores[name] = float(np.mean(ious))
    assert scores["torch"] > 0.55, scores
    assert scores["torch"] > scores["mog2"] + 0.03, scores


def test_canvas_host_and_torch_paths_agree():
    import torch

    from stages.segmentation.canvas import CanvasBackground
    from stages.segmentation.gaussian import GaussianBackground

    host, dev = CanvasBackground(GaussianBackground()), CanvasBackground(GaussianBackground())
    agree = []
    for t, (img, gt, frame_from_world) in enumerate(pan(25)):
        step = None if t == 0 else np.array([[1, 0, -4.0], [0, 1, -0.5], [0, 0, 1]])  # cur_from_prev
        a = host.apply(img, step)
        b = dev.apply(torch.from_numpy(img).permute(2, 0, 1)[None].float(), step)
        if t >= 12:
            agree.append(iou(a[0].numpy(), b[0].numpy()))
            assert iou(a[0].numpy(), gt) > 0.85
    assert np.mean(agree) > 0.95 and host.rebases == dev.rebases >= 1


def test_traced_step_equals_eager(device):
    """The default trace (classify + learn + clean as one call) keeps the eager masks and model."""
    traced, eager = make_stage(device), make_stage(device, trace=False)
    for t, (img, _) in enumerate(blob_scene(40, start=25)):
        a = traced.process(Frame(t, t / 30, img)).mask
        b = eager.process(Frame(t, t / 30, img.copy())).mask
        np.testing.assert_array_equal(host(a), host(b))
    np.testing.assert_allclose(host(traced.model.state), host(eager.model.state), rtol=0, atol=1e-3)
    assert traced.summary()["trace"] == "1 traced" and "trace" not in eager.summary()


def test_max_width_caps_the_processing_scale(device):
    """max_width: a frame wider than max_width / scale is processed at max_width / width (the same
    masks as that scale given directly); narrower frames keep `scale`."""
    capped, direct = make_stage(device, max_width=40), make_stage(device, scale=0.25)
    loose, plain = make_stage(device, max_width=80), make_stage(device)
    scores = []
    for t, (img, gt) in enumerate(blob_scene(40, start=25)):
        a, b = (host(s.process(Frame(t, t / 30, img.copy())).mask) for s in (capped, direct))
        c, d = (host(s.process(Frame(t, t / 30, img.copy())).mask) for s in (loose, plain))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, d)
        assert a.shape == (120, 160)
        if t >= 30:
            scores.append(iou(a > 0, gt))
    assert capped.model.state.shape[-1] == 40 and loose.model.state.shape[-1] == 80
    assert np.mean(scores) > 0.6, np.mean(scores)
