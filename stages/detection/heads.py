"""Output decoders of YOLO-family detectors, their pre-processing recipes, and head detection.

Every decoder turns the network's first output into boxes and per-class scores in the coordinates
of the network input; `nms.select` and `preprocess.unmap_boxes` do the rest.

Convention: `decode(out, input_hw)` takes the raw output tensor (any float dtype, on any device) and
returns `(boxes, scores)`: boxes (B,N,4) float32 xyxy in network-input pixels, scores (B,N,nc)
float32 in [0,1]. `input_hw` is the network input (height, width) in pixels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

STRIDES = (8, 16, 32)


class HeadError(ValueError):
    """The model's output does not fit the chosen head, or no head can be told from it."""


@dataclass(frozen=True)
class Recipe:
    """How the head's models expect their input. Convention: resize is 'letterbox' (aspect kept,
    pasted at the top-left), 'letterbox_center' (aspect kept, centred) or 'stretch' (plain resize);
    pixels are multiplied by `scale` after an optional BGR->RGB swap; padding uses `pad_value`
    (in 0..255 units, before scaling)."""

    resize: str
    rgb: bool
    scale: float
    pad_value: float = 114.0
    default_size: tuple[int, int] = (640, 640)


def grid_cells(input_hw: tuple[int, int], strides=STRIDES) -> int:
    """Number of anchor points of an anchor-free head: sum over strides of (H/s)*(W/s)."""
    h, w = input_hw
    return sum((h // s) * (w // s) for s in strides)


@functools.lru_cache(maxsize=16)
def _grid(input_hw, strides, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,2) x,y cell indices and (N,1) strides, in the row-major, stride-ascending order of YOLOX
    (cached per input size and device; never written to)."""
    grids, steps = [], []
    for s in strides:
        hs, ws = input_hw[0] // s, input_hw[1] // s
        yv, xv = torch.meshgrid(torch.arange(hs, device=device), torch.arange(ws, device=device), indexing="ij")
        grids.append(torch.stack((xv, yv), -1).reshape(-1, 2))
        steps.append(torch.full((hs * ws, 1), float(s), device=device))
    return torch.cat(grids).float(), torch.cat(steps)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    half = b[..., 2:4] / 2
    return torch.cat((b[..., 0:2] - half, b[..., 0:2] + half), -1)


def decode_yolox(out: torch.Tensor, input_hw) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOX exported without decoding (the official ONNX): (B, N, 5+nc) with N = grid_cells;
    cx,cy = (o[0:2] + grid) * stride, w,h = exp(o[2:4]) * stride; obj and classes already sigmoid-ed."""
    out = out.float()
    grid, stride = _grid(tuple(input_hw), STRIDES, out.device)
    xy = (out[..., 0:2] + grid) * stride
    wh = torch.exp(out[..., 2:4]) * stride
    boxes = cxcywh_to_xyxy(torch.cat((xy, wh), -1))
    return boxes, out[..., 5:] * out[..., 4:5]


def decode_yolov5(out: torch.Tensor, input_hw) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv5 export: (B, N, 5+nc), N = 3 anchors x grid_cells; cx,cy,w,h in input pixels, obj and
    classes already sigmoid-ed; score = obj * cls."""
    out = out.float()
    return cxcywh_to_xyxy(out[..., 0:4]), out[..., 5:] * out[..., 4:5]


def decode_yolov8(out: torch.Tensor, input_hw) -> tuple[torch.Tensor, torch.Tensor]:
    """Ultralytics YOLOv8 / YOLO11 (and YOLOv5u) export: (B, 4+nc, N); cx,cy,w,h in input pixels,
    class scores already sigmoid-ed, no objectness."""
    out = out.float().transpose(1, 2)
    return cxcywh_to_xyxy(out[..., 0:4]), out[..., 4:]


def decode_fastestdet(out: torch.Tensor, input_hw) -> tuple[torch.Tensor, torch.Tensor]:
    """FastestDet: (B, 5+nc, GH, GW); per cell o[0] objectness (sigmoid-ed), o[1:3] x,y offsets
    (tanh), o[3:5] w,h (sigmoid, fractions of the image), o[5:] softmax class probabilities;
    cx = (gx + tanh(o1)) / GW; score = obj^0.6 * cls^0.4."""
    out = out.float()
    b, c, gh, gw = out.shape
    out = out.permute(0, 2, 3, 1).reshape(b, gh * gw, c)
    yv, xv = torch.meshgrid(torch.arange(gh, device=out.device), torch.arange(gw, device=out.device), indexing="ij")
    cx = (xv.reshape(-1).float() + torch.tanh(out[..., 1])) / gw
    cy = (yv.reshape(-1).float() + torch.tanh(out[..., 2])) / gh
    wh = torch.sigmoid(out[..., 3:5])
    h, w = input_hw
    boxes = cxcywh_to_xyxy(torch.stack((cx * w, cy * h, wh[..., 0] * w, wh[..., 1] * h), -1))
    scores = out[..., 0:1].clamp(min=0).pow(0.6) * out[..., 5:].clamp(min=0).pow(0.4)
    return boxes, scores


@dataclass(frozen=True)
class Head:
    name: str
    decode: Callable
    recipe: Recipe
    layout: str  # the expected output, for messages

    def num_classes(self, shape: tuple[int, ...]) -> int:
        return shape[1] - 5 if self.name == "fastestdet" else shape[1] - 4 if self.name == "yolov8" else shape[2] - 5


HEADS: dict[str, Head] = {
    "yolox": Head("yolox", decode_yolox, Recipe("letterbox", rgb=False, scale=1.0, default_size=(416, 416)),
                  "(B, N, 5+nc) with N = cells at strides 8/16/32"),
    "fastestdet": Head("fastestdet", decode_fastestdet, Recipe("stretch", rgb=False, scale=1 / 255, default_size=(352, 352)),
                       "(B, 5+nc, GH, GW)"),
    "yolov8": Head("yolov8", decode_yolov8, Recipe("letterbox_center", rgb=True, scale=1 / 255),
                   "(B, 4+nc, N) with N = cells at strides 8/16/32"),
    "yolov5": Head("yolov5", decode_yolov5, Recipe("letterbox_center", rgb=True, scale=1 / 255),
                   "(B, N, 5+nc) with N = 3 x cells at strides 8/16/32"),
}


def _expected_n(name: str, input_hw) -> int | None:
    cells = grid_cells(input_hw)
    return {"yolox": cells, "yolov8": cells, "yolov5": 3 * cells}.get(name)


def check_output(name: str, shape: tuple[int, ...], input_hw) -> int:
    """Number of classes when `shape` fits head `name` at `input_hw`, else HeadError saying what
    was expected."""
    head = HEADS[name]
    shape = tuple(int(s) for s in shape)
    n = _expected_n(name, input_hw)
    h, w = input_hw
    want = head.layout + (f" = {n}" if n is not None else "")
    if name == "fastestdet":
        ok = len(shape) == 4 and shape[1] > 5
    elif name == "yolov8":
        ok = len(shape) == 3 and shape[2] == n and shape[1] > 4
    else:
        ok = len(shape) == 3 and shape[1] == n and shape[2] > 5
    if not ok:
        raise HeadError(f"head {name!r} at input {h}x{w} expects output {want}, got {shape}")
    return head.num_classes(shape)


def detect_head(shape: tuple[int, ...], input_hw) -> str:
    """The head that fits the output `shape` at `input_hw`, when only one does; else HeadError with
    the line to add to the config."""
    fits = []
    for name in HEADS:
        try:
            check_output(name, shape, input_hw)
            fits.append(name)
        except HeadError:
            pass
    if len(fits) == 1:
        return fits[0]
    h, w = input_hw
    what = f"fits {', '.join(fits)}" if fits else "fits no known head"
    raise HeadError(f"cannot tell the head from output {tuple(int(s) for s in shape)} at input {h}x{w} ({what}); "
                    f"set head: to one of {', '.join(HEADS)}")
