"""Drawing layer for the tracked plane: the quad outline (green when valid, red and thin when
not) and its inlier ratio. Convention: canvas (H,W,3) uint8 BGR, drawn in place and returned;
`frame.plane` has `corners` (4,2) px and `valid`, `inlier_ratio`; params: an optional mapping with
`color` (BGR, valid quad), `thickness` (px), `font_scale` and `label` (bool) (the annotate stage
passes its common knobs and the layer's options)."""
from __future__ import annotations

import cv2
import numpy as np


def draw_plane(canvas: np.ndarray, frame, params=None) -> np.ndarray:
    plane = getattr(frame, "plane", None)
    if plane is None or plane.corners is None:
        return canvas
    params = params or {}
    corners = np.asarray(plane.corners, np.float64).reshape(4, 2)
    if not np.isfinite(corners).all() or np.abs(corners).max() > 1e5:
        return canvas
    valid = bool(plane.valid)
    color = tuple(int(c) for c in params.get("color", (0, 255, 0))) if valid else (0, 0, 255)
    thickness = int(params.get("thickness", 2)) if valid else 1
    pts = np.round(corners * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], True, color, thickness, cv2.LINE_AA, shift=4)
    cv2.circle(canvas, (int(round(corners[0, 0])), int(round(corners[0, 1]))), thickness + 2, color, -1, cv2.LINE_AA)
    if params.get("label", True):
        text = f"plane {plane.inlier_ratio:.2f}" if valid else "plane lost"
        x, y = int(corners[:, 0].min()), int(corners[:, 1].min()) - 6
        h, w = canvas.shape[:2]
        x, y = min(max(x, 2), max(w - 110, 2)), min(max(y, 14), h - 4)
        scale = float(params.get("font_scale", 0.45))
        cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return canvas
