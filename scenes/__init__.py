"""Generated scenes with exact ground truth (street, billboard, flow) and their loaders.

Import-light: names are loaded on first use, so `import scenes` costs nothing.
  scenes.load_street(name_or_path) -> StreetTruth        scenes.render_street(seed, ...) -> iterator
  scenes.load_billboard(name_or_path) -> BillboardTruth  scenes.render_billboard(seed, ...)
  scenes.load_flow_pair(dir) -> (img1, img2, flow)       scenes.render_flow_pair(seed, ...)
  scenes.read_flo / write_flo / sample_path / count_crossings
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "load_street": "io", "StreetTruth": "io", "FrameTruth": "io", "load_billboard": "io",
    "BillboardTruth": "io", "load_flow_pair": "io", "read_flo": "io", "write_flo": "io",
    "sample_path": "io", "count_crossings": "io", "read_video": "io", "VideoWriter": "io",
    "render_street": "street", "write_street": "street",
    "render_billboard": "billboard", "write_billboard": "billboard",
    "render_flow_pair": "flow", "render_flow_clip": "flow", "write_flow_pair": "flow",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scenes' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
