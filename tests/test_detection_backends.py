"""Backends: the torchvision stand-in for onnx2torch, backend choice by suffix, fixed-batch files."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, shared_path
from stages.detection.backends import backend_for, load
from stages.detection.weights import ModelError


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision installed: no shim")
def test_onnx2torch_imports_without_torchvision_and_shim_is_removed():
    code = (
        "import sys\n"
        "from stages.detection.backends import import_onnx2torch\n"
        "import_onnx2torch()\n"
        "assert 'torchvision' not in sys.modules and 'torchvision.ops' not in sys.modules\n"
        "nms = sys.modules['onnx2torch.node_converters.nms']\n"
        "try:\n"
        "    nms.torchvision.ops.nms(None, None, 0.5)\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "uses NonMaxSuppression or RoiAlign" in out.stdout and "torchvision is not installed" in out.stdout


@pytest.mark.parametrize("name, backend, device, expected", [
    ("m.onnx", "auto", "cuda", "torch"), ("m.ONNX", "auto", "cuda", "torch"), ("m.onnx", "auto", "cpu", "onnxruntime"),
    ("m.onnx", "torch", "cpu", "torch"), ("m.onnx", "onnxruntime", "cuda", "onnxruntime"),
    ("yolov8n.torchscript", "auto", "cpu", "torchscript"), ("m.pt", "auto", "cuda", "torchscript"),
    ("m.pt2", "auto", "cpu", "export"), ("m.bin", "torch", "cpu", "torch"), ("m.bin", "auto", "cpu", ModelError),
    ("m.onnx", "tensorrt", "cpu", ValueError),
])
def test_backend_for(name, backend, device, expected):
    if isinstance(expected, type):
        with pytest.raises(expected):
            backend_for(Path(name), backend, device)
    else:
        assert backend_for(Path(name), backend, device) == expected


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_fixed_batch_graph_runs_one_by_one(backend):
    """FastestDet pins batch 1 inside its graph (a Reshape): probing batch 2 falls back to a loop."""
    model = load(shared_path("models", "fastestdet", "FastestDet.onnx"), backend, "cpu")
    assert model.input_hw == (352, 352) and model.input_shape == (1, 3, 352, 352)
    assert model.probe((352, 352), batch=4) == (1, 85, 22, 22)
    assert model.max_batch == 1
    x = torch.rand(3, 3, 352, 352) * 255
    out = model(x)
    assert out.shape == (3, 85, 22, 22)
    assert torch.allclose(out[1:2], model(x[1:2]), atol=1e-5)


def test_onnxruntime_relaxes_batch_where_graph_allows():
    model = load(shared_path("models", "yolox_nano", "yolox_nano.onnx"), "onnxruntime", "cpu")
    model.probe((416, 416), batch=2)
    assert model.max_batch is None and model(torch.zeros(3, 3, 416, 416)).shape == (3, 3549, 85)
