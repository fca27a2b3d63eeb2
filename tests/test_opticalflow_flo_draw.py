"""Middlebury .flo I/O and the colour code / arrows / annotate flow layer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared_path
from pipeline.frame import Frame
from stages.opticalflow import flo
from stages.opticalflow.draw import color_wheel, draw_arrows, draw_flow, flow_to_color


def test_flo_round_trip_and_layout(tmp_path):
    rng = np.random.default_rng(0)
    f = rng.normal(0, 3, (5, 7, 2)).astype(np.float32)
    f[1, 2] = [2e9, 0]
    path = flo.write_flo(tmp_path / "a" / "x.flo", f)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH" and np.frombuffer(raw[:4], "<f4")[0] == 202021.25
    assert tuple(np.frombuffer(raw[4:12], "<i4")) == (7, 5)                 # width, height
    assert np.frombuffer(raw[12:20], "<f4").tolist() == f[0, 0].tolist()   # u, v interleaved
    back = flo.read_flo(path)
    np.testing.assert_array_equal(back, f)
    assert flo.known_mask(back).sum() == 34 and not flo.known_mask(back)[1, 2]
    # (2,H,W) arrays and tensors are written the same
    flo.write_flo(tmp_path / "b.flo", torch.from_numpy(np.moveaxis(f, -1, 0)))
    assert (tmp_path / "b.flo").read_bytes() == raw


@pytest.mark.parametrize("data,match", [(b"PIEX" + bytes(8), "not a Middlebury"),
                                        (b"PIEH" + np.array([4, 4], "<i4").tobytes() + bytes(8), "truncated"),
                                        (b"PIEH" + np.array([-1, 4], "<i4").tobytes(), "implausible")])
def test_flo_rejects_bad_files(tmp_path, data, match):
    (tmp_path / "bad.flo").write_bytes(data)
    with pytest.raises(ValueError, match=match):
        flo.read_flo(tmp_path / "bad.flo")


def test_reads_shared_ground_truth():
    gt = flo.read_flo(shared_path("data", "flow", "RubberWhale", "flow10.flo"))
    assert gt.shape == (388, 584, 2)
    known = flo.known_mask(gt)
    assert 0.98 < known.mean() < 0.99                                 # SOURCES.md: 98.4% valid
    assert abs(np.linalg.norm(gt[known], axis=1).mean() - 1.26) < 0.01


def test_color_wheel_is_middleburys():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_array_equal(wheel[0], [255, 0, 0])      # red
    np.testing.assert_array_equal(wheel[15], [255, 255, 0])   # yellow
    np.testing.assert_array_equal(wheel[21], [0, 255, 0])     # green
    np.testing.assert_array_equal(wheel[25], [0, 255, 255])   # cyan
    np.testing.assert_array_equal(wheel[36], [0, 0, 255])     # blue
    np.testing.assert_array_equal(wheel[49], [255, 0, 255])   # magenta


def test_flow_to_color_known_values():
    f = np.zeros((1, 5, 2), np.float32)
    f[0, 1] = [-1, 0]       # left, full magnitude: wheel index 27 (between cyan and blue)
    f[0, 2] = [0.5, 0]      # right, half magnitude: red, half-saturated
    f[0, 3] = [2e9, 0]      # unknown: black
    f[0, 4] = [0, -2]       # up, beyond max: darkened
    bgr = flow_to_color(f, max_flow=1.0)
    rgb = bgr[..., ::-1]
    assert rgb[0, 0].tolist() == [255, 255, 255]               # no motion: white
    w = color_wheel()
    assert rgb[0, 1].tolist() == np.floor(w[27]).astype(int).tolist()
    assert rgb[0, 2].tolist() == [255, 127, 127]
    assert rgb[0, 3].tolist() == [0, 0, 0]
    k = 0.75 * 54                                               # (atan2(2, -0) / pi + 1) / 2 = 0.75
    mix = ((1 - (k % 1)) * w[int(k)] + (k % 1) * w[int(k) + 1]) / 255
    expect = np.floor(255 * (mix * 0.75))
    assert rgb[0, 4].tolist() == expect.astype(int).tolist()
    # default normalisation: the largest known magnitude
    assert (flow_to_color(f[:, :3]) == flow_to_color(f[:, :3], max_flow=1.0)).all()


def test_arrows_point_along_the_flow():
    canvas = np.zeros((64, 64, 3), np.uint8)
    f = np.zeros((2, 16, 16), np.float32)
    f[0] = 4.0                                                   # 4 px right everywhere (canvas pixels)
    draw_arrows(canvas, f, step=32, scale=2.0, color=(0, 255, 0))
    ys, xs = np.nonzero(canvas[..., 1])
    assert xs.min() >= 16 - 1 and xs.max() <= 16 + 8 + 1 + 32  # shafts from x=16 and x=48, 8 px long
    assert set(np.unique(ys)) <= set(range(12, 21)) | set(range(44, 53))


def _frame(shape=(48, 64)):
    return Frame(0, 0.0, np.full((*shape, 3), 100, np.uint8))


def test_draw_flow_layer(device):
    frame = _frame()
    canvas = frame.image.copy()
    assert draw_flow(canvas, frame, {}) is None and (canvas == 100).all()   # no flow: nothing drawn
    flow = torch.zeros(2, 12, 16, device=device)
    flow[0] = 3.0                                                # a quarter-scale field
    frame.flow = flow
    frame.meta["flow_scale"] = 0.25
    draw_flow(canvas, frame, {"alpha": 1.0, "max_flow": 3.0})
    assert canvas[20, 30].tolist() == [0, 0, 255]               # rightwards at full saturation: red (BGR)
    half = frame.image.copy()
    draw_flow(half, frame, {"alpha": 1.0, "max_flow": 6.0})     # half the saturation, half the weight
    assert np.abs(half[20, 30].astype(int) - [113.5, 113.5, 177.5]).max() <= 0.5  # 0.5 (127,127,255) + 0.5 100
    frame.flow = torch.zeros(2, 12, 16, device=device)
    still = frame.image.copy()
    draw_flow(still, frame, {})                                 # no motion: the picture is untouched
    assert (still == 100).all()
    draw_flow(still, frame, {"blend": "uniform", "alpha": 1.0})
    assert (still == 255).all()                                 # ... unless asked: Middlebury's white
    frame.flow = flow
    both = frame.image.copy()
    draw_flow(both, frame, {"mode": "both", "alpha": 0.0, "arrow_color": (255, 0, 0)})
    assert (both[..., 0] > 100).any()
    with pytest.raises(ValueError, match="mode"):
        draw_flow(canvas, frame, {"mode": "hsv"})


def test_flow_layer_is_registered():
    from stages.annotate import LAYERS, resolve_layer

    assert "flow" in LAYERS and resolve_layer("flow") is draw_flow
