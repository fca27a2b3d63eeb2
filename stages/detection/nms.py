"""Batched, class-aware non-maximum suppression in torch (no torchvision), and the selection of
candidates (best class, score threshold, class filter, top-k) that comes before it.

Greedy NMS keeps a box unless a higher-scored kept box of its group overlaps it by more than the
threshold. Here it is computed without a Python loop over boxes: with M[j,i] = "j ranks above i, same
group, IoU > t", the kept set is the unique fixed point of keep[i] = not any_j(keep[j] and M[j,i]);
iterating that map from all-True fixes one more rank per step, and stops as soon as nothing changes
(usually 2 to 4 steps, each one K x K boolean reduction on the device).
Groups (image index x class) are compared directly, so no coordinate offset (which loses float32
precision at large offsets) is needed.
"""
from __future__ import annotations

from typing import Sequence

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU. Convention: a (N,4), b (M,4) xyxy, same units; returns (N,M) float32."""
    a, b = a.float(), b.float()
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor | None,
                iou_threshold: float) -> torch.Tensor:
    """Greedy NMS within each group. Convention: boxes (K,4) xyxy, scores (K,), groups (K,) int
    (image and/or class; None = one group); returns the kept indices (long), highest score first
    (ties keep the lower index first, like a stable sort)."""
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold: expected 0 <= x <= 1, got {iou_threshold}")
    k = boxes.shape[0]
    if k == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores.float(), descending=True, stable=True).indices
    b = boxes[order]
    over = box_iou(b, b) > iou_threshold
    if groups is not None:
        g = groups[order]
        over &= g[:, None] == g[None, :]
    over = torch.triu(over, diagonal=1)  # over[j, i]: j ranks above i and would suppress it
    keep = torch.ones(k, dtype=torch.bool, device=boxes.device)
    for _ in range(k):
        new = ~(over & keep[:, None]).any(0)
        if torch.equal(new, keep):
            break
        keep = new
    return order[keep]


def select_packed(boxes: torch.Tensor, scores: torch.Tensor, score_threshold: float, iou_threshold: float,
                  keep_classes: torch.Tensor | None = None, max_detections: int = 300, max_candidates: int = 4096,
                  class_agnostic: bool = False):
    """Per image: best class per box, class filter, score threshold, top `max_candidates`,
    class-aware NMS over the batch (in chunks of images, so that no K x K matrix outgrows
    max(max_candidates, 4096) boxes), then the best `max_detections`; a handful of host syncs in
    all, whatever the batch size.

    Convention: boxes (B,N,4) xyxy, scores (B,N,nc) in [0,1]; keep_classes (nc,) bool or None (all);
    returns (xyxy (M,4) float32, score (M,), class_id (M,) long, image (M,) long, counts: list of B
    ints), rows grouped by image in batch order, best score first within an image.
    """
    bsz, _, nc = scores.shape
    conf, cls = scores.float().max(-1)
    ok = conf >= score_threshold
    if keep_classes is not None:
        ok &= keep_classes.to(cls.device)[cls]
    conf = torch.where(ok, conf, torch.full_like(conf, -1.0))
    top = min(max_candidates, conf.shape[1])
    top_conf, top_idx = conf.topk(top, dim=1) if top < conf.shape[1] else (conf, None)
    img, pos = torch.nonzero(top_conf >= 0, as_tuple=True)
    idx = pos if top_idx is None else top_idx[img, pos]
    cand_boxes, cand_conf, cand_cls = boxes[img, idx].float(), conf[img, idx], cls[img, idx]
    group = img if class_agnostic else img * nc + cand_cls
    counts = torch.bincount(img, minlength=bsz).tolist()
    starts = [0]
    for n in counts:
        starts.append(starts[-1] + n)
    keeps = [torch.zeros(0, dtype=torch.long, device=img.device)]
    for part in chunks_by_count(counts, max(max_candidates, 4096)):  # bounds the K x K matrices
        lo, hi = starts[part.start], starts[part.stop]
        keeps.append(lo + batched_nms(cand_boxes[lo:hi], cand_conf[lo:hi], group[lo:hi], iou_threshold))
    keep = torch.cat(keeps)
    kept_img = img[keep]
    order = torch.sort(kept_img, stable=True).indices  # by image, score order kept within each
    keep, kept_img = keep[order], kept_img[order]
    per = torch.bincount(kept_img, minlength=bsz)
    rank = torch.arange(keep.numel(), device=keep.device) - (torch.cumsum(per, 0) - per)[kept_img]
    best = rank < max_detections
    keep, kept_img = keep[best], kept_img[best]
    return (cand_boxes[keep], cand_conf[keep], cand_cls[keep], kept_img,
            per.clamp(max=max_detections).tolist())


def select(boxes: torch.Tensor, scores: torch.Tensor, score_threshold: float, iou_threshold: float,
           keep_classes: torch.Tensor | None = None, max_detections: int = 300, max_candidates: int = 4096,
           class_agnostic: bool = False) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`select_packed`, split per image: B tuples (xyxy (n,4) float32, score (n,), class_id (n,) long)."""
    b, s, c, _, counts = select_packed(boxes, scores, score_threshold, iou_threshold, keep_classes,
                                       max_detections, max_candidates, class_agnostic)
    return list(zip(b.split(counts), s.split(counts), c.split(counts)))


def chunks_by_count(counts: Sequence[int], limit: int) -> list[slice]:
    """Consecutive image ranges whose candidate counts sum to at most `limit` (at least one image)."""
    out, start, total = [], 0, 0
    for i, n in enumerate(counts):
        if i > start and total + n > limit:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    out.append(slice(start, len(counts)))
    return out
