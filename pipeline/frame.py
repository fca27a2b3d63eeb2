"""The currency passed between stages: `Frame` packets and `Detections` arrays.

Conventions (stated once, used everywhere):
- images are H x W x 3 uint8 **BGR** on the host (OpenCV order); a device tensor of the image is
  3 x H x W uint8 BGR, made at most once per frame and device (`Frame.image_tensor`);
- boxes are `xyxy` float32 pixels, origin top-left, x to the right, y down;
- `Frame.time` is seconds from the source's presentation timestamps, never assumed from fps;
- flow is (2, h, w) float32, channel 0 = dx, values in full-resolution pixels per frame, stored at
  the flow stage's working scale: meta['flow_scale'] = s means h = round(H s), w = round(W s)
  (exact per-axis factors: w / W and h / H); s = 1 is full resolution. Reading the flow at a
  full-resolution pixel (x, y): flow[:, y h / H, x w / W]; stages.flow.full_resolution_flow(frame)
  resamples it. None when there is no previous frame;
- homographies are named by frames: `Plane.frame_from_ref` maps reference-frame pixels to this frame.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np


def _as_array(name: str, value: Any, dtype, shape_tail: tuple[int, ...], n: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.size == 0 and shape_tail:
        arr = arr.reshape((0, *shape_tail))
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        want = "(N" + "".join(f", {d}" for d in shape_tail) + ")"
        raise ValueError(f"Detections.{name}: expected shape {want}, got {tuple(arr.shape)}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"Detections.{name}: expected {n} rows (as xyxy), got {arr.shape[0]}")
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """Struct of arrays, one row per object. Immutable: stages make new objects, never edit arrays.

    Convention: xyxy (N,4) float32 pixels; score (N,) float32 in [0,1]; class_id (N,) int32;
    track_id (N,) int64 or None before tracking; data: extra per-row arrays (first dim N);
    names: optional class names indexed by class_id.
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        xyxy = _as_array("xyxy", self.xyxy, np.float32, (4,), None)
        n = xyxy.shape[0]
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", _as_array("score", self.score, np.float32, (), n))
        object.__setattr__(self, "class_id", _as_array("class_id", self.class_id, np.int32, (), n))
        if self.track_id is not None:
            object.__setattr__(self, "track_id", _as_array("track_id", self.track_id, np.int64, (), n))
        data = {}
        for key, value in self.data.items():
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"Detections.data[{key!r}]: expected first dimension {n}, got {arr.shape}")
            data[key] = arr
        object.__setattr__(self, "data", data)
        if n and not np.all(np.isfinite(xyxy)):
            raise ValueError("Detections.xyxy: boxes must be finite")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))

    @classmethod
    def empty(cls, names: Sequence[str] | None = None) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   names=tuple(names) if names is not None else None)

    @classmethod
    def from_xywh(cls, xywh, score, class_id, **kwargs) -> "Detections":
        """Edge conversion from top-left x, y, width, height (e.g. MOT files, after the 1-based shift)."""
        b = np.asarray(xywh, np.float32).reshape(-1, 4)
        xyxy = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
        return cls(xyxy, score, class_id, **kwargs)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index) -> "Detections":
        """Rows selected by a boolean mask, an index array or a slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index], self.score[index], self.class_id[index],
            None if self.track_id is None else self.track_id[index],
            {k: v[index] for k, v in self.data.items()}, self.names,
        )

    def replace(self, **changes) -> "Detections":
        """A new object with some fields replaced (the rest shared, since arrays are never edited)."""
        fields = dict(xyxy=self.xyxy, score=self.score, class_id=self.class_id, track_id=self.track_id,
                      data=self.data, names=self.names)
        fields.update(changes)
        return Detections(**fields)

    def with_data(self, **arrays) -> "Detections":
        return self.replace(data={**self.data, **arrays})

    @property
    def xywh(self) -> np.ndarray:
        return np.concatenate([self.xyxy[:, :2], self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def class_name(self, i: int) -> str:
        cid = int(self.class_id[i])
        if self.names is not None and 0 <= cid < len(self.names):
            return self.names[cid]
        return str(cid)

    @classmethod
    def concatenate(cls, parts: Sequence["Detections"]) -> "Detections":
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        has_tracks = all(p.track_id is not None for p in parts)
        keys = set.intersection(*(set(p.data) for p in parts))
        return cls(
            np.concatenate([p.xyxy for p in parts]), np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.track_id for p in parts]) if has_tracks else None,
            {k: np.concatenate([p.data[k] for p in parts]) for k in keys}, parts[0].names,
        )

    def to_records(self) -> list[dict]:
        """Plain-Python rows for JSON: box, score, class (id and name), track id."""
        out = []
        for i in range(len(self)):
            row = {"box": [round(float(v), 2) for v in self.xyxy[i]], "score": round(float(self.score[i]), 4),
                   "class_id": int(self.class_id[i]), "class": self.class_name(i)}
            if self.track_id is not None:
                row["track_id"] = int(self.track_id[i])
            out.append(row)
        return out


@dataclass(eq=False)
class Plane:
    """A tracked planar surface. Convention: `frame_from_ref` (3x3 float64) maps reference-frame
    pixels to this frame's pixels; `corners` (4,2) float32 are the surface corners in this frame,
    clockwise from top-left; nothing may be drawn on it while `valid` is False."""

    frame_from_ref: np.ndarray | None
    corners: np.ndarray | None
    valid: bool
    inlier_ratio: float = 0.0


class Frame:
    """One decoded frame and every result attached to it on its way down the chain.

    A frame is held by one stage at a time, so its fields need no locking. The image lives on the
    host as BGR uint8 (H,W,3) or on a device as (3,H,W) uint8; each form is made at most once and
    `set_image` (a stage that draws) invalidates the others.
    """

    __slots__ = ("index", "time", "pts", "time_base", "source", "decoded_at", "detections", "flow",
                 "activities", "events", "mask", "plane", "meta", "timings", "_image", "_tensors")

    def __init__(self, index: int, time: float, image, *, source: str = "0", pts: int | None = None,
                 time_base: Fraction | None = None, decoded_at: float | None = None) -> None:
        self.index = int(index)
        self.time = float(time)
        self.pts = pts
        self.time_base = time_base
        self.source = source
        self.decoded_at = _time.perf_counter() if decoded_at is None else decoded_at
        self.detections: Detections | None = None
        self.flow = None          # (2,h,w) float32, numpy on the host or a device tensor; see the module doc
        self.activities: dict[int, str] = {}  # track_id -> activity label
        self.events: list[dict] = []
        # (H,W) uint8 foreground mask, 0 = background, 255 = foreground: a numpy array when the
        # writer ran on the CPU, a torch tensor on the writer's device otherwise. Read it with
        # `mask != 0` (works for both) or stages.segmentation.masks.host_mask / device_mask.
        self.mask = None
        self.plane: Plane | None = None
        self.meta: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self._image = None
        self._tensors: dict[str, Any] = {}
        self.set_image(image)

    # ---- image, host and device ----
    @property
    def image(self) -> np.ndarray:
        """Host image, H x W x 3 uint8 BGR (copied back from a device at most once)."""
        if self._image is None:
            tensor = next(iter(self._tensors.values()))
            # interleave on the device, then one plain copy (a host-side transpose of a 1080p
            # frame costs milliseconds of CPU per frame)
            self._image = np.ascontiguousarray(tensor.permute(1, 2, 0).contiguous().cpu().numpy())
        return self._image

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) without copying from a device."""
        if self._image is not None:
            return int(self._image.shape[0]), int(self._image.shape[1])
        tensor = next(iter(self._tensors.values()))
        return int(tensor.shape[1]), int(tensor.shape[2])

    def image_tensor(self, device="cpu"):
        """Device tensor of the image, 3 x H x W uint8 BGR, uploaded once per device and shared."""
        import torch

        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:  # 'cuda' and 'cuda:0' share one upload
            dev = torch.device("cuda", torch.cuda.current_device())
        key = str(dev)
        tensor = self._tensors.get(key)
        if tensor is None:
            if self._image is not None and key != "cpu":
                # upload the (H,W,3) bytes as they are, planarize on the device
                tensor = torch.from_numpy(self._image).to(key, non_blocking=True).permute(2, 0, 1).contiguous()
            else:
                host = torch.from_numpy(self._image).permute(2, 0, 1) if self._image is not None \
                    else next(iter(self._tensors.values()))
                tensor = host.to(key, non_blocking=True) if key != "cpu" else host.contiguous()
            self._tensors[key] = tensor
        return tensor

    def set_image(self, image) -> None:
        """Replace the picture: a numpy (H,W,3) uint8 BGR array or a (3,H,W) uint8 tensor."""
        self._tensors = {}
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"Frame.image: expected (H,W,3) uint8 BGR, got {image.shape} {image.dtype}")
            self._image = image
        else:
            if tuple(image.shape[:1]) != (3,) or image.ndim != 3 or str(image.dtype) != "torch.uint8":
                raise ValueError(f"Frame.image: expected (3,H,W) uint8 tensor, got {tuple(image.shape)} {image.dtype}")
            self._image = None
            self._tensors[str(image.device)] = image

    def __repr__(self) -> str:
        h, w = self.shape
        n = 0 if self.detections is None else len(self.detections)
        return f"Frame(index={self.index}, time={self.time:.3f}, {w}x{h}, detections={n})"
