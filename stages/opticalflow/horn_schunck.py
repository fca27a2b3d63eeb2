"""Horn-Schunck optical flow in torch: the 1981 method as published, and a coarse-to-fine variant
with image warping for motions of more than a pixel.

Horn & Schunck, "Determining Optical Flow", Artificial Intelligence 17 (1981) 185-203:
- brightness derivatives Ex, Ey, Et: first differences averaged over the 2x2x2 cube of
  neighbouring samples in (row i, column j, time k) (their section 7);
- the Laplacian estimate u_bar: the weighted neighbour average with weights 1/6 (edge
  neighbours) and 1/12 (corner neighbours) (their section 8);
- the Jacobi iteration (their section 12):
      u' = u_bar - Ex (Ex u_bar + Ey v_bar + Et) / (alpha^2 + Ex^2 + Ey^2)
      v' = v_bar - Ey (Ex u_bar + Ey v_bar + Et) / (alpha^2 + Ex^2 + Ey^2)
  starting from zero or from a previous estimate (their section 13: warm start in sequences).

Convention: images (B,1,H,W) float32 grey levels (alpha is in the same units: defaults assume
0..255); flow (B,2,H,W) float32 pixels per frame, channel 0 = dx (u, along columns), channel 1 = dy
(v, along rows). Borders are replicated (the paper leaves them open).
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from .methods import SOLVERS
from .pyramid import check_images, coarse_to_fine, dims, filter_separable, warp

# The weighted-average kernel of section 8; u_bar = conv(u, HS_AVERAGE_KERNEL).
HS_AVERAGE_KERNEL = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))
# Five-point central difference (used by the coarse-to-fine variant's 'central' derivatives).
CENTRAL5 = (1 / 12, -8 / 12, 0.0, 8 / 12, -1 / 12)
DERIVATIVES = ("hs1981", "central")


def hs_derivatives(image1: torch.Tensor, image2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 1981 estimates of Ex, Ey, Et at the centre of each 2x2x2 cube, stored at the cube's
    top-left sample (the last row and column use replicated samples).
    Convention: (B,1,H,W) float each -> three (B,1,H,W) tensors, grey levels per pixel / frame."""
    p1 = F.pad(image1, (0, 1, 0, 1), mode="replicate")
    p2 = F.pad(image2, (0, 1, 0, 1), mode="replicate")
    # E[i,j,k] with i = row, j = column, k = frame.
    a, b, c, d = p1[..., :-1, :-1], p1[..., :-1, 1:], p1[..., 1:, :-1], p1[..., 1:, 1:]
    e, f, g, h = p2[..., :-1, :-1], p2[..., :-1, 1:], p2[..., 1:, :-1], p2[..., 1:, 1:]
    ex = ((b - a) + (d - c) + (f - e) + (h - g)) * 0.25
    ey = ((c - a) + (d - b) + (g - e) + (h - f)) * 0.25
    et = ((e - a) + (f - b) + (g - c) + (h - d)) * 0.25
    return ex, ey, et


def central_derivatives(image1: torch.Tensor, warped2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spatial derivatives of the mean of image1 and the warped image2 by the five-point stencil,
    and Et = warped2 - image1 (Sun, Roth & Black, "Secrets of optical flow", 2010).
    Convention: (B,1,H,W) float each -> (Ex, Ey, Et), each (B,1,H,W)."""
    mean = (image1 + warped2) * 0.5
    ex = filter_separable(mean, CENTRAL5, (1.0,))
    ey = filter_separable(mean, (1.0,), CENTRAL5)
    return ex, ey, warped2 - image1


def _coefficients(ex, ey, et, alpha: float):
    """The Jacobi step as new = cf + a0 * (12 u_bar) + a1 * (12 v_bar), per output channel:
    u' = (1 - a Ex) u_bar - a Ey v_bar - a Et and v' = -b Ex u_bar + (1 - b Ey) v_bar - b Et
    with a = Ex / (alpha^2 + Ex^2 + Ey^2), b = Ey / (...); the 1/12 is folded into a0, a1."""
    denom = ex * ex + ey * ey + alpha * alpha
    a, b = ex / denom, ey / denom
    a0 = torch.cat([1.0 - a * ex, -b * ex], 1).mul_(1.0 / 12.0)
    a1 = torch.cat([-a * ey, 1.0 - b * ey], 1).mul_(1.0 / 12.0)
    cf = torch.cat([-a * et, -b * et], 1)
    return a0, a1, cf


class _Buffers:
    """Flat, padded (B,2,(H+2)(W+2)) ping-pong buffers and the iteration's coefficient maps.

    Every neighbour of an interior sample is a fixed offset in the flat layout, so the weighted
    average is four contiguous shifted additions; the border ring is refreshed by replication in
    two strided copies. All tensors and views are made once (little Python work per step, and
    static addresses: a CUDA graph can replay the steps)."""

    def __init__(self, shape, dtype, device) -> None:
        n_b, _, h, w = shape
        self.h, self.w, self.s = h, w, w + 2
        s, n = self.s, (h + 2) * (w + 2)
        self.n, self.lo, self.hi = n, s + 1, n - s - 1
        new = lambda *size: torch.empty(*size, dtype=dtype, device=device)  # noqa: E731
        self.a0, self.a1, self.cf = (new(n_b, 2, self.hi - self.lo) for _ in range(3))
        self.pair = (new(n_b, 2, n), new(n_b, 2, n))
        self.t, self.s1 = new(n_b, 2, n - 1), new(n_b, 2, n - 2)
        self.t2, self.s2 = new(n_b, 2, n - 2 - s), new(n_b, 2, self.hi - self.lo)
        t, s1, t2, s2 = self.t, self.s1, self.t2, self.s2
        self.fixed = (t, t[..., :-1], t[..., 1:], s1, s1[..., :-s], s1[..., s:], t2, t2[..., :-s], t2[..., s:],
                      s2, s2[:, 0:1], s2[:, 1:2])
        self.parity = 0
        self.views = [self._views(self.pair[k], self.pair[1 - k]) for k in (0, 1)]

    def _views(self, src, dst):
        """Views for one step reading `src` and writing `dst`."""
        s, h, w, n = self.s, self.h, self.w, self.n
        nb = int(src.shape[0])
        st = (2 * n, n)
        # Right pad of row r and left pad of row r+1 are neighbours in the flat layout: one copy
        # from columns W and 1 (strides 1 vs 3); then the top/bottom pad rows from rows 1 and H.
        cols = (dst.as_strided((nb, 2, h + 1, 2), (*st, s, 1), w + 1),
                dst.as_strided((nb, 2, h + 1, 2), (*st, s, 3), w))
        rows = (dst.as_strided((nb, 2, 2, s), (*st, (h + 1) * s, 1), 0),
                dst.as_strided((nb, 2, 2, s), (*st, max(h - 1, 1) * s, 1), s))
        return (src[..., :-1], src[..., 1:], src[..., self.lo:self.hi], dst[..., self.lo:self.hi], cols, rows)

    @property
    def buf(self) -> torch.Tensor:
        return self.pair[self.parity]

    def load(self, a0, a1, cf, flow0, target=None) -> None:
        for dst, m in ((self.a0, a0), (self.a1, a1), (self.cf, cf)):
            dst.copy_(F.pad(m, (1, 1, 1, 1)).reshape(m.shape[0], 2, self.n)[..., self.lo:self.hi])
        target = self.buf if target is None else target
        target.copy_(F.pad(flow0, (1, 1, 1, 1), mode="replicate").reshape(target.shape))

    def step(self) -> None:
        left, right, centre, out, cols, rows = self.views[self.parity]
        t, t_l, t_r, s1, s1_u, s1_d, t2, t2_u, t2_d, s2, m_u, m_v = self.fixed
        torch.add(left, right, out=t)                          # B[k] + B[k+1]
        torch.add(t_l, t_r, out=s1)                            # 1-2-1 along x
        torch.add(s1_u, s1_d, out=t2)
        torch.add(t2_u, t2_d, out=s2)                          # 1-2-1 along y
        s2.sub_(centre, alpha=4.0)                             # 12 * the weighted average
        torch.addcmul(self.cf, self.a0, m_u, out=out)
        out.addcmul_(self.a1, m_v)
        cols[0].copy_(cols[1])
        rows[0].copy_(rows[1])
        self.parity ^= 1

    def step_with(self, core) -> None:
        """One step by `core(buf, a0, a1, cf, out)` (the compiled _step_core), then the border."""
        _, _, _, out, cols, rows = self.views[self.parity]
        core(self.pair[self.parity], self.a0, self.a1, self.cf, out)
        cols[0].copy_(cols[1])
        rows[0].copy_(rows[1])
        self.parity ^= 1

    def flow(self, buf=None) -> torch.Tensor:
        buf = self.buf if buf is None else buf
        return buf.view(-1, 2, self.h + 2, self.s)[..., 1:-1, 1:-1].contiguous()


class _GraphedJacobi:
    """`iterations` steps captured once as a CUDA graph (one launch instead of ~11 per step),
    replayed on new coefficients copied into the static buffers."""

    def __init__(self, shape, dtype, device, iterations: int) -> None:
        self.bufs = bufs = _Buffers(shape, dtype, device)
        for t in (bufs.a0, bufs.a1, bufs.cf, *bufs.pair):
            t.zero_()
        self.start = bufs.buf
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):                     # warm-up before capture, as CUDA graphs need
            bufs.step()
            bufs.step()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: other stages' threads may use the GPU while this one captures
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            for _ in range(iterations):
                bufs.step()
        self.result = bufs.buf

    def __call__(self, a0, a1, cf, flow0) -> torch.Tensor:
        self.bufs.load(a0, a1, cf, flow0, target=self.start)
        self.graph.replay()
        return self.bufs.flow(self.result)


_LOCAL = threading.local()   # graphs per thread: each stage thread replays its own buffers
MAX_GRAPHS = 16


def cuda_graph_failure() -> str | None:
    """Why CUDA-graph capture failed in this thread (then the steps run eagerly), or None."""
    return getattr(_LOCAL, "graph_failure", None)


def _graphed(shape, dtype, device, iterations: int) -> _GraphedJacobi | None:
    """The thread's captured graph for this problem size, or None (eager) when capture failed."""
    if getattr(_LOCAL, "graph_failure", None):
        return None
    cache = getattr(_LOCAL, "graphs", None)
    if cache is None:
        cache = _LOCAL.graphs = {}
    key = (tuple(shape), dtype, str(device), iterations)
    runner = cache.get(key)
    if runner is None:
        if len(cache) >= MAX_GRAPHS:
            cache.pop(next(iter(cache)))
        try:
            with torch.inference_mode(False), torch.no_grad():   # plain tensors: usable in and out of inference mode
                runner = cache[key] = _GraphedJacobi(shape, dtype, device, iterations)
        except Exception as exc:  # noqa: BLE001 - not capturable here: stay eager, say why
            _LOCAL.graph_failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            torch.cuda.synchronize(device)
            return None
    return runner


CACHE_PIXELS = 1 << 18   # eager buffers up to this size are kept per thread and reused


def _buffers(shape, dtype, device) -> _Buffers:
    """Eager buffers, reused per thread for small images (video frames at a working scale), where
    allocating them and their views would cost as much as the iterations."""
    if shape[0] * shape[2] * shape[3] > CACHE_PIXELS or torch.jit.is_tracing():   # a trace makes its own
        return _Buffers(shape, dtype, device)
    cache = getattr(_LOCAL, "buffers", None)
    if cache is None:
        cache = _LOCAL.buffers = {}
    key = (tuple(shape), dtype, str(device))
    bufs = cache.get(key)
    if bufs is None:
        if len(cache) >= MAX_GRAPHS:
            cache.pop(next(iter(cache)))
        with torch.inference_mode(False), torch.no_grad():
            bufs = cache[key] = _Buffers(shape, dtype, device)
    return bufs


def _step_core(buf, a0, a1, cf, out) -> None:
    """One Jacobi step on the flat padded layout as a single expression, written into `out` (the
    other buffer's interior): torch.compile fuses it into one kernel. Same arithmetic as
    _Buffers.step (weights 1 at corners, 2 at edges, 0 at the centre = 12 x the average)."""
    n, l = int(buf.shape[-1]), int(out.shape[-1])
    s = (n - l - 2) // 2
    corners = buf[..., 0:l] + buf[..., 2:l + 2] + buf[..., 2 * s:2 * s + l] + buf[..., 2 * s + 2:2 * s + 2 + l]
    edges = buf[..., 1:l + 1] + buf[..., s:s + l] + buf[..., s + 2:s + 2 + l] + buf[..., 2 * s + 1:2 * s + 1 + l]
    m = corners + 2.0 * edges
    out.copy_(cf + a0 * m[:, 0:1] + a1 * m[:, 1:2])


_COMPILED: list = []


def _compiled_step():
    if not _COMPILED:
        _COMPILED.append(torch.compile(_step_core, dynamic=False))
    return _COMPILED[0]


def hs_jacobi(ex: torch.Tensor, ey: torch.Tensor, et: torch.Tensor, alpha: float, iterations: int,
              flow0: torch.Tensor | None = None, compile: bool = False,
              cuda_graph: bool = False, solver: str = "standard") -> torch.Tensor:
    """Run `iterations` Jacobi steps of the Horn-Schunck equations from flow0 (zero if None).
    cuda_graph=True (CUDA tensors only; ignored elsewhere) captures the steps once per shape and
    iteration count and replays them (per thread). compile=True fuses each step into one kernel
    with torch.compile (needs a C++ compiler on the CPU, Triton on CUDA; the first call per shape
    compiles, and past torch._dynamo's cache_size_limit of shapes it runs uncompiled).
    solver: 'standard' (six coefficient maps in padded buffers), or 'lean' / 'lean_fp16'
    (jacobi_lean.hs_jacobi_lean: three scaled maps in float32 / float16, clamped borders, one
    kernel per compiled step: less memory traffic for a GPU; the same flow, to 1e-3 px in float16).
    Convention: ex, ey, et (B,1,H,W) float; alpha > 0 in grey levels; flow0 (B,2,H,W) pixels ->
    flow (B,2,H,W) pixels."""
    if alpha <= 0:
        raise ValueError(f"hs_jacobi: alpha must be > 0, got {alpha}")
    if iterations < 0:
        raise ValueError(f"hs_jacobi: iterations must be >= 0, got {iterations}")
    n_b, _, h, w = dims(ex)
    if flow0 is None:
        flow0 = torch.zeros(n_b, 2, h, w, dtype=ex.dtype, device=ex.device)
    elif flow0.shape != (n_b, 2, h, w):
        raise ValueError(f"hs_jacobi: flow0 must be {(n_b, 2, h, w)}, got {tuple(flow0.shape)}")
    if solver not in SOLVERS:
        raise ValueError(f"hs_jacobi: solver must be one of {SOLVERS}, got {solver!r}")
    if iterations == 0:
        return flow0.clone()
    if solver != "standard":
        from .jacobi_lean import hs_jacobi_lean

        return hs_jacobi_lean(ex, ey, et, alpha, iterations, flow0, compile=compile, cuda_graph=cuda_graph,
                              coeff_dtype=torch.float16 if solver == "lean_fp16" else torch.float32).to(ex.dtype)
    a0, a1, cf = _coefficients(ex, ey, et, float(alpha))
    flow0 = flow0.to(ex.dtype)
    if compile:
        bufs = _buffers((n_b, 2, h, w), ex.dtype, ex.device)
        bufs.load(a0, a1, cf, flow0)
        step = _compiled_step()
        for _ in range(iterations):
            bufs.step_with(step)
        return bufs.flow()
    runner = _graphed((n_b, 2, h, w), ex.dtype, ex.device, iterations) if cuda_graph and ex.is_cuda else None
    if runner is not None:
        return runner(a0, a1, cf, flow0)
    bufs = _buffers((n_b, 2, h, w), ex.dtype, ex.device)
    bufs.load(a0, a1, cf, flow0)
    for _ in range(iterations):
        bufs.step()
    return bufs.flow()


def horn_schunck_classic(image1: torch.Tensor, image2: torch.Tensor, *, alpha: float = 15.0,
                         iterations: int = 200, flow0: torch.Tensor | None = None,
                         compile: bool = False, cuda_graph: bool = False, solver: str = "standard") -> torch.Tensor:
    """The 1981 method as published: cube-average derivatives, weighted-average Laplacian, Jacobi
    iterations from flow0 (zero, or the previous frame's flow). Single scale: reliable for motions
    below about a pixel. Convention: (B,1,H,W) float grey levels (alpha in the same units) ->
    (B,2,H,W) float32 pixels, channel 0 = dx; compile, cuda_graph, solver: see hs_jacobi."""
    check_images("horn_schunck_classic", image1, image2)
    ex, ey, et = hs_derivatives(image1, image2)
    return hs_jacobi(ex, ey, et, alpha, iterations, flow0, compile=compile, cuda_graph=cuda_graph, solver=solver)


def horn_schunck(image1: torch.Tensor, image2: torch.Tensor, *, alpha: float = 8.0,
                 iterations: int = 100, warps: int = 3, levels: int = 6, factor: float = 0.5,
                 presmooth: float = 0.5, median: int = 5, derivatives: str = "central",
                 interpolation: str = "bicubic", flow0: torch.Tensor | None = None,
                 min_size: int = 16, compile: bool = False, cuda_graph: bool = False,
                 solver: str = "standard") -> torch.Tensor:
    """Coarse-to-fine Horn-Schunck with warping: the quadratic HS energy linearised around the
    current flow, solved by the same Jacobi iterations at each level of a Gaussian pyramid, with
    `warps` re-linearisations per level (image2 warped towards image1) and an optional median
    filter of the flow after each warp (Sun, Roth & Black 2010). flow0 (full resolution) warm-starts
    the coarsest level used (video: levels=1 or 2 with the previous frame's flow).
    Convention: (B,1,H,W) float grey levels (alpha in the same units) -> (B,2,H,W) float32 pixels,
    channel 0 = dx. presmooth: Gaussian sigma in pixels applied to both images (0 = none);
    median: odd window (1 = off); derivatives: 'central' or 'hs1981'; interpolation: 'bilinear'
    or 'bicubic'; compile, cuda_graph, solver: see hs_jacobi."""
    check_images("horn_schunck", image1, image2)
    if derivatives not in DERIVATIVES:
        raise ValueError(f"horn_schunck: derivatives must be one of {DERIVATIVES}, got {derivatives!r}")
    if warps < 1:
        raise ValueError(f"horn_schunck: warps must be >= 1, got {warps}")
    n_b, _, h, w = dims(image1)
    if flow0 is not None and flow0.shape != (n_b, 2, h, w):
        raise ValueError(f"horn_schunck: flow0 must be {(n_b, 2, h, w)}, got {tuple(flow0.shape)}")
    solver = dict(compile=compile, cuda_graph=cuda_graph, solver=solver)
    return coarse_to_fine(
        image1, image2, lambda im1, im2, flow: _warp_step(im1, im2, flow, alpha, iterations, derivatives,
                                                          interpolation, solver),
        levels=levels, factor=factor, presmooth=presmooth, min_size=min_size, warps=warps, median=median,
        flow0=flow0)


def _warp_step(im1, im2, flow, alpha, iterations, derivatives, interpolation, solver):
    """One linearisation: warp im2 by flow, then solve for the full flow u with data term
    Ex (u - u0) + Ey (v - v0) + Et = 0 (points warped outside the image get no data term)."""
    warped, inside = warp(im2, flow, interpolation)
    if derivatives == "central":
        ex, ey, et = central_derivatives(im1, warped)
    else:
        ex, ey, et = hs_derivatives(im1, warped)
    keep = inside.to(ex.dtype)
    ex, ey = ex * keep, ey * keep
    et = (et * keep).sub_(ex * flow[:, 0:1]).sub_(ey * flow[:, 1:2])
    return hs_jacobi(ex, ey, et, alpha, iterations, flow, **solver)
