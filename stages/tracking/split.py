"""Detections reshaped by the tracks' predictions: a blob that holds two or more tracks is split
into one box per track, fragments that lie inside one track's box are joined.

A foreground-blob detector (stages.detection.blobs) sees two people who walk close together, or
cross, as one blob, and a person whose middle matches the background as two fragments. The tracker
knows better for a while: it predicts where each confirmed track is now. `split_by_tracks` uses
those predictions (the caller passes only confirmed, recently seen tracks):

1. a track belongs to the detection that holds at least `cover` of its predicted box (the one that
   holds most); two tracks in one detection whose boxes share at least `same` of the narrower
   box's columns are one track here: the wider one is left out when it is 1.5x wider (a track
   born on a merged blob), else the one with fewer hits (torso and legs of one person; a person
   hidden behind another, who coasts on the prediction until they part);
2. a detection that holds two or more tracks is replaced by one box per track: the predicted box,
   moved onto the blob's edge where it is the outermost box on that side (within `snap` of its
   size; a box outermost on both sides of an axis takes the blob's extent), clipped to the blob;
   with a mask, a track box whose foreground fill is below `min_fill` is left out (a person who
   left the blob, a stale track), and when fewer than two stay the blob stays whole;
3. two or more detections that each lie (`cover` of their own area) inside the predicted box of
   one track and of no other are joined into their union box, when they are stacked (the union is
   at most 1.25x as wide as the widest: side by side they are two people) and the union fits the
   predicted box better (IoU higher by 0.1) than any of them alone.

Convention: boxes (N,4) and predicted (M,4) xyxy float pixels; hits (M,) int (matches so far;
it breaks ties of `same`); mask (H,W) uint8/bool numpy or torch (nonzero = foreground) or None. Returns boxes
(K,4) float32 and origin (K,) int64: the input row each output row comes from (a joined box: its
first fragment), in input order, split boxes in the order of their tracks.
"""
from __future__ import annotations

import numpy as np


def _check(name: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise ValueError(f"{name}: expected {low} <= x <= {high}, got {value!r}")
    return float(value)


def _inter(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    return np.prod(np.maximum(wh, 0.0), axis=2)


def _area(a: np.ndarray) -> np.ndarray:
    return np.prod(np.maximum(a[:, 2:] - a[:, :2], 0.0), axis=1)


def _iou1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N,4) or (4,) with one box b (4,)."""
    a = a.reshape(-1, 4)
    i = _inter(a, b[None])[:, 0]
    return i / np.maximum(_area(a) + _area(b[None]) - i, 1e-9)


def box_fill(mask, boxes: np.ndarray) -> np.ndarray:
    """Foreground fraction of each box. Convention: mask (H,W) nonzero = foreground, numpy or a torch
    tensor on any device (only the boxes' counts come back); boxes (N,4) xyxy px (rounded to pixel
    edges, clipped to the mask) -> (N,) float64 in [0, 1]."""
    h, w = mask.shape[:2]
    out = np.zeros(len(boxes))
    for i, (x0, y0, x1, y1) in enumerate(np.rint(boxes).astype(np.int64)):
        x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
        if x1 > x0 and y1 > y0:
            out[i] = int((mask[y0:y1, x0:x1] != 0).sum()) / ((x1 - x0) * (y1 - y0))
    return out


def snap_to_blob(blob: np.ndarray, preds: np.ndarray, snap: float = 0.2) -> np.ndarray:
    """Boxes for K tracks inside one blob: per axis, a predicted box that is the outermost on one
    side (its edge within `snap` x its size of the group's outermost edge) is moved so that edge
    lies on the blob's edge; outermost on both sides: the blob's extent; then clipped to the blob.
    Convention: blob (4,), preds (K,4) xyxy px -> (K,4) float64."""
    out = np.asarray(preds, np.float64).copy()
    for lo, hi in ((0, 2), (1, 3)):
        size = out[:, hi] - out[:, lo]
        first = out[:, lo] <= out[:, lo].min() + snap * size
        last = out[:, hi] >= out[:, hi].max() - snap * size
        shift = np.where(first, blob[lo] - out[:, lo], np.where(last, blob[hi] - out[:, hi], 0.0))
        both = first & last
        out[:, lo] += shift
        out[:, hi] += shift
        out[both, lo], out[both, hi] = blob[lo], blob[hi]
        out[:, lo] = np.clip(out[:, lo], blob[lo], blob[hi])
        out[:, hi] = np.clip(out[:, hi], blob[lo], blob[hi])
    return out


def split_by_tracks(boxes, predicted, hits=None, mask=None, cover: float = 0.6, same: float = 0.7,
                    snap: float = 0.2, min_fill: float = 0.2, join: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Split blobs holding several predicted tracks, join fragments inside one (module docstring)."""
    _check("cover", cover, 0.0, 1.0)
    _check("same", same, 0.0, 1.0)
    _check("snap", snap, 0.0, 1.0)
    _check("min_fill", min_fill, 0.0, 1.0)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    pred = np.asarray(predicted, np.float64).reshape(-1, 4)
    n, m = len(boxes), len(pred)
    unchanged = boxes.astype(np.float32), np.arange(n, dtype=np.int64)
    if n == 0 or m == 0:
        return unchanged
    hits = np.zeros(m) if hits is None else np.asarray(hits, np.float64)
    inter = _inter(pred, boxes)                                    # (M,N)
    area_p = np.maximum(_area(pred), 1e-9)
    owner = inter.argmax(1)                                         # track -> its detection
    held = inter[np.arange(m), owner] >= cover * area_p
    # two tracks over the same columns (x overlap >= `same` of the narrower) are one here: torso and
    # legs of one person, a merged blob's track over a person's (the wider goes), or a person hidden
    # behind another (the one with fewer hits coasts on its prediction)
    width = np.maximum(pred[:, 2] - pred[:, 0], 1e-9)
    xo = np.maximum(np.minimum(pred[:, None, 2], pred[None, :, 2]) - np.maximum(pred[:, None, 0], pred[None, :, 0]), 0)
    narrow = np.minimum(width[:, None], width[None, :])
    rank = np.empty(m, np.int64)
    rank[np.argsort(-hits, kind="stable")] = np.arange(m)        # 0: most hits
    for k, l in zip(*np.nonzero(np.triu(xo >= same * narrow, 1))):
        if held[k] and held[l] and owner[k] == owner[l]:
            if max(width[k], width[l]) >= 1.5 * min(width[k], width[l]):
                held[k if width[k] > width[l] else l] = False
            else:
                held[k if rank[k] > rank[l] else l] = False
    out_boxes = []
    replaced = np.zeros(n, bool)
    for j in np.unique(owner[held]):
        ks = np.flatnonzero(held & (owner == j))
        if len(ks) < 2:
            continue
        split = snap_to_blob(boxes[j], pred[ks], snap)
        if mask is not None and min_fill > 0:
            split = split[box_fill(mask, split) >= min_fill]
        split = split[_area(split) > 0]
        if len(split) < 2:
            continue
        replaced[j] = True
        out_boxes.append((j, split))
    if join:
        inside = inter >= cover * np.maximum(_area(boxes), 1e-9)[None, :]   # (M,N): detection inside track box
        alone = inside.sum(0) == 1                                          # ... and inside no other
        for k in np.flatnonzero(inside.sum(1) >= 2):
            js = np.flatnonzero(inside[k] & alone & ~replaced)
            if len(js) < 2:
                continue
            union = np.concatenate([boxes[js, :2].min(0), boxes[js, 2:].max(0)])
            wide = union[2] - union[0] > 1.25 * (boxes[js, 2] - boxes[js, 0]).max()   # side by side: two people
            fit = float(_iou1(union, pred[k])[0]) > float(_iou1(boxes[js], pred[k]).max()) + 0.1
            if wide or not fit:
                continue
            replaced[js] = True
            out_boxes.append((int(js[0]), union[None]))
    if not replaced.any():
        return unchanged
    keep = np.flatnonzero(~replaced)
    rows = [(int(j), boxes[j][None]) for j in keep] + out_boxes
    rows.sort(key=lambda r: r[0])
    origin = np.concatenate([np.full(len(b), j, np.int64) for j, b in rows])
    return np.concatenate([b for _, b in rows]).astype(np.float32), origin
