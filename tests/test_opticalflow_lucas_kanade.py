"""Lucas-Kanade: dense (known answers, numpy parity to 1e-4) and sparse (known translation,
forward-backward check, agreement with OpenCV's calcOpticalFlowPyrLK)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from flowgen import as_tensor, rotated_pair, translated_pair
from stages.opticalflow import lucas_kanade as lk
from stages.opticalflow import reference_numpy as ref


def _np(flow):
    return flow[0].detach().cpu().double().numpy()


@pytest.mark.parametrize("d", [(0.3, -0.2), (0.7, 0.45), (2.6, -1.8)])
def test_dense_recovers_translation(device, d):
    a, b = translated_pair(64, 64, *d)
    flow = _np(lk.lucas_kanade_dense(as_tensor(a, device), as_tensor(b, device)))[:, 8:-8, 8:-8]
    assert np.abs(flow.mean((1, 2)) - d).max() < 0.02
    assert np.abs(flow - np.array(d)[:, None, None]).max() < 0.2


def test_dense_rotation_and_zero_motion(device):
    a, b, gt = rotated_pair(64, 64, 2.0)
    flow = _np(lk.lucas_kanade_dense(as_tensor(a, device), as_tensor(b, device))).transpose(1, 2, 0)
    assert np.linalg.norm(flow - gt, axis=-1)[8:-8, 8:-8].mean() < 0.06
    still = lk.lucas_kanade_dense(as_tensor(a, device), as_tensor(a, device))
    assert still.abs().max().item() < 1e-5


def test_dense_matches_numpy(device):
    a, b = translated_pair(40, 56, 1.3, 0.4)
    kw = dict(levels=3, min_size=8, warps=2, sigma=2.0)
    got = lk.lucas_kanade_dense(as_tensor(a, device), as_tensor(b, device), **kw)
    np.testing.assert_allclose(_np(got), ref.lucas_kanade_dense(a, b, **kw), atol=1e-4)


def _textured_points(h, w, margin=16, step=12):
    ys, xs = np.mgrid[margin:h - margin:step, margin:w - margin:step]
    return np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)


@pytest.mark.parametrize("d", [(0.4, -0.25), (3.3, 2.1)])
def test_sparse_recovers_translation(device, d):
    a, b = translated_pair(96, 128, *d)
    pts = _textured_points(96, 128)
    new, ok, fb = lk.lucas_kanade_sparse(as_tensor(a, device), as_tensor(b, device), torch.tensor(pts, device=device))
    assert new.shape == (len(pts), 2) and ok.shape == (len(pts),)
    assert ok.all()
    np.testing.assert_allclose(new.cpu().numpy() - pts, np.broadcast_to(d, pts.shape), atol=0.05)
    assert fb.max().item() < 0.05


def test_sparse_forward_backward_rejects_what_cannot_be_tracked(device):
    a, b = translated_pair(96, 128, 1.0, 0.5)
    b[:, 64:] = 128.0                                  # right half goes flat: nothing to track there
    pts = torch.tensor([[30.0, 40.0], [100.0, 40.0], [30.0, 60.0]], device=device)
    _, ok, _ = lk.lucas_kanade_sparse(as_tensor(a, device), as_tensor(b, device), pts)
    assert ok.tolist() == [True, False, True]


def test_sparse_batched_points(device):
    pairs = [translated_pair(64, 80, 0.5 * s, -0.3, seed=s) for s in (1, 2)]
    a = torch.cat([as_tensor(p[0], device) for p in pairs])
    b = torch.cat([as_tensor(p[1], device) for p in pairs])
    pts = torch.tensor(_textured_points(64, 80), device=device).expand(2, -1, -1)
    new, ok, _ = lk.lucas_kanade_sparse(a, b, pts)
    assert new.shape == (2, pts.shape[1], 2) and ok.all()
    shift = (new - pts).mean(1).cpu().numpy()
    np.testing.assert_allclose(shift, [[0.5, -0.3], [1.0, -0.3]], atol=0.02)


def test_opencv_backend_agrees(device):
    a, b = translated_pair(96, 128, 2.2, -1.4, seed=5)
    pts = _textured_points(96, 128)
    g1, g2 = (np.clip(np.round(x), 0, 255).astype(np.uint8) for x in (a, b))
    cv_new, cv_ok, _ = lk.track_points(g1, g2, pts, backend="opencv")
    t_new, t_ok, _ = lk.track_points(as_tensor(g1, device), as_tensor(g2, device),
                                     torch.tensor(pts, device=device), backend="torch")
    assert cv_ok.all() and t_ok.all()
    np.testing.assert_allclose(cv_new, t_new.cpu().numpy(), atol=0.1)
    np.testing.assert_allclose(cv_new - pts, np.broadcast_to((2.2, -1.4), pts.shape), atol=0.1)


def test_opencv_backend_empty_and_bad_input():
    g = np.zeros((32, 32), np.uint8)
    new, ok, fb = lk.lucas_kanade_sparse_opencv(g, g, np.zeros((0, 2)))
    assert new.shape == (0, 2) and ok.shape == (0,) and fb.shape == (0,)
    with pytest.raises(ValueError, match="uint8"):
        lk.lucas_kanade_sparse_opencv(g.astype(np.float32), g, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="backend"):
        lk.track_points(g, g, np.zeros((1, 2)), backend="cuda")


@pytest.mark.parametrize("call,match", [
    (lambda z: lk.lucas_kanade_dense(z, z, sigma=0), "sigma"),
    (lambda z: lk.lucas_kanade_dense(z, z, reg=-1), "reg"),
    (lambda z: lk.lucas_kanade_sparse(z, z, torch.zeros(3, 2), window=4), "window"),
    (lambda z: lk.lucas_kanade_sparse(z, z, torch.zeros(3, 3)), "points"),
])
def test_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(1, 1, 32, 32))

