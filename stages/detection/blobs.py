"""Boxes from a foreground mask: the weight-free motion detector.

1. `shrink`: the mask is reduced by an integer factor (a cell is foreground when at least `fill` of
   its pixels are), on its own device for a tensor, so only the small mask crosses to the host;
2. `fragments`: 8-connected components (cv2.connectedComponentsWithStats) above `min_fragment`
   pixels (specks of noise go here);
3. `merge_boxes`: fragments whose boxes overlap or lie within `gap` pixels of each other (in x and
   in y) are united, repeatedly, since a united box may reach further fragments;
4. `split_columns` (optional, `split_ratio`): a blob wider than `split_ratio` x its height is split
   at the deepest valley of its column foreground counts (people side by side touch by an arm or
   a shadow-free sliver: the columns between them hold little foreground), again while wide;
5. `motion_boxes`: the whole chain, then objects below `min_area` foreground pixels or above
   `max_area` of the frame are dropped.

Convention: masks are (H,W) uint8 (nonzero = foreground, e.g. 0/255) or bool, numpy or torch (any
device); boxes are (N,4) float32 xyxy in full-resolution pixel edges (a mask[y0:y1, x0:x1] block
gives exactly (x0, y0, x1, y1) when its edges are multiples of the factor); areas in full-res pixels.
"""
from __future__ import annotations

import cv2
import numpy as np


def shrink(mask, factor: int = 1, fill: float = 0.5) -> np.ndarray:
    """(H//f, W//f) uint8 0/1 host mask: a cell is set when >= `fill` of its f*f pixels are set."""
    if factor < 1:
        raise ValueError(f"factor: expected an integer >= 1, got {factor}")
    if not 0 < fill <= 1:
        raise ValueError(f"fill: expected 0 < fill <= 1, got {fill}")
    if mask.ndim != 2:
        raise ValueError(f"mask: expected (H,W), got {tuple(mask.shape)}")
    h, w = (int(mask.shape[0]) // factor) * factor, (int(mask.shape[1]) // factor) * factor
    if not isinstance(mask, np.ndarray) and mask.device.type == "cpu":
        mask = mask.numpy()  # no copy; OpenCV is faster than torch pooling on the CPU
    if not isinstance(mask, np.ndarray):  # a device tensor: reduce there, copy only the small mask
        return shrink_tensor(mask, factor, fill).cpu().numpy()
    m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask
    if m.dtype != np.uint8:
        m = (m != 0).view(np.uint8)
    if factor == 1:
        return (m != 0).view(np.uint8)
    _, bin255 = cv2.threshold(np.ascontiguousarray(m[:h, :w]), 0, 255, cv2.THRESH_BINARY)
    small = cv2.resize(bin255, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return (small >= max(1, int(np.ceil(fill * 255 - 0.5)))).view(np.uint8)


def shrink_tensor(mask, factor: int = 1, fill: float = 0.5):
    """`shrink` for a torch mask on its own device: (H//f, W//f) uint8 0/1 tensor (average pooling)."""
    import torch
    import torch.nn.functional as F

    h, w = (int(mask.shape[0]) // factor) * factor, (int(mask.shape[1]) // factor) * factor
    m = mask[:h, :w]
    if factor > 1:
        m = F.avg_pool2d(m.ne(0).float()[None, None], factor)[0, 0] >= fill - 1e-6
    return m.ne(0).to(torch.uint8)


def fragments(small: np.ndarray, min_pixels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Components of an (h,w) uint8 0/1 mask: boxes (N,4) float32 xyxy in its cells, pixel counts (N,)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    stats = stats[1:]
    stats = stats[stats[:, cv2.CC_STAT_AREA] >= max(1, min_pixels)]
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    boxes = np.stack([x, y, x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]], 1).astype(np.float32)
    return boxes.reshape(-1, 4), stats[:, cv2.CC_STAT_AREA].astype(np.int64)


def merge_boxes(boxes: np.ndarray, weights: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Unite boxes that overlap or are within `gap` of each other along both axes, until none are.
    Convention: boxes (N,4) xyxy, weights (N,) summed per united group; order: by first member."""
    boxes, weights = np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(weights)
    while len(boxes) > 1:
        gx = np.maximum(boxes[:, None, 0], boxes[None, :, 0]) - np.minimum(boxes[:, None, 2], boxes[None, :, 2])
        gy = np.maximum(boxes[:, None, 1], boxes[None, :, 1]) - np.minimum(boxes[:, None, 3], boxes[None, :, 3])
        near = (gx <= gap) & (gy <= gap)
        labels = np.arange(len(boxes))
        while True:  # connected components of `near`: propagate the smallest index
            new = np.where(near, labels[None, :], len(boxes)).min(1)
            new = new[new]
            if np.array_equal(new, labels):
                break
            labels = new
        groups = np.unique(labels)
        if len(groups) == len(boxes):
            break
        order = np.argsort(labels, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
        ranked = boxes[order]
        boxes = np.concatenate([np.minimum.reduceat(ranked[:, :2], starts), np.maximum.reduceat(ranked[:, 2:], starts)], 1)
        weights = np.add.reduceat(weights[order], starts)
    return boxes, weights


def split_columns(small: np.ndarray, boxes: np.ndarray, pixels: np.ndarray, ratio: float = 0.8,
                  valley: float = 0.4, min_width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Split blobs wider than `ratio` x their height (people are ~2.5x taller than wide) at the
    deepest valley of their column foreground counts, when it is at most `valley` x the lower of
    the two peaks beside it and both parts are >= `min_width` columns wide; parts are split again
    while still wide, and each part's box is tightened to its foreground.
    Convention: small (h,w) uint8 0/1; boxes (N,4) float32 xyxy in its cells; pixels (N,) counts
    -> (M,4) float32 boxes, (M,) int64 foreground cells (a part counts the cells inside its box)."""
    if not ratio > 0:
        raise ValueError(f"ratio: expected > 0, got {ratio}")
    if not 0 <= valley < 1:
        raise ValueError(f"valley: expected 0 <= valley < 1, got {valley}")
    out_b, out_p = [], []
    todo = [(b, p) for b, p in zip(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(pixels))]
    while todo:
        box, pix = todo.pop()
        x0, y0, x1, y1 = (int(v) for v in box)
        if x1 - x0 < ratio * (y1 - y0) or x1 - x0 < 2 * min_width:
            out_b.append(box)
            out_p.append(pix)
            continue
        col = small[y0:y1, x0:x1].sum(0, dtype=np.int64)
        left = np.maximum.accumulate(col)                  # highest column at or left of each column
        right = np.maximum.accumulate(col[::-1])[::-1]
        c = np.arange(min_width, len(col) - min_width + 1)
        depth = col[c] / np.maximum(np.minimum(left[c - 1], right[c]), 1)
        if not len(c) or depth.min() > valley:
            out_b.append(box)
            out_p.append(pix)
            continue
        cut = x0 + int(c[np.argmin(depth)])
        for a, b in ((x0, cut), (cut, x1)):
            part = small[y0:y1, a:b]
            rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
            if len(rows):
                todo.append((np.array([a + cols[0], y0 + rows[0], a + cols[-1] + 1, y0 + rows[-1] + 1], np.float32),
                             int(np.count_nonzero(part))))
    if not out_b:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    order = np.lexsort((np.array(out_b)[:, 1], np.array(out_b)[:, 0]))
    return np.array(out_b, np.float32)[order], np.array(out_p, np.int64)[order]


def scaled_sizes(width: int, ref_width: int | None, downscale: int = 2, max_width: int | None = None,
                 min_fragment: float = 16, merge_gap: float | None = 2.0, min_area: float = 150,
                 split_min_width: float = 8) -> dict:
    """The motion_boxes sizes for a mask `width` pixels wide from sizes given in pixels of a frame
    `ref_width` wide (None: of the mask itself): lengths times k = width / ref_width, areas times
    k^2; the reduction factor: `downscale`, or more to work at most `max_width` cells wide.
    Convention: -> dict(factor, min_fragment, merge_gap, min_area, split_min_width), mask pixels."""
    if width < 1:
        raise ValueError(f"width: expected >= 1 pixel, got {width}")
    if ref_width is not None and ref_width < 1:
        raise ValueError(f"ref_width: expected >= 1 pixel or None, got {ref_width}")
    if max_width is not None and max_width < 1:
        raise ValueError(f"max_width: expected >= 1 pixel or None, got {max_width}")
    if downscale < 1:
        raise ValueError(f"downscale: expected an integer >= 1, got {downscale}")
    k = 1.0 if ref_width is None else width / ref_width
    factor = int(downscale) if max_width is None else max(int(downscale), -(-width // max_width))
    return dict(factor=factor, min_fragment=min_fragment * k * k,
                merge_gap=None if merge_gap is None else merge_gap * k, min_area=min_area * k * k,
                split_min_width=split_min_width * k)


def motion_boxes(mask, factor: int = 2, fill: float = 0.5, min_fragment: float = 16, merge_gap: float | None = 2.0,
                 min_area: float = 150, max_area: float = 0.5, max_fragments: int = 512,
                 split_ratio: float | None = None, split_valley: float = 0.4,
                 split_min_width: float = 8) -> tuple[np.ndarray, np.ndarray]:
    """Object boxes (N,4) float32 xyxy (full-res px, clipped to the mask) and their foreground pixel
    counts (N,) int64 from a foreground mask; see the module docstring for the steps. Sizes
    (min_fragment, min_area, merge_gap, split_min_width: the narrowest part a split leaves) are in
    full-resolution pixels (`scaled_sizes` derives them for another frame width); max_area a
    fraction of the frame."""
    full_h, full_w = int(mask.shape[0]), int(mask.shape[1])
    small = shrink(mask, factor, fill)
    cell = factor * factor
    boxes, pixels = fragments(small, int(np.ceil(min_fragment / cell)))
    if len(boxes) > max_fragments:  # a mask full of noise: keep the biggest, bounding the N x N merge
        top = np.argsort(-pixels, kind="stable")[:max_fragments]
        boxes, pixels = boxes[np.sort(top)], pixels[np.sort(top)]
    if merge_gap is not None and len(boxes) > 1:
        boxes, pixels = merge_boxes(boxes, pixels, merge_gap / factor)
    if split_ratio is not None and len(boxes):
        boxes, pixels = split_columns(small, boxes, pixels, split_ratio, split_valley,
                                       max(1, round(split_min_width / factor)))
    boxes = boxes * factor
    pixels = pixels * cell
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, full_w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, full_h)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (pixels >= min_area) & (area <= max_area * full_h * full_w)
    return boxes[keep], pixels[keep]
