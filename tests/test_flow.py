"""The `flow` stage: params from YAML, working scale and units, warm start, first-frame and reset
rules, per-box statistics (against brute force), every method, device placement."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from flowgen import grid, pattern
from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.flow import FlowParams, FlowStage, box_flow_stats, full_resolution_flow

H, W = 96, 128
D = (1.6, -0.8)  # full-resolution pixels per frame


def clip(n: int, d=D, h=H, w=W):
    xs, ys = grid(h, w)
    out = []
    for t in range(n):
        g = np.clip(np.round(pattern(xs - t * d[0], ys - t * d[1])), 0, 255).astype(np.uint8)
        out.append(np.repeat(g[..., None], 3, 2))
    return out


def make(raw: dict, device: str = "cpu") -> FlowStage:
    stage = FlowStage(build_or_raise(FlowParams, {"device": device, **raw}))
    stage.setup(StageContext(device, SourceInfo("test", W, H, 30.0, False), threading.Event(), logging.getLogger("t")))
    return stage


def host(flow) -> np.ndarray:
    return flow.detach().cpu().numpy() if torch.is_tensor(flow) else flow


def test_working_scale_units_and_first_frame(device):
    stage = make({"scale": 0.5}, device)
    frames = [Frame(i, i / 30, im) for i, im in enumerate(clip(6))]
    first = stage.process(frames[0])
    assert first.flow is None and "flow_scale" not in first.meta
    for f in frames[1:]:
        stage.process(f)
    last = frames[-1]
    flow = host(last.flow)
    assert flow.shape == (2, H // 2, W // 2) and flow.dtype == np.float32
    assert last.meta["flow_scale"] == 0.5 and last.meta["flow_method"] == "horn_schunck"
    if device == "cpu":
        assert isinstance(last.flow, np.ndarray)
    else:
        assert last.flow.device.type == "cuda"
    inner = flow[:, 6:-6, 6:-6]                                  # values in full-resolution pixels
    assert np.abs(inner.mean((1, 2)) - D).max() < 0.05
    full = host(full_resolution_flow(last))
    assert full.shape == (2, H, W) and np.abs(full[:, 12:-12, 12:-12].mean((1, 2)) - D).max() < 0.05
    assert stage.summary()["pairs"] == 5


def test_output_full(device):
    stage = make({"scale": 0.5, "output": "full"}, device)
    frames = [Frame(i, i / 30, im) for i, im in enumerate(clip(3))]
    for f in frames:
        stage.process(f)
    assert tuple(frames[-1].flow.shape) == (2, H, W) and frames[-1].meta["flow_scale"] == 1.0


def test_warm_start_converges_faster():
    errs = {}
    for warm in (True, False):
        stage = make({"scale": 0.5, "warm_start": warm, "horn_schunck": {"iterations": 5, "levels": 1, "alpha": 8.0}})
        frames = [Frame(i, i / 30, im) for i, im in enumerate(clip(6, d=(0.6, 0.3)))]
        for f in frames:
            stage.process(f)
        errs[warm] = np.abs(frames[-1].flow[:, 6:-6, 6:-6] - np.array([0.6, 0.3])[:, None, None]).mean()
    assert errs[True] < 0.5 * errs[False], errs


def test_track_stats_from_boxes(device):
    stage = make({"scale": 0.5}, device)
    boxes = np.array([[20, 20, 60, 50], [70, 30, 110, 80]], np.float32)
    frames = [Frame(i, i / 30, im) for i, im in enumerate(clip(4))]
    for f in frames:
        f.detections = Detections(boxes, np.ones(2), np.zeros(2), track_id=np.array([3, 4]))
        stage.process(f)
    assert "flow_mean" not in frames[0].detections.data                 # no pair yet
    data = frames[-1].detections.data
    assert data["flow_mean"].shape == (2, 2) and data["flow_std"].shape == (2, 2) and data["flow_mag"].shape == (2,)
    np.testing.assert_allclose(data["flow_mean"], np.broadcast_to(D, (2, 2)), atol=0.05)
    assert (data["flow_std"] < 0.12).all()                            # estimate noise, uint8 frames
    np.testing.assert_allclose(data["flow_mag"], np.hypot(*D), atol=0.05)
    assert frames[-1].detections.track_id.tolist() == [3, 4]


def test_box_flow_stats_match_brute_force(device):
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 2, (2, 24, 32)).astype(np.float32)
    frame_size = (96, 128)                                        # flow at scale 0.25
    boxes = np.array([[0, 0, 128, 96], [10.5, 7.2, 40.1, 33.3], [120, 90, 200, 200], [-20, -5, 3, 2],
                      [50, 50, 50.5, 50.2]], np.float32)
    mean, std, mag = box_flow_stats(torch.tensor(flow, device=device), boxes, frame_size)
    for i, (x0, y0, x1, y1) in enumerate(boxes * 0.25):
        c0, r0 = min(max(int(np.floor(x0)), 0), 31), min(max(int(np.floor(y0)), 0), 23)
        c1, r1 = max(min(int(np.ceil(x1)), 32), c0 + 1), max(min(int(np.ceil(y1)), 24), r0 + 1)
        patch = flow[:, r0:r1, c0:c1].reshape(2, -1)
        np.testing.assert_allclose(mean[i], patch.mean(1), atol=1e-5)
        np.testing.assert_allclose(std[i], patch.std(1), atol=1e-4)
        np.testing.assert_allclose(mag[i], np.hypot(*patch).mean(), atol=1e-5)
    empty = box_flow_stats(torch.tensor(flow, device=device), np.zeros((0, 4), np.float32), frame_size)
    assert [a.shape for a in empty] == [(0, 2), (0, 2), (0,)]


@pytest.mark.parametrize("method,tol", [("horn_schunck", 0.1), ("horn_schunck_classic", 0.5),
                                        ("lucas_kanade", 0.1), ("farneback", 0.1), ("dis", 0.1)])
def test_every_method_runs_in_the_stage(device, method, tol):
    stage = make({"method": method, "scale": 0.5}, device)
    frames = [Frame(i, i / 30, im) for i, im in enumerate(clip(5, d=(1.0, 0.5)))]
    for f in frames:
        stage.process(f)
    flow = host(frames[-1].flow)
    assert flow.shape == (2, H // 2, W // 2)
    assert np.abs(flow[:, 8:-8, 8:-8].mean((1, 2)) - (1.0, 0.5)).max() < tol


def test_resets_on_index_going_back_and_size_change():
    stage = make({"scale": 0.5})
    frames = clip(3)
    for i in range(2):
        stage.process(Frame(i, i / 30, frames[i]))
    again = stage.process(Frame(0, 0.0, frames[0]))           # a new stream: no pair
    assert again.flow is None
    small = stage.process(Frame(1, 0.1, frames[1][:64, :64]))  # another size: no pair
    assert small.flow is None and stage.summary()["resets"] == 2
    assert stage.process(Frame(2, 0.2, frames[2][:64, :64])).flow.shape == (2, 32, 32)


def test_scale_too_small_is_a_clear_error():
    stage = make({"scale": 0.05})
    with pytest.raises(ValueError, match="at least 8x8"):
        stage.process(Frame(0, 0.0, clip(1)[0]))


@pytest.mark.parametrize("raw,match", [
    ({"method": "raft"}, "method: expected one of"),
    ({"scale": 0}, "scale: expected 0 < x <= 1"),
    ({"horn_schunck": {"median": 4}}, "horn_schunck.median: expected an odd window"),
    ({"horn_schunck": {"alpah": 3}}, "horn_schunck.alpah: unknown key"),
    ({"dis": {"preset": "slow"}}, "dis.preset"),
])
def test_params_errors_name_their_path(raw, match):
    with pytest.raises(ConfigError, match=match):
        build_or_raise(FlowParams, raw)


def test_registered():
    from pipeline.registry import stage_registry

    assert stage_registry().get("flow") is FlowStage
    assert FlowStage.writes == {"flow", "track_flow"}


@pytest.mark.parametrize("method", ["horn_schunck", "horn_schunck_classic", "lucas_kanade"])
def test_traced_flow_equals_eager(device, method):
    """The default trace path gives the eager kernels' flow, frame after frame (warm start included)."""
    traced, eager = make({"method": method, "scale": 0.5}, device), make({"method": method, "scale": 0.5, "trace": False}, device)
    for i, im in enumerate(clip(5, d=(1.0, 0.5))):
        a, b = traced.process(Frame(i, i / 30, im)), eager.process(Frame(i, i / 30, im.copy()))
        if i:
            np.testing.assert_allclose(host(a.flow), host(b.flow), rtol=0, atol=1e-4)
    warm = method != "lucas_kanade"                  # the first pair (no warm start) has its own trace
    assert traced.summary()["trace"] == f"{1 + warm} traced" and "trace" not in eager.summary()


@pytest.mark.parametrize("solver", ["lean", "lean_fp16"])
def test_lean_solver_in_the_stage(device, solver):
    """horn_schunck.solver: lean reaches the stage (traced) and gives the standard solver's flow."""
    lean = make({"scale": 0.5, "horn_schunck": {"solver": solver}}, device)
    standard = make({"scale": 0.5}, device)
    for i, im in enumerate(clip(4, d=(1.0, 0.5))):
        a, b = lean.process(Frame(i, i / 30, im)), standard.process(Frame(i, i / 30, im.copy()))
        if i:
            np.testing.assert_allclose(host(a.flow), host(b.flow), rtol=0, atol=1e-4 if solver == "lean" else 5e-3)
    assert lean.summary()["trace"] == "2 traced"


def test_max_width_caps_the_working_size(device):
    """max_width 32 on 128-wide frames: works at 32x24 (flow_scale 0.25 instead of 0.5), flow still
    in full-resolution pixels; frames narrower than max_width / scale keep `scale`."""
    capped, loose = make({"scale": 0.5, "max_width": 32}, device), make({"scale": 0.5, "max_width": 64}, device)
    frames = [(Frame(i, i / 30, im), Frame(i, i / 30, im.copy())) for i, im in enumerate(clip(6))]
    for a, b in frames:
        capped.process(a)
        loose.process(b)
    a, b = frames[-1]
    assert host(a.flow).shape == (2, H // 4, W // 4) and a.meta["flow_scale"] == 0.25
    assert host(b.flow).shape == (2, H // 2, W // 2) and b.meta["flow_scale"] == 0.5
    inner = host(a.flow)[:, 4:-4, 4:-4]
    assert np.abs(inner.mean((1, 2)) - D).max() < 0.1
    with pytest.raises(ValueError, match="raise scale or max_width"):
        make({"max_width": 8}).process(Frame(0, 0.0, clip(1)[0]))
