"""IoU cost and Hungarian assignment (scipy's `linear_sum_assignment`) with a threshold.

Convention: boxes are (N,4) xyxy pixels (any float dtype; computed in float64); a similarity
matrix is (N_a, N_b) float64, larger is better (IoU in [0, 1]); matches are (M,2) int64 rows
(row in a, column in b).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_NO_MATCHES = np.zeros((0, 2), np.int64)


def iou_matrix(a, b, area_a=None, area_b=None) -> np.ndarray:
    """Pairwise intersection over union. Convention: a (N,4), b (M,4) xyxy -> (N,M) float64.

    Boxes with no area have IoU 0 with everything. `area_a`/`area_b` ((N,), (M,)) may be given
    when already known (they must then be positive), saving their computation.
    """
    if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 2):
        a = np.asarray(a, np.float64).reshape(-1, 4)
    if not (isinstance(b, np.ndarray) and b.dtype == np.float64 and b.ndim == 2):
        b = np.asarray(b, np.float64).reshape(-1, 4)
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh -= np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    if area_a is not None and area_b is not None:
        union = np.asarray(area_a)[:, None] - inter
        union += area_b
        return np.divide(inter, union, out=union)
    if area_a is None:
        area_a = np.maximum(np.prod(a[:, 2:] - a[:, :2], axis=1), 0.0)
    if area_b is None:
        area_b = np.maximum(np.prod(b[:, 2:] - b[:, :2], axis=1), 0.0)
    union = area_a[:, None] + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def associate(similarity, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-total-similarity one-to-one matching among pairs with similarity >= threshold.

    Pairs below the threshold are never matched and never traded against valid ones. When each
    row and column has at most one valid pair (the common case) those pairs are the answer, as in
    SORT; otherwise the Hungarian method runs on the matrix with invalid pairs set to 0.

    Convention: similarity (N_a, N_b), threshold > 0. Returns (matches (M,2) int64, unmatched rows
    of a (int64), unmatched columns of b (int64)), matches sorted by row.
    """
    sim = np.asarray(similarity, np.float64)
    if sim.ndim != 2:
        raise ValueError(f"associate: expected a 2-D similarity matrix, got shape {sim.shape}")
    n_a, n_b = sim.shape
    if n_a == 0 or n_b == 0:
        return _NO_MATCHES, np.arange(n_a), np.arange(n_b)
    valid = sim >= threshold
    rows, cols = np.nonzero(valid)
    taken_a, taken_b = set(rows.tolist()), set(cols.tolist())
    if len(taken_a) < len(rows) or len(taken_b) < len(cols):  # conflicts: solve
        rows, cols = linear_sum_assignment(np.where(valid, sim, 0.0), maximize=True)
        keep = valid[rows, cols]
        rows, cols = rows[keep], cols[keep]
        taken_a, taken_b = set(rows.tolist()), set(cols.tolist())
    matches = np.empty((len(rows), 2), np.int64)
    matches[:, 0], matches[:, 1] = rows, cols
    free_a = np.array([i for i in range(n_a) if i not in taken_a], np.int64)
    free_b = np.array([j for j in range(n_b) if j not in taken_b], np.int64)
    return matches, free_a, free_b
