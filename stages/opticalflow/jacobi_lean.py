"""A bandwidth-lean Horn-Schunck Jacobi solver: the same iteration and result as
`horn_schunck.hs_jacobi`, laid out for a memory-bound GPU kernel.

- Three coefficient maps instead of six: with g = 1 / sqrt(alpha^2 + Ex^2 + Ey^2) and the scaled
  derivatives (ex, ey, et) = g (Ex, Ey, Et), the 1981 step
      u' = u_bar - Ex (Ex u_bar + Ey v_bar + Et) / (alpha^2 + Ex^2 + Ey^2)
  is u' = u_bar - ex (ex u_bar + ey v_bar + et) (and v' with ey). |ex|, |ey| < 1 and
  |et| <= |Et| / alpha, so the maps keep their precision in float16 storage (`coeff_dtype`);
  arithmetic is float32 either way.
- Borders replicated by index clamping (F.pad 'replicate' inside the step), no padded buffers and
  no border-copy kernels: torch.compile (inductor) fuses a step into ONE kernel that reads u, v
  (3x3 neighbourhoods, mostly from cache) and the three maps once and writes u', v'. Ideal traffic
  per pixel and step: 8 + 8 bytes of flow + 12 (float32) or 6 (float16) bytes of maps.
- `unroll` steps per compiled call (fewer Python calls and launches; each step stays one kernel,
  its output forced to memory so inductor never recomputes a step inside the next one), and an
  optional CUDA graph of all the iterations.

Convention: ex, ey, et (B,1,H,W) float (grey levels per pixel / frame, alpha in the same units);
flow0 (B,2,H,W) pixels, channel 0 = dx -> flow (B,2,H,W) float32 pixels. Same convention and result
as hs_jacobi (to float32 rounding with float32 maps; see the tests for the float16 bound).
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from .pyramid import check_images

COEFF_DTYPES = (torch.float32, torch.float16)
MAX_UNROLL = 8
# Inductor realizes a stencil it reads twice (12 u_bar is used in t and in u') when it has more than
# 4 loads; Triton fuses that buffer back into the step's kernel, the C++ backend does not. 64 keeps
# the whole step one loop nest / kernel on both (checked in tests/test_jacobi_lean.py).
INDUCTOR_OPTIONS = {"realize_reads_threshold": 64}

_LOCAL = threading.local()
_COMPILED: dict = {}
_LOCK = threading.Lock()


def lean_coefficients(ex: torch.Tensor, ey: torch.Tensor, et: torch.Tensor, alpha: float,
                      coeff_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The scaled maps (ex, ey, et) = (Ex, Ey, Et) / sqrt(alpha^2 + Ex^2 + Ey^2), stacked.
    Convention: three (B,1,H,W) float -> (B,3,H,W) in coeff_dtype (computed in float32)."""
    ex, ey, et = (m.float() for m in (ex, ey, et))
    g = torch.rsqrt(ex * ex + ey * ey + float(alpha) ** 2)
    return torch.cat([ex * g, ey * g, et * g], 1).to(coeff_dtype)


def _average12(f: torch.Tensor) -> torch.Tensor:
    """12 x the 1981 weighted neighbour average (1/6 edges, 1/12 corners) with replicated borders,
    as a separable (1,2,1) x (1,2,1) filter minus 4 x the centre (inductor lowers the pad to
    clamped indices and inlines it). Convention: (B,1,H,W) float32 -> (B,1,H,W)."""
    p = F.pad(f, (1, 1, 1, 1), mode="replicate")
    r = p[..., :, :-2] + 2.0 * p[..., :, 1:-1] + p[..., :, 2:]
    return r[..., :-2, :] + 2.0 * r[..., 1:-1, :] + r[..., 2:, :] - 4.0 * p[..., 1:-1, 1:-1]


def lean_step(u: torch.Tensor, v: torch.Tensor, coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Jacobi step. Convention: u, v (B,1,H,W) float32 pixels; coef (B,3,H,W) from
    lean_coefficients -> (u', v') (B,1,H,W) float32."""
    c = coef.float()
    ex, ey, et = c[:, 0:1], c[:, 1:2], c[:, 2:3]
    mu, mv = _average12(u), _average12(v)
    t = ex * mu + ey * mv + 12.0 * et                    # 12 g (Ex u_bar + Ey v_bar + Et)
    return (mu - ex * t) * (1.0 / 12.0), (mv - ey * t) * (1.0 / 12.0)


def _force_memory():
    """inductor's force_stride_order prim (a no-op on a contiguous tensor) makes its input a
    buffer in memory: a step boundary inside an unrolled compiled call. None where this torch
    lacks it (then inductor decides alone; still correct)."""
    try:
        import torch._inductor.inductor_prims  # noqa: F401  (registers the prim)

        return torch.ops.prims.inductor_force_stride_order
    except (ImportError, AttributeError):
        return None


def _eager_steps(u, v, coef, k: int):
    for _ in range(k):
        u, v = lean_step(u, v, coef)
    return u, v


def _unrolled(k: int):
    """k steps as one function for torch.compile, steps separated by _force_memory. Each k gets
    its own code object (dynamo keeps compiled graphs and its recompile budget per code object)."""
    force = _force_memory() if k > 1 else None

    def steps(u, v, coef):
        for i in range(k):
            u, v = lean_step(u, v, coef)
            if force is not None and i < k - 1:
                u, v = force(u, u.stride()), force(v, v.stride())
        return u, v

    code = steps.__code__.replace(co_name=f"jacobi_lean_steps_{k}")
    return type(steps)(code, steps.__globals__, code.co_name, None, steps.__closure__)


def compiled_steps(k: int):
    """The process-wide torch.compile'd function of k steps: (u, v, coef) -> (u, v)."""
    with _LOCK:
        fn = _COMPILED.get(k)
        if fn is None:
            fn = _COMPILED[k] = torch.compile(_unrolled(k), dynamic=False, fullgraph=True,
                                              options=dict(INDUCTOR_OPTIONS))
    return fn


def compile_failure() -> str | None:
    """Why torch.compile failed in this thread (the solver then ran eagerly), or None."""
    return getattr(_LOCAL, "compile_failure", None)


def graph_failure() -> str | None:
    """Why CUDA-graph capture failed in this thread (the steps then ran uncaptured), or None."""
    return getattr(_LOCAL, "graph_failure", None)


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _plan(iterations: int, unroll: int) -> list[tuple[int, int]]:
    """(steps per call, calls) covering `iterations`: the unrolled calls, then the remainder."""
    full, rest = divmod(iterations, unroll)
    return [(k, n) for k, n in ((unroll, full), (rest, 1 if rest else 0)) if n]


def _run(u, v, coef, plan, compile: bool):
    for k, n in plan:
        step = compiled_steps(k) if compile else None
        for _ in range(n):
            u, v = step(u, v, coef) if step is not None else _eager_steps(u, v, coef, k)
    return u, v


def _run_checked(u, v, coef, plan, compile: bool):
    """_run, compiled where it works; a compile failure is recorded and the steps run eagerly."""
    if compile and compile_failure() is None:
        try:
            return _run(u, v, coef, plan, True)
        except Exception as exc:  # noqa: BLE001 - no compiler / backend here: eager, say why
            _LOCAL.compile_failure = _why(exc)
    return _run(u, v, coef, plan, False)


class _Graphed:
    """All iterations captured once as a CUDA graph over static input buffers (coef, u, v: owned,
    plain tensors)."""

    def __init__(self, coef, u, v, plan, compile: bool) -> None:
        self.coef, self.u, self.v = coef, u, v
        side = torch.cuda.Stream(coef.device)
        side.wait_stream(torch.cuda.current_stream(coef.device))
        with torch.cuda.stream(side):                      # warm-up (compiles) before capture
            _run(self.u, self.v, self.coef, [(k, 1) for k, _ in plan], compile)
        torch.cuda.current_stream(coef.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.out = _run(self.u, self.v, self.coef, plan, compile)

    def __call__(self, coef, u, v):
        self.coef.copy_(coef)
        self.u.copy_(u)
        self.v.copy_(v)
        self.graph.replay()
        return self.out


MAX_GRAPHS = 16


def _graphed(coef, u, v, plan, compile: bool):
    """The thread's captured graph for this problem, or None when capture failed (recorded)."""
    if graph_failure() is not None:
        return None
    cache = getattr(_LOCAL, "graphs", None)
    if cache is None:
        cache = _LOCAL.graphs = {}
    key = (tuple(coef.shape), coef.dtype, str(coef.device), tuple(plan), compile)
    runner = cache.get(key)
    if runner is None:
        if len(cache) >= MAX_GRAPHS:
            cache.pop(next(iter(cache)))
        # plain tensors (usable in and out of inference mode), compiled under the capture's modes
        with torch.inference_mode(False), torch.no_grad():
            static = coef.clone(), u.clone(), v.clone()
            if compile:          # compile (or find it cannot) outside the capture
                _run_checked(static[1], static[2], static[0], [(k, 1) for k, _ in plan], True)
                compile = compile_failure() is None
        try:
            with torch.inference_mode(False), torch.no_grad():
                runner = cache[key] = _Graphed(*static, plan, compile)
        except Exception as exc:  # noqa: BLE001 - not capturable here: run uncaptured, say why
            _LOCAL.graph_failure = _why(exc)
            torch.cuda.synchronize(coef.device)
            return None
    return runner


def hs_jacobi_lean(ex: torch.Tensor, ey: torch.Tensor, et: torch.Tensor, alpha: float, iterations: int,
                   flow0: torch.Tensor | None = None, *, coeff_dtype: torch.dtype = torch.float32,
                   unroll: int = 1, compile: bool = True, cuda_graph: bool = False) -> torch.Tensor:
    """`iterations` Jacobi steps of the Horn-Schunck equations from flow0 (zero if None), as
    hs_jacobi. coeff_dtype: storage of the three coefficient maps (float32 or float16; arithmetic
    float32); unroll: steps per compiled call (1..8); compile: torch.compile the steps (falls back
    to eager, with compile_failure() saying why, where it cannot); cuda_graph: capture all the
    iterations once per problem shape as a CUDA graph and replay it (CUDA tensors only; ignored
    elsewhere; graph_failure() says why when capture failed).
    Convention: ex, ey, et (B,1,H,W) float; alpha > 0 in grey levels; flow0 (B,2,H,W) pixels ->
    flow (B,2,H,W) float32 pixels, channel 0 = dx."""
    check_images("hs_jacobi_lean", ex, ey, et)
    if not alpha > 0:
        raise ValueError(f"hs_jacobi_lean: alpha must be > 0, got {alpha}")
    if iterations < 0:
        raise ValueError(f"hs_jacobi_lean: iterations must be >= 0, got {iterations}")
    if coeff_dtype not in COEFF_DTYPES:
        raise ValueError(f"hs_jacobi_lean: coeff_dtype must be one of {COEFF_DTYPES}, got {coeff_dtype}")
    if not 1 <= unroll <= MAX_UNROLL:
        raise ValueError(f"hs_jacobi_lean: unroll must be in 1..{MAX_UNROLL}, got {unroll}")
    n_b, _, h, w = ex.shape
    if flow0 is None:
        flow0 = torch.zeros(n_b, 2, h, w, dtype=torch.float32, device=ex.device)
    elif flow0.shape != (n_b, 2, h, w):
        raise ValueError(f"hs_jacobi_lean: flow0 must be {(n_b, 2, h, w)}, got {tuple(flow0.shape)}")
    flow0 = flow0.to(torch.float32)
    if iterations == 0:
        return flow0.clone()
    coef = lean_coefficients(ex, ey, et, alpha, coeff_dtype)
    # fresh (B,1,H,W) tensors with standard strides (a channel slice has batch stride 2HW, which
    # would make dynamo compile the first step twice)
    u, v = (flow0.new_empty(n_b, 1, h, w).copy_(flow0[:, i:i + 1]) for i in (0, 1))
    plan = _plan(iterations, unroll)
    if cuda_graph and coef.is_cuda:
        runner = _graphed(coef, u, v, plan, compile)
        if runner is not None:
            return torch.cat(runner(coef, u, v), 1)
    return torch.cat(_run_checked(u, v, coef, plan, compile), 1)


def bytes_per_step(shape, coeff_dtype: torch.dtype = torch.float32) -> int:
    """The memory traffic a step cannot avoid: u, v read once, three maps read once, u', v'
    written. Convention: shape (B,1,H,W) or (B,2,H,W) -> bytes."""
    n_b, _, h, w = shape
    coeff = torch.empty((), dtype=coeff_dtype).element_size()
    return n_b * h * w * (2 * 4 + 3 * coeff + 2 * 4)
