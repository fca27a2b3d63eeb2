"""pipeline.priming: stages that trace per frame size (flow, background) make their traces in
setup() from synthetic frames of the source's size, then start from a clean state: the real
frames give exactly what an unprimed stage gives."""
from __future__ import annotations

import logging
import threading

import numpy as np

from pipeline.frame import Frame
from pipeline.params import build_or_raise
from pipeline.priming import synthetic_frames
from pipeline.stage import SourceInfo, StageContext
from stages.background import BackgroundStage
from stages.flow import FlowParams, FlowStage
from test_flow import clip
from test_segmentation import blob_scene


def setup(stage, device, size):
    w, h = size
    stage.setup(StageContext(device, SourceInfo("t", w, h, 30.0, False), threading.Event(), logging.getLogger("t")))
    return stage


def host(a):
    return a if isinstance(a, np.ndarray) else a.cpu().numpy()


def test_synthetic_frames_move_one_pixel_right():
    frames = synthetic_frames(40, 24, 3)
    assert [f.index for f in frames] == [0, 1, 2]
    for a, b in zip(frames, frames[1:]):
        assert a.image.shape == (24, 40, 3) and a.image.dtype == np.uint8 and a.image.std() > 5
        np.testing.assert_array_equal(b.image[:, 1:], a.image[:, :-1])


def test_flow_traces_in_setup_and_forgets_the_synthetic_frames(device):
    primed = setup(FlowStage(build_or_raise(FlowParams, {"device": device, "scale": 0.5})), device, (128, 96))
    assert primed.summary()["trace"] == "2 traced" and primed.summary()["pairs"] == 0   # before any frame
    plain = setup(FlowStage(build_or_raise(FlowParams, {"device": device, "scale": 0.5})), device, (8, 8))
    assert plain.summary()["trace"] == "0 traced"                        # too small to prime: no trace yet
    for i, im in enumerate(clip(5, d=(1.0, 0.5))):
        a, b = primed.process(Frame(i, i / 30, im)), plain.process(Frame(i, i / 30, im.copy()))
        assert (a.flow is None) == (b.flow is None) == (i == 0)           # the first real frame has no pair
        if i:
            np.testing.assert_array_equal(host(a.flow), host(b.flow))
    assert primed.summary()["pairs"] == 4 and primed.summary()["trace"] == "2 traced"


def test_background_traces_in_setup_and_starts_a_fresh_model(device):
    primed = setup(BackgroundStage(build_or_raise(BackgroundStage.Params, {})), device, (160, 120))
    assert primed.summary()["trace"] == "1 traced" and primed.model.state is None
    plain = setup(BackgroundStage(build_or_raise(BackgroundStage.Params, {})), device, (8, 8))
    for t, (img, _) in enumerate(blob_scene(30, start=20)):
        a = primed.process(Frame(t, t / 30, img)).mask
        b = plain.process(Frame(t, t / 30, img.copy())).mask
        np.testing.assert_array_equal(host(a), host(b))
