"""IoU matrix and thresholded Hungarian assignment: known answers and a brute-force optimum."""
import itertools

import numpy as np
import pytest

from stages.tracking.assignment import associate, iou_matrix


@pytest.mark.parametrize("a,b,want", [
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
    ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),          # touching edges
    ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
    ([0, 0, 10, 10], [2.5, 2.5, 7.5, 7.5], 0.25),    # contained
    ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),            # no area
    ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),
])
def test_iou_known_values(a, b, want):
    assert iou_matrix(np.array([a], float), np.array([b], float))[0, 0] == pytest.approx(want)


def test_iou_shapes_and_given_areas():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (7, 2))
    a = np.concatenate([xy, xy + rng.uniform(5, 40, (7, 2))], axis=1)
    b = a[:4] + rng.normal(0, 5, (4, 4))
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    full = iou_matrix(a, b)
    assert full.shape == (7, 4) and np.all((full >= 0) & (full <= 1))
    areas = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    np.testing.assert_allclose(iou_matrix(a, b, areas(a), areas(b)), full, rtol=1e-12)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (7, 0)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def _pairs(matches):
    return sorted(map(tuple, matches.tolist()))


@pytest.mark.parametrize("sim,threshold,want", [
    ([[0.9, 0.0], [0.0, 0.8]], 0.3, [(0, 0), (1, 1)]),
    ([[0.9, 0.8], [0.85, 0.1]], 0.3, [(0, 1), (1, 0)]),      # greedy would take (0,0) and lose a match
    ([[0.25, 0.0], [0.0, 0.8]], 0.3, [(1, 1)]),              # below the threshold: never matched
    ([[0.31, 0.29], [0.29, 0.0]], 0.3, [(0, 0)]),            # SORT's Hungarian would trade (0,0) for 0.58
    ([[0.3]], 0.3, [(0, 0)]),                                # the threshold itself matches
    (np.zeros((0, 3)), 0.3, []),
    (np.zeros((2, 0)), 0.3, []),
])
def test_associate_table(sim, threshold, want):
    sim = np.array(sim, float)
    matches, free_a, free_b = associate(sim, threshold)
    assert _pairs(matches) == want
    assert matches.dtype == np.int64 and matches.shape[1] == 2
    assert sorted(free_a.tolist()) == sorted(set(range(sim.shape[0])) - {m[0] for m in want})
    assert sorted(free_b.tolist()) == sorted(set(range(sim.shape[1])) - {m[1] for m in want})


def test_associate_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        associate(np.zeros(3), 0.3)


def _best_total(sim, threshold):
    n_a, n_b = sim.shape
    best = 0.0
    for perm in itertools.permutations(range(max(n_a, n_b)), n_a) if n_a <= n_b else []:
        best = max(best, sum(sim[i, j] for i, j in enumerate(perm) if j < n_b and sim[i, j] >= threshold))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_associate_finds_the_best_valid_matching(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(1, 5), rng.integers(4, 6)
    sim = rng.uniform(0, 1, (n_a, n_b)) * (rng.random((n_a, n_b)) < 0.6)
    matches, _, _ = associate(sim, 0.3)
    assert all(sim[i, j] >= 0.3 for i, j in matches)
    assert len(set(matches[:, 0])) == len(matches) and len(set(matches[:, 1])) == len(matches)
    assert sim[matches[:, 0], matches[:, 1]].sum() == pytest.approx(_best_total(sim, 0.3))
