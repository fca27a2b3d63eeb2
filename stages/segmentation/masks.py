"""Foreground masks: the host/device conventions and masks made from boxes.

Convention (Frame.mask): (H,W) uint8, 0 = background, 255 = foreground; a numpy array on the host
or a torch tensor on the device the producing stage ran on. Readers test `mask != 0` (or > 127),
which works for both, or call `host_mask` / `device_mask`.
"""
from __future__ import annotations

import numpy as np


def host_mask(mask) -> np.ndarray | None:
    """Any mask (numpy or torch; bool, uint8 or float) -> (H,W) uint8 0/255 numpy, or None."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        mask = mask.detach()
        mask = (mask > 0.5) if mask.dtype.is_floating_point else (mask != 0)
        return mask.to("cpu").numpy().astype(np.uint8) * 255
    if mask.dtype == np.uint8:
        return mask
    return (mask > 0.5 if mask.dtype.kind == "f" else mask != 0).astype(np.uint8) * 255


def device_mask(mask, device="cpu"):
    """Any mask -> (H,W) bool torch tensor on `device` (no copy when it is already there)."""
    import torch

    if mask is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(mask)) if isinstance(mask, np.ndarray) else mask
    t = t.to(device)
    return (t > 0.5) if t.dtype.is_floating_point else (t != 0)


def boxes_mask(xyxy: np.ndarray, height: int, width: int, grow: float = 0.0) -> np.ndarray:
    """Union of boxes as a mask. Convention: xyxy (N,4) float pixels (x2, y2 exclusive), `grow` px
    added on every side; returns (H,W) uint8 0/255."""
    out = np.zeros((height, width), np.uint8)
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    for x1, y1, x2, y2 in boxes:
        c1, r1 = max(0, int(np.floor(x1 - grow))), max(0, int(np.floor(y1 - grow)))
        c2, r2 = min(width, int(np.ceil(x2 + grow))), min(height, int(np.ceil(y2 + grow)))
        if c2 > c1 and r2 > r1:
            out[r1:r2, c1:c2] = 255
    return out
