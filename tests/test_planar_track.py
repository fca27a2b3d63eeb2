"""The planar_track stage (params, reference frame / reference image, masks) and its draw layer."""
from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest

from pipeline.frame import Frame, Plane
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.planar.draw import draw_plane
from stages.planar.homography import corner_errors
from stages.planar.synthetic import make_sequence
from stages.planar_track import PlanarTrackParams, PlanarTrackStage


@pytest.fixture(scope="module")
def seq():
    return make_sequence(n=24, size=(320, 240), amplitude=0.4, shake=1.0, occluder=True, seed=9)


def _stage(raw: dict) -> PlanarTrackStage:
    stage = PlanarTrackStage(build_or_raise(PlanarTrackParams, raw, "stages[0]"))
    info = SourceInfo("synthetic", 320, 240, 25.0, False, 24)
    stage.setup(StageContext("cpu", info, threading.Event(), logging.getLogger("test")))
    return stage


def _frames(seq, masks=False, torch_masks=False):
    for i, img in enumerate(seq.frames):
        frame = Frame(i, i / 25.0, img.copy())
        if masks:
            frame.mask = seq.masks[i]
            if torch_masks:
                import torch

                frame.mask = torch.from_numpy(seq.masks[i] > 0)
        yield frame


@pytest.mark.parametrize("raw, message", [
    ({}, "exactly one of corners"),
    ({"corners": [[0, 0], [1, 0], [1, 1]]}, "expected 4"),
    ({"corners": [[0, 0], [9, 0], [9, 9], [0, 9]], "reference_image": "x.png"}, "exactly one"),
    ({"reference_image": "/nonexistent/poster.png"}, "file not found"),
    ({"corners": [[0, 0], [9, 0], [9, 9], [0, 9]], "lk_window": 20}, "lk_window: expected an odd"),
    ({"corners": [[0, 0], [9, 0], [9, 9], [0, 9]], "detector": "surf"}, "detector: expected one of"),
    ({"corners": [[0, 0], [9, 0], [9, 9], [0, 9]], "ratio": 1.5}, "ratio: expected 0 < x <= 1"),
])
def test_params_errors_name_their_path(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_or_raise(PlanarTrackParams, raw, "stages[0]")
    assert str(info.value).startswith("stages[0].")


def test_declares_plane_and_optional_mask():
    assert PlanarTrackStage.writes == {"plane"} and PlanarTrackStage.optional_reads == {"mask"}
    assert PlanarTrackStage.reads == frozenset()


@pytest.mark.parametrize("torch_masks", [False, True])
def test_tracks_from_the_reference_frame_on(seq, torch_masks):
    if torch_masks:
        pytest.importorskip("torch")
    start = 3
    corners = seq.corners[start].tolist()
    stage = _stage({"corners": corners, "reference_frame": start, "smoothing": "none"})
    out = [stage.process(f) for f in _frames(seq, masks=True, torch_masks=torch_masks)]
    stage.close()
    assert all(f.plane is not None and not f.plane.valid and f.plane.corners is None for f in out[:start])
    tracked = out[start:]
    assert all(f.plane.valid for f in tracked)
    got = np.array([f.plane.corners for f in tracked])
    assert corner_errors(got, seq.corners[start:]).max() < 0.6  # an occluder hides half the poster at times
    # frame_from_ref maps the reference corners onto this frame's corners
    H = tracked[-1].plane.frame_from_ref
    ref = np.array(corners, np.float64)
    proj = cv2.perspectiveTransform(ref[None], H)[0]
    assert np.abs(proj - got[-1]).max() < 1e-3
    assert stage.summary()["valid"] == len(tracked)


def test_reference_image_is_found_by_matching(seq, tmp_path):
    path = tmp_path / "poster.png"
    cv2.imwrite(str(path), seq.poster)
    stage = _stage({"reference_image": str(path), "smoothing": "none"})
    out = [stage.process(f) for f in _frames(seq, masks=True)]
    assert all(f.plane.valid for f in out)
    assert corner_errors(np.array([f.plane.corners for f in out]), seq.corners).max() < 0.5


def test_draw_plane_outlines_valid_and_lost_planes():
    canvas = np.zeros((120, 160, 3), np.uint8)
    frame = Frame(0, 0.0, canvas.copy())
    assert np.array_equal(draw_plane(canvas.copy(), frame, {}), canvas)      # no plane: nothing drawn
    corners = np.float32([[20, 30], [140, 30], [140, 100], [20, 100]])
    frame.plane = Plane(np.eye(3), corners, True, 0.87)
    drawn = draw_plane(canvas.copy(), frame, {"thickness": 2, "label": False})
    assert drawn[30, 80, 1] > 200 and drawn[30, 80, 2] < 50                  # green edge, valid
    assert not drawn[65, 80].any()                                             # inside untouched
    frame.plane = Plane(np.eye(3), corners, False, 0.1)
    lost = draw_plane(canvas.copy(), frame, {"label": False})
    assert lost[30, 80, 2] > 200 and lost[30, 80, 1] < 50                    # red when invalid
