"""Batched class-aware NMS against a brute-force greedy reference written in plain Python."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.detection.nms import batched_nms, box_iou, chunks_by_count, select


def iou_one(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, groups, thr) -> list[int]:
    """Textbook greedy NMS: visit by descending score, keep unless a kept box of the group overlaps."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(groups[j] != groups[i] or iou_one(boxes[j], boxes[i]) <= thr for j in kept):
            kept.append(i)
    return kept


def random_boxes(rng, n, span=100.0, size=30.0):
    xy = rng.uniform(0, span, (n, 2))
    wh = rng.uniform(1, size, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("thr", [0.1, 0.45, 0.7])
def test_batched_nms_matches_brute_force(seed, thr, device):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    boxes = random_boxes(rng, n)
    scores = rng.permutation(n).astype(np.float32) / n  # distinct scores: one right answer
    groups = rng.integers(0, 4, n)
    got = batched_nms(torch.tensor(boxes, device=device), torch.tensor(scores, device=device),
                      torch.tensor(groups, device=device), thr).cpu().tolist()
    assert got == reference_nms(boxes.tolist(), scores.tolist(), groups.tolist(), thr)


def test_nms_ties_keep_lower_index_first():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.5, 0.5])
    assert batched_nms(boxes, scores, None, 0.5).tolist() == [0, 2]


def test_box_iou_known_values():
    a = torch.tensor([[0, 0, 10, 10]], dtype=torch.float32)
    b = torch.tensor([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=torch.float32)
    np.testing.assert_allclose(box_iou(a, b)[0].numpy(), [1.0, 50 / 150, 0.0, 0.0], rtol=1e-6)


def test_select_batch_equals_per_image_reference(device):
    """select() over a batch: best class, threshold, class-aware NMS per image, max detections."""
    rng = np.random.default_rng(3)
    bsz, n, nc = 3, 200, 5
    boxes = np.stack([random_boxes(rng, n) for _ in range(bsz)])
    scores = rng.uniform(0, 1, (bsz, n, nc)).astype(np.float32)
    out = select(torch.tensor(boxes, device=device), torch.tensor(scores, device=device), 0.6, 0.5, max_detections=20)
    for i in range(bsz):
        conf, cls = scores[i].max(1), scores[i].argmax(1)
        cand = np.flatnonzero(conf >= 0.6)
        kept = reference_nms(boxes[i][cand].tolist(), conf[cand].tolist(), cls[cand].tolist(), 0.5)[:20]
        b, s, c = (t.cpu().numpy() for t in out[i])
        np.testing.assert_array_equal(b, boxes[i][cand][kept])
        np.testing.assert_array_equal(s, conf[cand][kept])
        np.testing.assert_array_equal(c, cls[cand][kept])


def test_select_class_filter_and_agnostic():
    boxes = torch.tensor([[[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]]], dtype=torch.float32)
    scores = torch.tensor([[[0.9, 0.1], [0.1, 0.8], [0.2, 0.7]]])
    (b, s, c), = select(boxes, scores, 0.5, 0.5)  # class-aware: the overlapping pair differ in class
    assert c.tolist() == [0, 1, 1]
    (b, s, c), = select(boxes, scores, 0.5, 0.5, class_agnostic=True)
    assert c.tolist() == [0, 1] and b[1].tolist() == [50, 50, 60, 60]
    (b, s, c), = select(boxes, scores, 0.5, 0.5, keep_classes=torch.tensor([False, True]))
    assert c.tolist() == [1, 1]


def test_select_chunks_large_batches():
    """Many images with many candidates go through NMS in chunks and give what one image alone gives."""
    rng = np.random.default_rng(5)
    boxes = torch.tensor(random_boxes(rng, 3000, span=1000))
    scores = torch.tensor(rng.uniform(0.5, 1, (3000, 2)).astype(np.float32))
    one = select(boxes[None], scores[None], 0.5, 0.5, max_detections=3000)[0]
    many = select(boxes[None].repeat(3, 1, 1), scores[None].repeat(3, 1, 1), 0.5, 0.5, max_detections=3000)
    for b, _, c in many:
        assert torch.equal(b, one[0]) and torch.equal(c, one[2])


@pytest.mark.parametrize("counts, limit, expected", [
    ([1, 2, 3], 10, [(0, 3)]),
    ([5, 5, 5], 10, [(0, 2), (2, 3)]),
    ([20, 1, 1], 10, [(0, 1), (1, 3)]),
    ([], 10, [(0, 0)]),
])
def test_chunks_by_count(counts, limit, expected):
    assert [(s.start, s.stop) for s in chunks_by_count(counts, limit)] == expected


def test_bad_threshold():
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        batched_nms(torch.zeros(1, 4), torch.zeros(1), None, 1.5)
