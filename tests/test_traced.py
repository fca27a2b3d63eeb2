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
