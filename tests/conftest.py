"""Shared fixtures: the device under test (`--device cuda` on a GPU machine, CPU elsewhere) and
the ../shared data, which tests skip with a clear reason when it is absent (a user's fresh clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDPIPE_SHARED", ROOT.parent / "shared"))


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu", help="torch device for kernel tests: cpu or cuda[:i]")


@pytest.fixture(scope="session")
def device(request) -> str:
    dev = request.config.getoption("--device")
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("--device cuda given but CUDA is not available")
    return dev


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set VIDPIPE_SHARED); skipped on a fresh clone")
    return SHARED


def shared_path(*parts: str) -> Path:
    """Path under ../shared, skipping the calling test when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} not found; skipped on a fresh clone")
    return path


@pytest.fixture
def tmp_out(tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out
