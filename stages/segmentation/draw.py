"""Drawing layer for the foreground mask: a translucent tint over foreground pixels and their
outline. Convention: canvas (H,W,3) uint8 BGR, drawn in place and returned; `frame.mask` (H,W)
uint8 0/255 (numpy or torch, see masks.py); params: an optional mapping with `color` (BGR),
`alpha` (tint opacity in [0,1]) and `outline` (bool)."""
from __future__ import annotations

import cv2
import numpy as np

from .masks import host_mask


def draw_mask(canvas: np.ndarray, frame, params=None) -> np.ndarray:
    mask = host_mask(getattr(frame, "mask", None))
    if mask is None or mask.shape != canvas.shape[:2] or not mask.any():
        return canvas
    params = params or {}
    color = tuple(int(c) for c in params.get("color", (255, 0, 200)))
    alpha = float(np.clip(params.get("alpha", 0.3), 0.0, 1.0))
    if alpha > 0:
        tinted = canvas.copy()
        tinted[mask != 0] = color
        cv2.addWeighted(tinted, alpha, canvas, 1.0 - alpha, 0.0, dst=canvas)
    if params.get("outline", True):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, color, 1, cv2.LINE_AA)
    return canvas
