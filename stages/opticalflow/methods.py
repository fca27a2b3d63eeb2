"""Flow methods by name, for the evaluation command and the flow stage: the torch kernels
(horn_schunck, horn_schunck_classic, lucas_kanade) and OpenCV's Farneback and DIS as peers.

Convention: `estimate` takes two BGR uint8 (H,W,3) pictures (or (H,W) grey) and returns flow
(H,W,2) float32 numpy pixels, channel 0 = dx. The torch path takes (B,1,H,W) float grey tensors.
"""
from __future__ import annotations

import numpy as np

TORCH_METHODS = ("horn_schunck", "horn_schunck_classic", "lucas_kanade")
OPENCV_METHODS = ("farneback", "dis")
METHODS = TORCH_METHODS + OPENCV_METHODS

# OpenCV Farneback with the parameters of OpenCV's own samples (python/opt_flow.py, dense flow tutorial).
FARNEBACK_DEFAULTS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2)
DIS_PRESETS = ("ultrafast", "fast", "medium")
SOLVERS = ("standard", "lean", "lean_fp16")   # horn_schunck's Jacobi solvers (see hs_jacobi)


def torch_flow(method: str, image1, image2, flow0=None, **params):
    """A torch method on grey tensors. Convention: (B,1,H,W) float 0..255 -> (B,2,H,W) pixels;
    flow0 (B,2,H,W) warm start or None; params are the kernel's keyword arguments."""
    from .horn_schunck import horn_schunck, horn_schunck_classic
    from .lucas_kanade import lucas_kanade_dense

    fn = {"horn_schunck": horn_schunck, "horn_schunck_classic": horn_schunck_classic,
          "lucas_kanade": lucas_kanade_dense}.get(method)
    if fn is None:
        raise ValueError(f"torch_flow: method must be one of {TORCH_METHODS}, got {method!r}")
    return fn(image1, image2, flow0=flow0, **params)


class OpenCVFlow:
    """Farneback or DIS on grey uint8 images; keeps the DIS object between calls.
    Convention: gray (H,W) uint8 -> (H,W,2) float32 pixels; flow0 (H,W,2) float32 warm start."""

    def __init__(self, method: str, preset: str = "medium", **params) -> None:
        import cv2

        if method not in OPENCV_METHODS:
            raise ValueError(f"OpenCVFlow: method must be one of {OPENCV_METHODS}, got {method!r}")
        self.method = method
        if method == "dis":
            if preset not in DIS_PRESETS:
                raise ValueError(f"OpenCVFlow: DIS preset must be one of {DIS_PRESETS}, got {preset!r}")
            code = getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}")
            self._dis = cv2.DISOpticalFlow_create(code)
            self.params = {}
        else:
            unknown = set(params) - set(FARNEBACK_DEFAULTS)
            if unknown:
                raise ValueError(f"OpenCVFlow: unknown Farneback parameters {sorted(unknown)}; "
                                 f"known: {', '.join(FARNEBACK_DEFAULTS)}")
            self.params = {**FARNEBACK_DEFAULTS, **params}

    def __call__(self, gray1: np.ndarray, gray2: np.ndarray, flow0: np.ndarray | None = None) -> np.ndarray:
        import cv2

        init = None if flow0 is None else np.ascontiguousarray(flow0, np.float32)
        if self.method == "dis":
            self._dis.setUseSpatialPropagation(True)
            return self._dis.calc(gray1, gray2, init.copy() if init is not None else None)
        flags = cv2.OPTFLOW_USE_INITIAL_FLOW if init is not None else 0
        p = self.params
        return cv2.calcOpticalFlowFarneback(gray1, gray2, init.copy() if init is not None else None,
                                            p["pyr_scale"], p["levels"], p["winsize"], p["iterations"],
                                            p["poly_n"], p["poly_sigma"], flags)


def _gray_u8(image: np.ndarray) -> np.ndarray:
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def estimate(method: str, image1: np.ndarray, image2: np.ndarray, device: str = "cpu", **params) -> np.ndarray:
    """Flow from image1 to image2 by `method` (one of METHODS). Convention: BGR uint8 (H,W,3) or
    grey (H,W) -> (H,W,2) float32 pixels; the torch methods run on `device` and synchronise."""
    if method in OPENCV_METHODS:
        return OpenCVFlow(method, **params)(_gray_u8(image1), _gray_u8(image2))
    if method not in TORCH_METHODS:
        raise ValueError(f"unknown flow method {method!r}; known: {', '.join(METHODS)}")
    import torch

    from .pyramid import to_gray

    def grey(im):
        t = torch.from_numpy(np.ascontiguousarray(im)).to(device)
        return to_gray(t[None, None] if t.ndim == 2 else t.permute(2, 0, 1))

    with torch.inference_mode():
        flow = torch_flow(method, grey(image1), grey(image2), **params)
        return flow[0].permute(1, 2, 0).float().cpu().numpy()
