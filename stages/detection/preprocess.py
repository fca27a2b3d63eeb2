"""Network input from device images: letterbox or plain resize, channel order, scale, batching;
and the way back from network-input pixels to the original image.

Convention: images are (3,H,W) uint8 BGR tensors (as `Frame.image_tensor` gives them), all on one
device; the batch is (B,3,h,w) in `dtype`. A box maps back as x_orig = (x_in - pad_x) / ratio_x;
`Placement` holds ratio (rx, ry) and pad (px, py) per image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

RESIZE_MODES = ("letterbox", "letterbox_center", "stretch")


@dataclass(frozen=True)
class Placement:
    """Where an original image landed in the network input. Convention: ratio = input px per
    original px (x, y); pad = top-left offset of the resized image in input pixels (x, y);
    size = the original (height, width)."""

    ratio: tuple[float, float]
    pad: tuple[float, float]
    size: tuple[int, int]


def placement(size_hw: tuple[int, int], input_hw: tuple[int, int], mode: str) -> tuple[Placement, tuple[int, int]]:
    """The placement of an (H,W) image in an (h,w) input, and the resized (h', w') it is drawn at."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize: expected one of {', '.join(RESIZE_MODES)}, got {mode!r}")
    (big_h, big_w), (h, w) = size_hw, input_hw
    if mode == "stretch":
        return Placement((w / big_w, h / big_h), (0.0, 0.0), (big_h, big_w)), (h, w)
    r = min(h / big_h, w / big_w)
    nh, nw = max(1, min(h, int(round(big_h * r)))), max(1, min(w, int(round(big_w * r))))
    pad = (0.0, 0.0) if mode == "letterbox" else (float((w - nw) // 2), float((h - nh) // 2))
    return Placement((r, r), pad, (big_h, big_w)), (nh, nw)


def make_batch(images: Sequence[torch.Tensor], input_hw: tuple[int, int], mode: str = "letterbox", rgb: bool = False,
               scale: float = 1.0, pad_value: float = 114.0, dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, list[Placement]]:
    """Resize (bilinear, half-pixel centres, as cv2.INTER_LINEAR) and place every image, on its device.

    Convention: images (3,H,W) uint8 BGR; returns (B,3,h,w) `dtype` with pixel values * scale and
    one Placement per image.
    """
    if not images:
        raise ValueError("images: expected at least one image")
    h, w = input_hw
    device = images[0].device
    batch = torch.full((len(images), 3, h, w), float(pad_value), dtype=dtype, device=device)
    places: list[Placement] = []
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"images[{i}]: expected (3,H,W), got {tuple(img.shape)}")
        groups.setdefault((int(img.shape[1]), int(img.shape[2])), []).append(i)
        places.append(None)  # type: ignore[arg-type]
    for size, idx in groups.items():
        place, (nh, nw) = placement(size, input_hw, mode)
        px, py = int(place.pad[0]), int(place.pad[1])
        # CPU: one image at a time, uint8, on the (channels-last) view: no full-size copy at all;
        # CUDA: one stacked call per size in the compute dtype (there is no uint8 kernel there)
        parts = [[i] for i in idx] if device.type == "cpu" else [idx]
        for part in parts:
            stack = images[part[0]][None] if len(part) == 1 else torch.stack([images[i] for i in part])
            if device.type != "cpu":
                stack = stack.to(dtype)
            if (nh, nw) != size:
                stack = F.interpolate(stack, size=(nh, nw), mode="bilinear", align_corners=False)
            batch[part, :, py:py + nh, px:px + nw] = stack.to(dtype)
        for i in idx:
            places[i] = place
    if rgb:
        batch = batch.flip(1)
    if scale != 1.0:
        batch.mul_(scale)
    return batch, places


def unmap_boxes(boxes: torch.Tensor, place: Placement, clip: bool = True) -> torch.Tensor:
    """Network-input xyxy (N,4) -> original-image xyxy, clipped to the image when `clip`."""
    rx, ry = place.ratio
    px, py = place.pad
    scale = boxes.new_tensor([rx, ry, rx, ry])
    out = (boxes - boxes.new_tensor([px, py, px, py])) / scale
    if clip:
        hgt, wid = place.size
        out = torch.stack((out[:, 0].clamp(0, wid), out[:, 1].clamp(0, hgt),
                           out[:, 2].clamp(0, wid), out[:, 3].clamp(0, hgt)), 1)
    return out


def unmap_packed(boxes: torch.Tensor, image: torch.Tensor, places: list[Placement]) -> torch.Tensor:
    """`unmap_boxes` for rows of many images at once: boxes (M,4) in network-input pixels, image (M,)
    the index into `places` of each row; returns original-image xyxy, clipped to each image."""
    table = boxes.new_tensor([[*p.ratio, *p.pad, p.size[1], p.size[0]] for p in places])[image]
    out = (boxes - table[:, [2, 3, 2, 3]]) / table[:, [0, 1, 0, 1]]
    lim = table[:, [4, 5, 4, 5]]
    return torch.minimum(out.clamp(min=0), lim)
