"""Priming in setup(): a stage that traces its kernels per frame size (flow, background) runs a few
synthetic frames of the source's size before the stream starts, then forgets them. The one-time
costs (the trace, its check against eager, TorchScript's first optimizing runs: ~0.5 s on the
default chain) are then paid while the stages set up in parallel, not as a stall of the first
frames (a live source would drop frames behind it). (The detector primes its own way: a trace per
batch size, on random pixels, in DetectStage._prime.)

Convention: synthetic frames are BGR uint8 (H,W,3) of a smooth random texture that moves one pixel
right per frame, indices 0..count-1 at 30 frames/s.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from .frame import Frame

log = logging.getLogger("vidpipe")
MIN_SIZE = 16     # smaller sources (tests) are not primed


def synthetic_frames(width: int, height: int, count: int, seed: int = 0) -> list[Frame]:
    """`count` frames of a textured picture moving right by 1 px per frame (see Convention)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width + count, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 2.0)
    return [Frame(i, i / 30.0, np.ascontiguousarray(base[:, count - i:count - i + width])) for i in range(count)]


def prime(stage, count: int, reset: Callable[[], None]) -> None:
    """Run `count` synthetic frames of the stage's source size through stage.process, then call
    `reset` (which must leave the stage as setup() made it, traces kept). Failures are not raised
    here: the first real frame meets the same code and reports it."""
    info = stage.context.source if stage.context is not None else None
    if info is None or min(info.width or 0, info.height or 0) < MIN_SIZE:
        return
    try:
        for frame in synthetic_frames(info.width, info.height, count):
            stage.process(frame)
    except Exception as exc:  # noqa: BLE001 - the real frames will say it
        log.debug("%s: priming skipped (%s: %s)", stage.name, type(exc).__name__, exc)
    finally:
        _sync_cuda()
        reset()


def _sync_cuda() -> None:
    """Let primed device work finish before the stage threads start on their own CUDA streams."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
