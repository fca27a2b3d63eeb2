"""Horn-Schunck kernels: known answers (translation, rotation, zero motion), the torch code against
the straightforward numpy reference to 1e-4, batching, warm start and argument checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from flowgen import as_tensor, rotated_pair, translated_pair
from stages.opticalflow import horn_schunck as hs
from stages.opticalflow import reference_numpy as ref
from stages.opticalflow.pyramid import median_filter, median_network, warp

TOL = 1e-4


def _np(flow: torch.Tensor) -> np.ndarray:
    return flow[0].detach().cpu().double().numpy()


def _interior(a: np.ndarray, m: int = 8) -> np.ndarray:
    return a[..., m:-m, m:-m]


@pytest.mark.parametrize("d", [(0.3, -0.2), (0.7, 0.45), (-0.15, 0.8), (2.6, -1.8)])
def test_coarse_to_fine_recovers_translation(device, d):
    a, b = translated_pair(64, 64, *d)
    flow = _interior(_np(hs.horn_schunck(as_tensor(a, device), as_tensor(b, device))))
    err = np.abs(flow - np.array(d)[:, None, None])
    assert err.max() < 0.05, err.max()
    assert np.abs(flow.mean((1, 2)) - d).max() < 0.01


def test_classic_recovers_subpixel_translation(device):
    # The published method, single scale: converges to the translation for sub-pixel motion
    # (slowly: a uniform field is Jacobi's slowest mode).
    a, b = translated_pair(48, 48, 0.2, -0.1)
    flow = _interior(_np(hs.horn_schunck_classic(as_tensor(a, device), as_tensor(b, device),
                                                 alpha=5.0, iterations=2000)))
    assert np.abs(flow.mean((1, 2)) - (0.2, -0.1)).max() < 0.01
    assert np.abs(flow - np.array([0.2, -0.1])[:, None, None]).max() < 0.1


def test_rotation(device):
    a, b, gt = rotated_pair(64, 64, 2.0)
    flow = _np(hs.horn_schunck(as_tensor(a, device), as_tensor(b, device))).transpose(1, 2, 0)
    epe = _interior(np.linalg.norm(flow - gt, axis=-1))
    assert np.abs(gt).max() > 1.0                      # up to ~1.1 px at the corners
    assert epe.mean() < 0.05, epe.mean()
    assert epe.max() < 0.35


@pytest.mark.parametrize("fn", [hs.horn_schunck, hs.horn_schunck_classic])
def test_zero_motion_is_zero(device, fn):
    a, _ = translated_pair(40, 56, 0, 0)
    flow = fn(as_tensor(a, device), as_tensor(a, device))
    assert flow.shape == (1, 2, 40, 56) and flow.dtype == torch.float32
    assert flow.abs().max().item() < 1e-5


def test_derivatives_match_numpy(device):
    a, b = translated_pair(20, 24, 0.4, 0.1)
    got = hs.hs_derivatives(as_tensor(a, device), as_tensor(b, device))
    for g, want in zip(got, ref.hs_derivatives(a, b)):
        np.testing.assert_allclose(_np(g)[0], want, atol=TOL)


def test_one_step_is_the_papers_update(device):
    # From a random field, one Jacobi step equals section 12's formula with section 8's average.
    rng = np.random.default_rng(3)
    ex, ey, et, u, v = (rng.normal(0, 5, (17, 23)) for _ in range(5))
    flow0 = torch.tensor(np.stack([u, v])[None], dtype=torch.float32, device=device)
    got = hs.hs_jacobi(*(as_tensor(m, device) for m in (ex, ey, et)), 3.0, 1, flow0)
    ub, vb = ref.hs_average(u), ref.hs_average(v)
    t = (ex * ub + ey * vb + et) / (9.0 + ex ** 2 + ey ** 2)
    np.testing.assert_allclose(_np(got), np.stack([ub - ex * t, vb - ey * t]), atol=TOL)


def test_classic_matches_numpy(device):
    a, b = translated_pair(40, 56, 0.6, 0.3)
    got = hs.horn_schunck_classic(as_tensor(a, device), as_tensor(b, device), alpha=10.0, iterations=150)
    np.testing.assert_allclose(_np(got), ref.horn_schunck_classic(a, b, alpha=10.0, iterations=150), atol=TOL)


@pytest.mark.parametrize("derivatives,interpolation", [("central", "bicubic"), ("hs1981", "bilinear")])
def test_coarse_to_fine_matches_numpy(device, derivatives, interpolation):
    a, b = translated_pair(40, 56, 1.7, -0.6)
    kw = dict(levels=3, min_size=8, iterations=60, warps=2)
    got = hs.horn_schunck(as_tensor(a, device), as_tensor(b, device), derivatives=derivatives,
                          interpolation=interpolation, **kw)
    want = ref.horn_schunck(a, b, derivatives=derivatives, interpolation=interpolation, **kw)
    np.testing.assert_allclose(_np(got), want, atol=TOL)


def test_warm_start_matches_numpy_and_helps(device):
    a, b = translated_pair(40, 56, 1.2, 0.5)
    init = np.stack([np.full((40, 56), 1.0), np.full((40, 56), 0.4)])
    flow0 = torch.tensor(init[None], dtype=torch.float32, device=device)
    kw = dict(levels=1, iterations=20, warps=1, median=1)
    got = hs.horn_schunck(as_tensor(a, device), as_tensor(b, device), flow0=flow0, **kw)
    want = ref.horn_schunck(a, b, flow0=init, **kw)
    np.testing.assert_allclose(_np(got), want, atol=TOL)
    cold = hs.horn_schunck(as_tensor(a, device), as_tensor(b, device), **kw)
    err = lambda f: np.abs(_interior(_np(f)) - np.array([1.2, 0.5])[:, None, None]).mean()  # noqa: E731
    assert err(got) < 0.5 * err(cold)


def test_batch_equals_separate_calls(device):
    pairs = [translated_pair(32, 40, 0.5, -0.3, seed=s) for s in (0, 1)]
    a = torch.cat([as_tensor(p[0], device) for p in pairs])
    b = torch.cat([as_tensor(p[1], device) for p in pairs])
    both = hs.horn_schunck(a, b, levels=2, iterations=30)
    for i, (p1, p2) in enumerate(pairs):
        one = hs.horn_schunck(as_tensor(p1, device), as_tensor(p2, device), levels=2, iterations=30)
        torch.testing.assert_close(both[i:i + 1], one, atol=1e-5, rtol=0)


def test_cuda_graph_replay_equals_eager(device):
    if not device.startswith("cuda"):
        pytest.skip("CUDA graphs need a CUDA device (run with --device cuda)")
    a, b = translated_pair(48, 64, 1.4, -0.7)
    args = (as_tensor(a, device), as_tensor(b, device))
    eager = hs.horn_schunck(*args, levels=3, iterations=40)
    for _ in range(2):                                   # capture, then replay on the same shapes
        graphed = hs.horn_schunck(*args, levels=3, iterations=40, cuda_graph=True)
        torch.testing.assert_close(graphed, eager, atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch's own, on importing the compiler
def test_compiled_step_equals_eager(device):
    import shutil

    if device == "cpu" and not (shutil.which("cc") or shutil.which("gcc") or shutil.which("g++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    a, b = translated_pair(24, 32, 0.4, 0.2)
    ex, ey, et = hs.hs_derivatives(as_tensor(a, device), as_tensor(b, device))
    flow0 = torch.randn(1, 2, 24, 32, device=device)
    eager = hs.hs_jacobi(ex, ey, et, 8.0, 7, flow0)
    torch.testing.assert_close(hs.hs_jacobi(ex, ey, et, 8.0, 7, flow0, compile=True), eager, atol=1e-5, rtol=0)


def test_warp_matches_numpy_and_known_shift(device):
    a, _ = translated_pair(24, 30, 0, 0)
    rng = np.random.default_rng(0)
    flow = rng.uniform(-3, 3, (2, 24, 30))
    for mode in ("bilinear", "bicubic"):
        got, inside = warp(as_tensor(a, device), torch.tensor(flow[None], dtype=torch.float32, device=device), mode)
        want, want_inside = ref.warp(a, flow, mode)
        np.testing.assert_allclose(_np(got)[0], want, atol=1e-3)   # grey levels 0..255
        assert np.array_equal(inside[0, 0].cpu().numpy(), want_inside)
    # Catmull-Rom reproduces a linear ramp exactly (grid_sample's a=-0.75 bicubic does not).
    ramp = np.tile(np.arange(30, dtype=np.float64) * 3.0, (24, 1))
    shift = torch.full((1, 2, 24, 30), 0.3, device=device)
    out, _ = warp(as_tensor(ramp, device), shift, "bicubic")
    np.testing.assert_allclose(_np(out)[0][2:-2, 2:-3], ramp[2:-2, 2:-3] + 0.9, atol=1e-4)


def test_median_filter_is_exact(device):
    from scipy import ndimage

    x = torch.randn(2, 2, 19, 23, device=device)
    for size in (3, 5):
        got = median_filter(x, size).cpu().numpy()
        want = [[ndimage.median_filter(x[i, c].cpu().numpy(), size=size, mode="nearest") for c in range(2)]
                for i in range(2)]
        np.testing.assert_array_equal(got, np.array(want))


def test_median_network_zero_one_principle():
    # A comparator network selects the median of every input iff it does for all 0/1 inputs.
    n = 9
    net = median_network(n)
    inputs = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    wires = [inputs[:, k].astype(bool) for k in range(n)]
    for a, b, _, _ in net:
        wires[a], wires[b] = wires[a] & wires[b], wires[a] | wires[b]
    assert np.array_equal(wires[n // 2], inputs.sum(1) >= n - n // 2)
    assert len(median_network(25)) == 113


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=0.0), "alpha"), (dict(iterations=-1), "iterations"),
])
def test_jacobi_rejects_bad_arguments(kwargs, match):
    z = torch.zeros(1, 1, 8, 8)
    args = dict(alpha=1.0, iterations=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        hs.hs_jacobi(z, z, z, **args)


@pytest.mark.parametrize("call,match", [
    (lambda z: hs.horn_schunck(z, z[:, :, :4]), "shapes differ"),
    (lambda z: hs.horn_schunck(z[0], z[0]), "B,1,H,W"),
    (lambda z: hs.horn_schunck(z, z, derivatives="sobel"), "derivatives"),
    (lambda z: hs.horn_schunck(z, z, warps=0), "warps"),
    (lambda z: hs.horn_schunck(z, z, factor=1.5), "factor"),
    (lambda z: hs.horn_schunck(z, z, flow0=torch.zeros(1, 2, 3, 3)), "flow0"),
    (lambda z: hs.horn_schunck(z, z, interpolation="nearest"), "mode"),
])
def test_horn_schunck_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(1, 1, 16, 16))


@pytest.mark.parametrize("solver, tol", [("lean", 1e-4), ("lean_fp16", 5e-3)])
def test_lean_solvers_give_the_standard_flow(device, solver, tol):
    """solver='lean' / 'lean_fp16' (jacobi_lean: three scaled maps) solve the same equations:
    the coarse-to-fine and the classic flow match the standard solver's."""
    a, b, _ = rotated_pair(64, 80, 2.0)
    im1, im2 = as_tensor(a, device), as_tensor(b, device)
    for fn, kw in ((hs.horn_schunck, dict(iterations=40, warps=2, levels=3)),
                   (hs.horn_schunck_classic, dict(iterations=60))):
        want = _np(fn(im1, im2, **kw))
        got = _np(fn(im1, im2, solver=solver, **kw))
        assert np.abs(want).max() > 0.3
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    with pytest.raises(ValueError, match="solver must be one of"):
        hs.horn_schunck_classic(im1, im2, solver="fast")
