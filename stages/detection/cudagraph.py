"""CUDA graphs for a network's forward pass: a converted ONNX graph runs hundreds of small kernels,
each dispatched from Python (~6 ms per YOLOX-Nano forward on an H100, whatever the batch); a
captured graph replays them in one launch.

Convention: `GraphedForward(run, max_shapes)(x)` equals `run(x)` for (B,3,h,w) CUDA tensors; one
graph is captured per input shape and dtype (at most `max_shapes`; other shapes run eagerly); the
returned tensor is a fresh copy, safe to keep across calls. A forward that cannot be captured (a
host sync inside, a CPU op) runs eagerly from then on, and `failure` says why.
"""
from __future__ import annotations

import torch


class GraphedForward:
    def __init__(self, run, max_shapes: int = 4, warmup: int = 3) -> None:
        self.run, self.max_shapes, self.warmup = run, max_shapes, warmup
        self.graphs: dict = {}
        self.failure: str | None = None

    def _capture(self, x: torch.Tensor):
        static_in = x.clone()
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):  # lazy inits and cudnn autotuning happen outside the capture
                self.run(static_in)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.run(static_in)
        return graph, static_in, static_out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.failure is not None or x.device.type != "cuda":
            return self.run(x)
        key = (tuple(x.shape), x.dtype)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_shapes:
                return self.run(x)
            try:
                entry = self.graphs[key] = self._capture(x)
            except Exception as exc:  # noqa: BLE001 - not capturable: stay eager
                self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                torch.cuda.synchronize(x.device)
                return self.run(x)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
