"""Middlebury .flo files: float32 tag 202021.25, int32 width, int32 height, then (u, v) float32
interleaved row by row, little-endian. Unknown flow is stored as a value above 1e9.

Convention: flow arrays are (H,W,2) float32 numpy, [..., 0] = u = dx (+x right),
[..., 1] = v = dy (+y down). write_flo also takes (2,H,W) arrays or tensors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TAG = 202021.25
TAG_BYTES = b"PIEH"  # the tag's four bytes as float32 little-endian
UNKNOWN = 1e9        # |u| or |v| above this marks unknown flow


def read_flo(path) -> np.ndarray:
    """Read a .flo file. Convention: returns (H,W,2) float32; raises ValueError on a bad file."""
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != TAG_BYTES:
        raise ValueError(f"{path}: not a Middlebury .flo file (tag {data[:4]!r}, expected {TAG_BYTES!r})")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < width < 100_000 and 0 < height < 100_000):
        raise ValueError(f"{path}: implausible size {width}x{height}")
    need = 12 + width * height * 8
    if len(data) < need:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, expected {need} for {width}x{height}")
    return np.frombuffer(data, "<f4", width * height * 2, 12).reshape(height, width, 2).astype(np.float32)


def as_hw2(flow) -> np.ndarray:
    """(H,W,2) float32 numpy from a (H,W,2) or (2,H,W) array or tensor (channel 0 = dx)."""
    if hasattr(flow, "detach"):
        flow = flow.detach().cpu().numpy()
    arr = np.asarray(flow, np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or 2 not in (arr.shape[0], arr.shape[2]):
        raise ValueError(f"flow: expected (H,W,2) or (2,H,W), got {arr.shape}")
    return arr if arr.shape[2] == 2 else np.moveaxis(arr, 0, -1)


def write_flo(path, flow) -> Path:
    """Write a .flo file (parent folders created). Convention: (H,W,2) or (2,H,W) float pixels."""
    arr = np.ascontiguousarray(as_hw2(flow), dtype="<f4")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = arr.shape[:2]
    with open(path, "wb") as fh:
        fh.write(np.array([TAG], "<f4").tobytes())
        fh.write(np.array([width, height], "<i4").tobytes())
        fh.write(arr.tobytes())
    return path


def known_mask(flow: np.ndarray) -> np.ndarray:
    """True where the flow is known: finite and |u|, |v| <= 1e9. Convention: (H,W,2) -> (H,W) bool."""
    return np.isfinite(flow).all(-1) & (np.abs(flow) <= UNKNOWN).all(-1)
