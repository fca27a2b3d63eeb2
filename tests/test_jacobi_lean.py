"""The lean Jacobi solver against hs_jacobi (same iteration, other layout): float32 maps to 1e-4,
float16 maps to 1e-3 px; eager, unrolled, torch.compile'd (one fused kernel per step) and
CUDA-graphed; argument checks."""
from __future__ import annotations

import shutil

import pytest
import torch

from flowgen import as_tensor, rotated_pair, translated_pair
from stages.opticalflow import horn_schunck as hs
from stages.opticalflow import jacobi_lean as jl

TOL32 = 1e-4     # float32 maps: measured <= 1e-6 px after 1000 iterations (only rounding differs)
TOL16 = 1e-3     # float16 maps: measured <= 5e-4 px here (flows up to 2.5 px); ~2e-4 x the largest flow


def _problem(device, kind="translation", batch=1, h=40, w=56):
    """Derivatives of a test pair (batch of `batch` different pairs) and a random warm start."""
    pairs = [translated_pair(h, w, 0.6 - 0.3 * i, -0.4 + 0.2 * i) if kind == "translation"
             else rotated_pair(h, w, 2.0 + i)[:2] for i in range(batch)]
    a = torch.cat([as_tensor(p[0], device) for p in pairs])
    b = torch.cat([as_tensor(p[1], device) for p in pairs])
    ex, ey, et = hs.hs_derivatives(a, b)
    flow0 = torch.randn(batch, 2, h, w, generator=torch.Generator().manual_seed(1)).to(device)
    return ex, ey, et, flow0


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("kind,batch,alpha,iterations,unroll", [
    ("translation", 1, 8.0, 60, 1),
    ("rotation", 2, 3.0, 60, 4),
    ("translation", 2, 15.0, 7, 3),          # 2 unrolled calls + 1 remainder step
])
def test_eager_matches_hs_jacobi(device, kind, batch, alpha, iterations, unroll):
    ex, ey, et, flow0 = _problem(device, kind, batch)
    for warm in (None, flow0):
        ref = hs.hs_jacobi(ex, ey, et, alpha, iterations, warm)
        got = jl.hs_jacobi_lean(ex, ey, et, alpha, iterations, warm, unroll=unroll, compile=False)
        assert got.shape == ref.shape and got.dtype == torch.float32
        assert _err(got, ref) < TOL32
        half = jl.hs_jacobi_lean(ex, ey, et, alpha, iterations, warm, unroll=unroll, compile=False,
                                 coeff_dtype=torch.float16)
        assert TOL32 / 100 < _err(half, ref) < TOL16       # float16 storage really used, and close


def test_zero_iterations_and_zero_motion(device):
    ex, ey, et, flow0 = _problem(device)
    assert torch.equal(jl.hs_jacobi_lean(ex, ey, et, 8.0, 0, flow0, compile=False), flow0)
    a, _ = translated_pair(24, 32, 0, 0)
    z = hs.hs_derivatives(as_tensor(a, device), as_tensor(a, device))
    assert jl.hs_jacobi_lean(*z, 8.0, 20, compile=False).abs().max().item() == 0.0


def test_coefficients_are_the_scaled_derivatives(device):
    ex, ey, et, _ = _problem(device)
    c = jl.lean_coefficients(ex, ey, et, 8.0)
    g = 1.0 / torch.sqrt(64.0 + ex * ex + ey * ey)
    torch.testing.assert_close(c, torch.cat([ex * g, ey * g, et * g], 1))
    assert c[:, :2].abs().max().item() < 1.0
    assert jl.lean_coefficients(ex, ey, et, 8.0, torch.float16).dtype == torch.float16
    assert jl.bytes_per_step((1, 2, 1080, 1920)) == 1080 * 1920 * 28
    assert jl.bytes_per_step((1, 2, 1080, 1920), torch.float16) == 1080 * 1920 * 22


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch's own, on importing the compiler
def test_compiled_matches_and_fuses_one_kernel_per_step(device):
    if device == "cpu" and not (shutil.which("cc") or shutil.which("gcc") or shutil.which("g++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler (cc/gcc/g++ not found)")
    from torch._inductor import metrics

    ex, ey, et, flow0 = _problem(device, "rotation", 1, 24, 32)
    ref = hs.hs_jacobi(ex, ey, et, 8.0, 6, flow0)
    metrics.reset()
    got = jl.hs_jacobi_lean(ex, ey, et, 8.0, 6, flow0, unroll=3)     # one compiled call of 3 steps, twice
    assert jl.compile_failure() is None, jl.compile_failure()
    assert _err(got, ref) < TOL32
    # One generated kernel (a C++ loop nest on the CPU, a Triton kernel on CUDA) per unrolled step.
    # Cached compilations replay their metrics, so this holds on a warm cache too.
    assert metrics.generated_kernel_count == 3


def test_cuda_graph_matches(device):
    if not device.startswith("cuda"):
        pytest.skip("CUDA graphs need a CUDA device (run with --device cuda)")
    ex, ey, et, flow0 = _problem(device, "rotation", 2)
    ref = hs.hs_jacobi(ex, ey, et, 8.0, 30, flow0)
    for compile in (False, True):
        for _ in range(2):                                  # capture, then replay
            got = jl.hs_jacobi_lean(ex, ey, et, 8.0, 30, flow0, unroll=2, compile=compile, cuda_graph=True)
            assert jl.graph_failure() is None, jl.graph_failure()
            assert _err(got, ref) < TOL32


@pytest.mark.parametrize("args,match", [
    (dict(alpha=0.0), "alpha"),
    (dict(iterations=-1), "iterations"),
    (dict(unroll=0), "unroll"),
    (dict(unroll=9), "unroll"),
    (dict(coeff_dtype=torch.bfloat16), "coeff_dtype"),
    (dict(flow0=torch.zeros(1, 2, 5, 5)), "flow0"),
])
def test_bad_arguments(args, match):
    z = torch.zeros(1, 1, 8, 8)
    call = dict(alpha=8.0, iterations=3, compile=False) | args
    with pytest.raises(ValueError, match=match):
        jl.hs_jacobi_lean(z, z, z, **call)
