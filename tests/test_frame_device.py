"""Frame's host/device image forms: one upload per device (shared under one key), exact bytes both
ways, and one copy back after a stage replaces the picture with a device tensor."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.frame import Frame

torch = pytest.importorskip("torch")


def _image(h=37, w=53, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_upload_is_exact_planar_and_shared(device):
    img = _image()
    frame = Frame(0, 0.0, img)
    t = frame.image_tensor(device)
    assert t.shape == (3, 37, 53) and t.dtype == torch.uint8 and t.is_contiguous()
    assert np.array_equal(t.cpu().numpy(), img.transpose(2, 0, 1))
    assert frame.image_tensor(device) is t  # uploaded once
    if device.startswith("cuda"):
        index = torch.cuda.current_device()
        assert frame.image_tensor("cuda") is frame.image_tensor(f"cuda:{index}")  # one key for both spellings
        assert list(frame._tensors) == [f"cuda:{index}"]


def test_device_picture_comes_back_once_exactly(device):
    img = _image(seed=1)
    frame = Frame(0, 0.0, img)
    drawn = frame.image_tensor(device).flip(0).contiguous()  # a stage that draws on the device (BGR -> RGB)
    frame.set_image(drawn)
    host = frame.image
    assert host.flags.c_contiguous and host.shape == img.shape
    assert np.array_equal(host, img[:, :, ::-1])
    assert frame.image is host  # copied back at most once
    assert frame.shape == (37, 53)


@pytest.mark.parametrize("shape", [(2, 5, 5), (3, 4), (5, 5, 3)])
def test_set_image_rejects_bad_tensors(shape):
    frame = Frame(0, 0.0, _image())
    with pytest.raises(ValueError, match="expected"):
        frame.set_image(torch.zeros(shape, dtype=torch.uint8))
