"""The `flow` stage: dense optical flow between consecutive frames, and per-track flow statistics.

Each frame's picture is turned grey and shrunk to the working `scale` (0.25: 640x360 -> 160x90;
`max_width` caps the working width for large frames),
the flow from the previous frame to this one is computed there (warm-started from the previous
flow), and written to Frame.flow as (2,h,w) float32 in FULL-RESOLUTION pixels per frame, channel
0 = dx, at the working size (cheap; Frame.meta['flow_scale'] = scale; `output: full` upsamples to
(2,H,W) and records 1.0). On the host it is a numpy array; on a GPU it stays a tensor on the
device. The first frame of a stream (and after a reset: an index that goes backwards, a size
change) has no pair: Frame.flow stays None and no statistics are written.

When the frame has detections, each box gets the mean and spread of the flow inside it, in
Frame.detections.data: flow_mean (N,2) (dx, dy), flow_std (N,2), flow_mag (N,) (mean |flow|),
float32 full-resolution pixels per frame, from integral images (one pass for all boxes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.frame import Frame
from pipeline.params import param
from pipeline.stage import Stage, StageContext
from stages.opticalflow.methods import METHODS, OPENCV_METHODS, SOLVERS


@dataclass
class HornSchunckParams:
    alpha: float = param(15.0, gt=0, doc="smoothness weight, grey levels (0..255 images; eval flow's "
                         "full-resolution default is 8)")
    iterations: int = param(20, ge=1, le=10000, doc="Jacobi iterations per warp")
    warps: int = param(1, ge=1, le=20, doc="re-linearisations per pyramid level")
    levels: int = param(2, ge=1, le=12, doc="pyramid levels (with warm start few are needed)")
    factor: float = param(0.5, gt=0, lt=1, doc="pyramid downscale per level")
    presmooth: float = param(0.5, ge=0, le=5, doc="Gaussian sigma (pixels) on both images first; 0 = none")
    median: int = param(1, ge=1, le=9, doc="median filter of the flow after each warp (odd; 1 = off)")
    derivatives: str = param("central", choices=("central", "hs1981"), doc="central: five-point on the "
                             "pair's mean (Sun et al.); hs1981: the paper's 2x2x2 cube averages")
    interpolation: str = param("bilinear", choices=("bilinear", "bicubic"), doc="warping interpolation")
    cuda_graph: bool = param(False, doc="on CUDA, replay the Jacobi steps as one CUDA graph per level "
                             "(~7 % faster at 1080p; off by default: a capture failed under 8 processes on one GPU with MPS)")
    solver: str = param("standard", choices=SOLVERS, doc="Jacobi solver: standard, or lean / lean_fp16 (three "
                        "scaled coefficient maps in float32 / float16, clamped borders: less memory traffic per "
                        "step, for large working sizes on a GPU; same flow, to 1e-3 px with float16)")

    def validate(self) -> list[str]:
        return [] if self.median % 2 else [f"median: expected an odd window, got {self.median}"]


@dataclass
class HornSchunckClassicParams:
    alpha: float = param(15.0, gt=0, doc="smoothness weight, grey levels (0..255 images)")
    iterations: int = param(30, ge=1, le=10000, doc="Jacobi iterations per frame")
    cuda_graph: bool = param(False, doc="on CUDA, replay the Jacobi steps as one CUDA graph (see horn_schunck.cuda_graph)")
    solver: str = param("standard", choices=SOLVERS, doc="Jacobi solver (see horn_schunck.solver)")


@dataclass
class LucasKanadeParams:
    sigma: float = param(2.0, gt=0, le=20, doc="Gaussian window std, pixels at the working scale")
    levels: int = param(2, ge=1, le=12, doc="pyramid levels")
    factor: float = param(0.5, gt=0, lt=1, doc="pyramid downscale per level")
    warps: int = param(1, ge=1, le=20, doc="re-linearisations per level")
    reg: float = param(1.0, ge=0, doc="Tikhonov term added to the structure tensor (grey levels^2)")
    presmooth: float = param(0.5, ge=0, le=5, doc="Gaussian sigma on both images first; 0 = none")
    median: int = param(1, ge=1, le=9, doc="median filter after each warp (odd; 1 = off)")
    interpolation: str = param("bilinear", choices=("bilinear", "bicubic"), doc="warping interpolation")

    def validate(self) -> list[str]:
        return [] if self.median % 2 else [f"median: expected an odd window, got {self.median}"]


@dataclass
class FarnebackParams:
    pyr_scale: float = param(0.5, gt=0, lt=1, doc="OpenCV pyr_scale")
    levels: int = param(3, ge=1, le=12, doc="OpenCV levels")
    winsize: int = param(15, ge=3, le=101, doc="OpenCV winsize")
    iterations: int = param(3, ge=1, le=50, doc="OpenCV iterations")
    poly_n: int = param(5, choices=(5, 7), doc="OpenCV poly_n")
    poly_sigma: float = param(1.2, gt=0, le=5, doc="OpenCV poly_sigma")


@dataclass
class DisParams:
    preset: str = param("medium", choices=("ultrafast", "fast", "medium"), doc="OpenCV DIS preset")


@dataclass
class FlowParams:
    method: str = param("horn_schunck", choices=METHODS, doc="horn_schunck (coarse-to-fine), "
                        "horn_schunck_classic (1981, single scale), lucas_kanade (dense), farneback, dis (OpenCV, host)")
    scale: float = param(0.25, gt=0, le=1, doc="working scale of the flow (1 = full resolution)")
    max_width: int | None = param(None, ge=8, doc="cap on the working width in pixels: a wider frame works at "
                                  "max_width / width instead of scale, so a 1080p camera costs what a smaller one "
                                  "does (Frame.meta flow_scale says the scale used); null: no cap")
    warm_start: bool | None = param(None, doc="start from the previous frame's flow; null: yes, except for "
                                    "lucas_kanade (a local method: a stale flow would persist in flat windows)")
    output: str = param("working", choices=("working", "full"), doc="Frame.flow at the working size "
                        "(meta flow_scale) or upsampled to the full frame size")
    track_stats: bool = param(True, doc="per-box flow mean/std/magnitude into detections.data")
    device: str = param("auto", doc="auto (the pipeline's) | cpu | cuda | cuda:N; OpenCV methods run on the host")
    trace: bool = param(True, doc="torch methods: run each frame's flow as one TorchScript trace (made per frame "
                        "size, checked against eager on its first frame): one GIL release instead of hundreds, "
                        "so the stage keeps its speed next to other busy threads")
    horn_schunck: HornSchunckParams = param(default_factory=HornSchunckParams, doc="coarse-to-fine HS: alpha, "
                                            "iterations, warps, levels, factor, presmooth, median, derivatives, "
                                            "interpolation, cuda_graph, solver")
    horn_schunck_classic: HornSchunckClassicParams = param(default_factory=HornSchunckClassicParams,
                                                           doc="the 1981 method: alpha, iterations, cuda_graph, solver")
    lucas_kanade: LucasKanadeParams = param(default_factory=LucasKanadeParams, doc="dense LK: sigma, levels, "
                                            "factor, warps, reg, presmooth, median, interpolation")
    farneback: FarnebackParams = param(default_factory=FarnebackParams, doc="OpenCV Farneback: pyr_scale, levels, "
                                       "winsize, iterations, poly_n, poly_sigma")
    dis: DisParams = param(default_factory=DisParams, doc="OpenCV DIS: preset")


def box_flow_stats(flow, xyxy: np.ndarray, frame_size: tuple[int, int]):
    """Mean, std and mean magnitude of the flow inside each box, via integral images.
    Convention: flow (2,h,w) tensor (any device; values in any unit, returned in the same);
    xyxy (N,4) full-resolution pixels of a (H,W) = frame_size frame; a box covers at least one
    flow pixel. Returns numpy float32 (N,2), (N,2), (N,)."""
    import torch
    import torch.nn.functional as F

    n = len(xyxy)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    _, h, w = flow.shape
    f = flow.double()
    chans = torch.stack([f[0], f[1], f[0] * f[0], f[1] * f[1], torch.sqrt(f[0] * f[0] + f[1] * f[1])])
    table = F.pad(chans.cumsum(1).cumsum(2), (1, 0, 1, 0)).reshape(5, -1)   # (5, (h+1)(w+1))
    sx, sy = w / frame_size[1], h / frame_size[0]
    b = torch.as_tensor(np.asarray(xyxy, np.float64), device=flow.device)
    x0 = torch.floor(b[:, 0] * sx).clamp(0, w - 1).long()
    y0 = torch.floor(b[:, 1] * sy).clamp(0, h - 1).long()
    x1 = torch.maximum(torch.ceil(b[:, 2] * sx).clamp(0, w).long(), x0 + 1)
    y1 = torch.maximum(torch.ceil(b[:, 3] * sy).clamp(0, h).long(), y0 + 1)
    at = lambda y, x: table[:, y * (w + 1) + x]  # noqa: E731
    sums = at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)                  # (5, N)
    count = ((x1 - x0) * (y1 - y0)).double()
    mean = sums / count
    var = (mean[2:4] - mean[0:2] ** 2).clamp_min(0)
    out = torch.cat([mean[0:2], var.sqrt(), mean[4:5]]).T.float().cpu().numpy()
    return out[:, 0:2].copy(), out[:, 2:4].copy(), out[:, 4].copy()


def full_resolution_flow(frame: Frame):
    """Frame.flow resampled to the frame's own (2,H,W) (a no-op at flow_scale 1); numpy or tensor
    as stored. Convention: values are full-resolution pixels per frame, channel 0 = dx."""
    import torch
    import torch.nn.functional as F

    flow = frame.flow
    if flow is None or tuple(flow.shape[-2:]) == frame.shape:
        return flow
    t = torch.as_tensor(flow)[None].float()
    out = F.interpolate(t, size=frame.shape, mode="bilinear", align_corners=False)[0]
    return out if torch.is_tensor(flow) else out.numpy()


class FlowStage(Stage):
    """Dense flow at a working scale with warm start; per-box flow statistics."""

    type_name = "flow"
    Params = FlowParams
    optional_reads = frozenset({"detections", "tracks"})
    writes = frozenset({"flow", "track_flow"})
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def __init__(self, params: FlowParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self.device = None
        self._opencv = None
        self._reset()
        self.pairs = 0
        self.resets = 0
        self.graph_failure = None
        self._traced = None

    def _reset(self) -> None:
        self._prev = None        # previous working-scale grey image (tensor, or uint8 array for OpenCV)
        self._prev_flow = None   # previous flow in working pixels (tensor (1,2,h,w) or array (h,w,2))
        self._prev_index = None
        self._size = None        # (H, W) of the stream

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        from stages.detect import resolve_device

        p = self.params
        self.device = resolve_device(p.device, context.device if context else None)
        if p.method in OPENCV_METHODS:
            from stages.opticalflow.methods import OpenCVFlow

            kwargs = vars(p.dis) if p.method == "dis" else vars(p.farneback)
            self._opencv = OpenCVFlow(p.method, **kwargs)
        else:
            from pipeline.traced import TracedCall
            from stages.opticalflow.methods import torch_flow

            kwargs = vars(getattr(p, p.method))
            # CUDA-graph replay keeps per-thread buffers: it and tracing do not mix
            self._traced = TracedCall(lambda a, b, f0: torch_flow(p.method, a, b, f0, **kwargs), f"{self.name}: trace",
                                      enabled=p.trace and not kwargs.get("cuda_graph", False),
                                      share=("flow", p.method, repr(sorted(kwargs.items())), str(self.device)))
        self._reset()
        if self._traced is not None and self._traced.enabled:
            from pipeline.priming import prime

            # a cold pair (no previous flow) and warm-started pairs, each signature twice: TorchScript
            # traces on the first call and optimizes on the second
            prime(self, 4, self._forget_priming)
            prime(self, 2, self._forget_priming)

    def _forget_priming(self) -> None:
        self._reset()
        self.pairs = self.resets = 0

    # ---- per frame
    def _scale(self, width: int) -> float:
        """The working scale for frames `width` pixels wide: scale, or less under max_width."""
        p = self.params
        return p.scale if p.max_width is None else min(p.scale, p.max_width / width)

    def _working_size(self, height: int, width: int) -> tuple[int, int]:
        scale = self._scale(width)
        h, w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
        if min(h, w) < 8:
            raise ValueError(f"flow: scale {scale:g} leaves {w}x{h} pixels of a {width}x{height} "
                             f"frame; expected at least 8x8 (raise scale or max_width)")
        return h, w

    def _grey(self, frame: Frame, size: tuple[int, int]):
        import cv2
        import torch
        import torch.nn.functional as F

        from stages.opticalflow.pyramid import to_gray

        h, w = size
        if self._opencv is not None or self.device.type == "cpu":
            grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            if grey.shape != (h, w):
                grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
            return grey if self._opencv is not None else torch.from_numpy(grey).float()[None, None]
        grey = to_gray(frame.image_tensor(self.device))
        return F.interpolate(grey, size=size, mode="area") if grey.shape[-2:] != size else grey

    def _compute(self, prev, cur):
        """Flow prev -> cur in working pixels: tensor (1,2,h,w) or array (h,w,2) (OpenCV)."""
        p = self.params
        warm = p.warm_start if p.warm_start is not None else p.method != "lucas_kanade"
        flow0 = self._prev_flow if warm else None
        if self._opencv is not None:
            return self._opencv(prev, cur, flow0)
        return self._traced(prev, cur, flow0)

    def process(self, frame: Frame) -> Frame:
        import torch

        height, width = frame.shape
        if self._size != (height, width) or (self._prev_index is not None and frame.index <= self._prev_index):
            if self._size is not None:
                self.resets += 1
            self._reset()
            self._size = (height, width)
        size = self._working_size(height, width)
        with torch.inference_mode():
            cur = self._grey(frame, size)
            prev, self._prev, self._prev_index = self._prev, cur, frame.index
            if prev is None:
                return frame
            flow = self._compute(prev, cur)
            self._prev_flow = flow
            if self.device.type == "cuda" and self.graph_failure is None:
                from stages.opticalflow.horn_schunck import cuda_graph_failure

                self.graph_failure = cuda_graph_failure()
            self.pairs += 1
            if self._opencv is not None:
                flow = torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1)))
            else:
                flow = flow[0]
            units = torch.tensor([width / size[1], height / size[0]], dtype=flow.dtype, device=flow.device)
            flow = flow * units.view(2, 1, 1)                                  # full-resolution pixels
            frame.meta["flow_scale"] = self._scale(width)
            frame.meta["flow_method"] = self.params.method
            if self.params.track_stats and frame.detections is not None:
                mean, std, mag = box_flow_stats(flow, frame.detections.xyxy, (height, width))
                frame.detections = frame.detections.with_data(flow_mean=mean, flow_std=std, flow_mag=mag)
            if self.params.output == "full" and flow.shape[-2:] != (height, width):
                flow = torch.nn.functional.interpolate(flow[None], size=(height, width), mode="bilinear",
                                                       align_corners=False)[0]
                frame.meta["flow_scale"] = 1.0
            frame.flow = flow.numpy() if flow.device.type == "cpu" else flow
        return frame

    def summary(self) -> dict:
        out = {"method": self.params.method, "scale": self.params.scale, "pairs": self.pairs,
               "resets": self.resets, "device": str(self.device)}
        if self.graph_failure:
            out["cuda_graph"] = f"off ({self.graph_failure})"
        if self._traced is not None and self._traced.enabled:
            out["trace"] = f"off ({self._traced.fallback})" if self._traced.fallback else f"{self._traced.traces} traced"
        return out
