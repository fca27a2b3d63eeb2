"""pipeline.traced.TracedCall: same results as eager, one trace per signature, eager fallback."""
from __future__ import annotations

import torch

from pipeline.traced import TracedCall


def pyramid_energy(image, offset):
    """Shape-dependent Python logic (sizes from the shape) and an optional input."""
    out, x = [], image
    while min(int(x.shape[-1]), int(x.shape[-2])) >= 8:
        out.append(x.mean((-1, -2)))
        x = torch.nn.functional.avg_pool2d(x, 2)
    total = torch.stack(out, -1).sum(-1)
    return total if offset is None else total + offset


def test_matches_eager_and_traces_once_per_signature():
    traced = TracedCall(pyramid_energy, "t")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 1, 64, 48, generator=g)
    b = torch.rand(1, 1, 64, 48, generator=g)
    off = torch.full((1, 1), 0.5)
    for x in (a, b, a):
        torch.testing.assert_close(traced(x, off), pyramid_energy(x, off), rtol=0, atol=1e-6)
    assert traced.traces == 1 and traced.fallback is None
    c = torch.rand(1, 1, 20, 30, generator=g)                 # a new size: a new trace, new levels
    torch.testing.assert_close(traced(c, off), pyramid_energy(c, off), rtol=0, atol=1e-6)
    torch.testing.assert_close(traced(a, None), pyramid_energy(a, None), rtol=0, atol=1e-6)
    assert traced.traces == 3


def test_untraceable_function_runs_eagerly_and_says_why():
    def to_python(x):
        return float(x.sum())                                  # not a tensor: no trace possible
    traced = TracedCall(to_python, "t")
    x = torch.ones(3)
    assert traced(x) == 3.0 and traced(x) == 3.0
    assert traced.fallback is not None and traced.traces == 0


def test_a_trace_that_differs_is_dropped():
    state = {"calls": 0}

    def drifting(x):                                           # Python state a trace would freeze
        state["calls"] += 1
        return x * state["calls"]
    traced = TracedCall(drifting, "t")
    out = traced(torch.ones(2))
    assert traced.fallback is not None and "differs" in traced.fallback
    assert torch.equal(out, torch.full((2,), float(state["calls"])))


def test_mutating_function_updates_state_like_eager():
    def running_mean(state, x):
        state.mul_(0.9).add_(x, alpha=0.1)
        return state > 0.5
    traced = TracedCall(running_mean, "t", mutates=True)
    s_eager, s_traced = torch.zeros(4, 4), torch.zeros(4, 4)
    g = torch.Generator().manual_seed(1)
    for _ in range(12):
        x = torch.rand(4, 4, generator=g) * 2
        assert torch.equal(traced(s_traced, x), running_mean(s_eager, x))
        torch.testing.assert_close(s_traced, s_eager, rtol=0, atol=1e-6)
    assert traced.traces == 1 and traced.fallback is None


def test_disabled_is_eager():
    traced = TracedCall(pyramid_energy, "t", enabled=False)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(traced(x, None), pyramid_energy(x, None))
    assert traced.traces == 0


def test_shared_traces_are_made_once_per_process():
    """share: the same key and signature reuse one trace across objects (PyTorch never frees a
    trace's memory, so each new pipeline would otherwise add its own); another key traces anew."""
    import pipeline.traced as traced_module

    made = []

    def counting(image, offset):
        made.append(1)                      # runs while tracing and for the eager check only
        return pyramid_energy(image, offset)

    key = ("test", "shared", 1)
    x, off = torch.rand(1, 1, 32, 32), torch.full((1, 1), 0.25)
    first, second = TracedCall(counting, "a", share=key), TracedCall(counting, "b", share=key)
    torch.testing.assert_close(first(x, off), pyramid_energy(x, off), rtol=0, atol=1e-6)
    calls = len(made)
    torch.testing.assert_close(second(x, off), pyramid_energy(x, off), rtol=0, atol=1e-6)
    assert len(made) == calls                                   # the second object traced nothing
    assert second.traces == 1 and second._cache[next(iter(second._cache))] is first._cache[next(iter(first._cache))]
    other = TracedCall(counting, "c", share=("test", "shared", 2))
    other(x, off)
    assert len(made) > calls and ((key, traced_module._signature((x, off))) in traced_module._SHARED)


def test_flow_stages_with_the_same_params_share_their_traces():
    import logging
    import threading

    import numpy as np

    from pipeline.frame import Frame
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo, StageContext
    from stages.flow import FlowParams, FlowStage

    def stage(raw):
        s = FlowStage(build_or_raise(FlowParams, raw))
        s.setup(StageContext("cpu", SourceInfo("t", 8, 8, 30.0, False), threading.Event(), logging.getLogger("t")))
        return s

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 96, 3), np.uint8) for _ in range(2)]
    a, b, c = stage({"scale": 0.5}), stage({"scale": 0.5}), stage({"scale": 0.5, "horn_schunck": {"alpha": 9.0}})
    for s in (a, b, c):
        for i, im in enumerate(images):
            s.process(Frame(i, i / 30, im))
    (ka, ta), = a._traced._cache.items()
    assert b._traced._cache[ka] is ta and c._traced._cache[ka] is not ta
