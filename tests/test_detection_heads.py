"""Head detection from output shapes, decoders against numpy transcriptions of the reference
post-processing code, and the letterbox / resize geometry (against cv2)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stages.detection.heads import HEADS, HeadError, check_output, detect_head, grid_cells
from stages.detection.preprocess import make_batch, placement, unmap_boxes, unmap_packed


@pytest.mark.parametrize("shape, input_hw, expected", [
    ((1, 3549, 85), (416, 416), "yolox"),          # YOLOX-Nano
    ((1, 8400, 85), (640, 640), "yolox"),
    ((1, 85, 22, 22), (352, 352), "fastestdet"),   # FastestDet
    ((1, 84, 8400), (640, 640), "yolov8"),         # YOLOv8n / YOLO11n, COCO
    ((4, 6, 3150), (320, 480), "yolov8"),          # 2 classes, rectangular input
    ((1, 25200, 85), (640, 640), "yolov5"),        # YOLOv5s
    ((1, 10647, 7), (416, 416), "yolov5"),
    ((1, 300, 6), (640, 640), HeadError),          # end-to-end export with NMS inside
    ((1, 8400, 84), (416, 416), HeadError),        # grid of another input size
    ((1, 84), (640, 640), HeadError),
])
def test_detect_head_table(shape, input_hw, expected):
    if expected is HeadError:
        with pytest.raises(HeadError, match="set head: to one of yolox, fastestdet, yolov8, yolov5"):
            detect_head(shape, input_hw)
    else:
        assert detect_head(shape, input_hw) == expected


@pytest.mark.parametrize("name, shape, input_hw, classes", [
    ("yolox", (1, 3549, 85), (416, 416), 80), ("fastestdet", (1, 85, 22, 22), (352, 352), 80),
    ("yolov8", (2, 84, 8400), (640, 640), 80), ("yolov5", (1, 25200, 7), (640, 640), 2),
])
def test_check_output_counts_classes(name, shape, input_hw, classes):
    assert check_output(name, shape, input_hw) == classes


def test_check_output_says_what_it_expected():
    with pytest.raises(HeadError, match=r"head 'yolox' at input 352x352 expects output \(B, N, 5\+nc\) .* = 2541, "
                                        r"got \(1, 85, 22, 22\)"):
        check_output("yolox", (1, 85, 22, 22), (352, 352))


def _grid_np(h, w):
    g, s = [], []
    for st in (8, 16, 32):
        ys, xs = np.mgrid[0:h // st, 0:w // st]
        g.append(np.stack([xs.ravel(), ys.ravel()], 1))
        s.append(np.full(xs.size, st))
    return np.concatenate(g), np.concatenate(s)


def test_yolox_decode_matches_demo_postprocess():
    """YOLOX demo_postprocess transcribed: xy = (o + grid) * s, wh = exp(o) * s, score = obj * cls."""
    rng = np.random.default_rng(0)
    out = rng.normal(0, 1, (2, grid_cells((64, 96)), 7)).astype(np.float32)
    out[..., 4:] = rng.uniform(0, 1, out[..., 4:].shape)
    boxes, scores = HEADS["yolox"].decode(torch.tensor(out), (64, 96))
    grid, stride = _grid_np(64, 96)
    xy = (out[..., :2] + grid) * stride[:, None]
    wh = np.exp(out[..., 2:4]) * stride[:, None]
    np.testing.assert_allclose(boxes.numpy(), np.concatenate([xy - wh / 2, xy + wh / 2], -1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), out[..., 5:] * out[..., 4:5], rtol=1e-6)


def test_fastestdet_decode_matches_reference_loop():
    """The loop of FastestDet's onnx-runtime example, per cell, against the vectorised decoder."""
    rng = np.random.default_rng(1)
    out = rng.normal(0, 1, (1, 8, 3, 4)).astype(np.float32)
    out[:, 0] = rng.uniform(0, 1, (1, 3, 4))
    out[:, 5:] = rng.dirichlet(np.ones(3), (1, 3, 4)).transpose(0, 3, 1, 2)
    boxes, scores = HEADS["fastestdet"].decode(torch.tensor(out), (30, 40))
    k = 0
    for gy in range(3):
        for gx in range(4):
            d = out[0, :, gy, gx]
            cx, cy = (gx + np.tanh(d[1])) / 4, (gy + np.tanh(d[2])) / 3
            bw, bh = 1 / (1 + np.exp(-d[3])), 1 / (1 + np.exp(-d[4]))
            want = [(cx - bw / 2) * 40, (cy - bh / 2) * 30, (cx + bw / 2) * 40, (cy + bh / 2) * 30]
            np.testing.assert_allclose(boxes[0, k].numpy(), want, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(scores[0, k].numpy(), d[0] ** 0.6 * d[5:] ** 0.4, rtol=1e-5)
            k += 1


def test_yolov8_and_yolov5_layouts():
    rng = np.random.default_rng(2)
    v8 = rng.uniform(1, 50, (1, 6, 84)).astype(np.float32)
    b, s = HEADS["yolov8"].decode(torch.tensor(v8), (64, 64))
    assert b.shape == (1, 84, 4) and s.shape == (1, 84, 2)
    np.testing.assert_allclose(b[0, 5].numpy(), [v8[0, 0, 5] - v8[0, 2, 5] / 2, v8[0, 1, 5] - v8[0, 3, 5] / 2,
                                                 v8[0, 0, 5] + v8[0, 2, 5] / 2, v8[0, 1, 5] + v8[0, 3, 5] / 2], rtol=1e-6)
    v5 = rng.uniform(0, 1, (1, 252, 7)).astype(np.float32)
    b, s = HEADS["yolov5"].decode(torch.tensor(v5), (64, 64))
    np.testing.assert_allclose(s.numpy(), v5[..., 5:] * v5[..., 4:5], rtol=1e-6)


@pytest.mark.parametrize("mode", ["letterbox", "letterbox_center", "stretch"])
def test_make_batch_matches_cv2_and_unmaps(mode, device):
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    tensor = torch.from_numpy(img).permute(2, 0, 1).to(device)
    x, (place,) = make_batch([tensor], (64, 64), mode, rgb=True, scale=1 / 255)
    place2, (nh, nw) = placement((90, 160), (64, 64), mode)
    assert place == place2 and x.shape == (1, 3, 64, 64)
    ref = np.full((64, 64, 3), 114, np.float32)
    px, py = int(place.pad[0]), int(place.pad[1])
    ref[py:py + nh, px:px + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    got = x[0].flip(0).permute(1, 2, 0).cpu().numpy() * 255  # back to BGR, 0..255
    assert np.abs(got - ref).max() <= 1.01  # cv2 rounds to uint8
    if mode == "letterbox":
        assert (px, py) == (0, 0) and (nh, nw) == (36, 64)
    if mode == "letterbox_center":
        assert (px, py) == (0, 14)
    corners = torch.tensor([[px, py, px + nw, py + nh]], dtype=torch.float32)
    np.testing.assert_allclose(unmap_boxes(corners, place).numpy(), [[0, 0, 160, 90]], atol=1e-4)


def test_make_batch_mixed_sizes_and_errors():
    a = torch.zeros((3, 20, 40), dtype=torch.uint8)
    b = torch.full((3, 40, 20), 255, dtype=torch.uint8)
    x, places = make_batch([a, b, a], (32, 32))
    assert x.shape == (3, 3, 32, 32) and places[0] == places[2] != places[1]
    assert float(x[1, :, :, :16].min()) == 255.0 and float(x[1, :, :, 20:].max()) == 114.0
    with pytest.raises(ValueError, match="expected at least one image"):
        make_batch([], (32, 32))
    with pytest.raises(ValueError, match="resize: expected one of letterbox"):
        placement((10, 10), (32, 32), "crop")


def test_unmap_packed_equals_per_image():
    places = [placement((90, 160), (64, 64), "letterbox_center")[0], placement((1080, 1920), (416, 416), "letterbox")[0]]
    boxes = torch.tensor([[0, 14, 64, 50], [10, 10, 30, 40], [-5, 0, 500, 500]], dtype=torch.float32)
    image = torch.tensor([0, 1, 1])
    want = torch.cat([unmap_boxes(boxes[:1], places[0]), unmap_boxes(boxes[1:], places[1])])
    torch.testing.assert_close(unmap_packed(boxes, image, places), want)
    assert unmap_packed(boxes, image, places)[2].tolist() == [0, 0, 1920, 1080]
