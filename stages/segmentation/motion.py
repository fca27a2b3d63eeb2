"""Camera motion for background models: a frame-to-frame homography from sparse features (OpenCV)
and the sampling grid that moves a model's state along it (torch).

Homographies map pixel coordinates (pixel centres at integers) of one frame to another and are
named by frames: `cur_from_prev` maps a point of the previous frame to the current one.
"""
from __future__ import annotations

import numpy as np


def scale_matrix(scale: float) -> np.ndarray:
    """Full-resolution pixels -> pixels of an image resized by `scale` (centres at integers).
    Convention: 3x3 float64, u = (x + 0.5) * scale - 0.5."""
    off = 0.5 * scale - 0.5
    return np.array([[scale, 0.0, off], [0.0, scale, off], [0.0, 0.0, 1.0]])


def rescale_homography(h_full: np.ndarray, scale: float) -> np.ndarray:
    """A homography between full-resolution frames expressed between frames resized by `scale`."""
    s = scale_matrix(scale)
    return s @ np.asarray(h_full, np.float64) @ np.linalg.inv(s)


class FrameMotion:
    """Camera motion between consecutive frames, measured against a keyframe so that errors do not
    add up: Shi-Tomasi corners of the keyframe are tracked into every new frame by pyramidal
    Lucas-Kanade (started from the previous estimate) and a RANSAC homography cur_from_key is
    fitted; the step returned is cur_from_prev = cur_from_key @ inv(prev_from_key), so a chain of
    steps telescopes to the keyframe's estimate. A new keyframe is taken when fewer than
    `rekey_ratio` of its points remain inliers. Convention: `update(gray, ignore)` takes (H,W)
    uint8 and an optional (H,W) mask (nonzero = moving objects: no keyframe corners there) and
    returns cur_from_prev (3x3 float64), or None on the first frame or when the fit fails (fewer
    than `min_inliers` points agree; the frame becomes the keyframe)."""

    def __init__(self, max_points: int = 150, min_distance: int = 7, ransac_px: float = 1.0,
                 min_inliers: int = 12, rekey_ratio: float = 0.6, window: int = 15, levels: int = 2) -> None:
        if max_points < 8:
            raise ValueError(f"max_points: expected >= 8, got {max_points}")
        if not 0 < rekey_ratio <= 1:
            raise ValueError(f"rekey_ratio: expected 0 < x <= 1, got {rekey_ratio}")
        self.max_points, self.min_distance = max_points, min_distance
        self.ransac_px, self.min_inliers, self.rekey_ratio = ransac_px, min_inliers, rekey_ratio
        self.window, self.levels = window, levels
        self.key = self.key_pts = self.prev_from_key = None
        self.inlier_ratio = 0.0
        self.keyframes = 0

    def _set_key(self, gray: np.ndarray, ignore: np.ndarray | None) -> None:
        import cv2

        self.key, self.prev_from_key = gray, np.eye(3)
        allowed = None if ignore is None else np.where(ignore != 0, np.uint8(0), np.uint8(255))
        self.key_pts = cv2.goodFeaturesToTrack(gray, self.max_points, 0.01, self.min_distance, mask=allowed, blockSize=5)
        self.keyframes += 1

    def update(self, gray: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray | None:
        import cv2

        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"gray: expected (H,W) uint8, got {gray.shape} {gray.dtype}")
        self.inlier_ratio = 0.0
        if self.key is None or self.key.shape != gray.shape or self.key_pts is None or len(self.key_pts) < self.min_inliers:
            self._set_key(gray, ignore)
            return None
        pts = self.key_pts
        guess = cv2.perspectiveTransform(pts.astype(np.float64), self.prev_from_key).astype(np.float32)
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(self.key, gray, pts, guess, winSize=(self.window, self.window),
                                                  maxLevel=self.levels, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        ok = status.reshape(-1) == 1
        h = inl = None
        if ok.sum() >= self.min_inliers:
            h, inl = cv2.findHomography(pts[ok], nxt[ok], cv2.RANSAC, self.ransac_px)
        if h is None or inl is None or int(inl.sum()) < self.min_inliers:
            self._set_key(gray, ignore)
            return None
        self.inlier_ratio = float(inl.sum()) / float(len(pts))
        cur_from_prev = h @ np.linalg.inv(self.prev_from_key)
        self.prev_from_key = h
        if self.inlier_ratio < self.rekey_ratio:
            self._set_key(gray, ignore)
        return cur_from_prev


def homography_grid(prev_from_cur: np.ndarray, height: int, width: int, device="cpu", batch: int = 1):
    """Sampling grid for `torch.nn.functional.grid_sample(..., align_corners=False)`: for every
    pixel of the current frame, where it was in the previous one. Convention: prev_from_cur 3x3
    maps current pixels to previous pixels (centres at integers); returns (batch,H,W,2) float32
    normalized to [-1,1]."""
    import torch

    h = torch.as_tensor(np.asarray(prev_from_cur, np.float64), dtype=torch.float64, device=device)
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float64),
                            torch.arange(width, device=device, dtype=torch.float64), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ h.T
    z = pts[..., 2:3]
    z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    xy = pts[..., :2] / z
    norm = torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64, device=device)
    grid = (xy + 0.5) * norm - 1.0
    return grid.to(torch.float32).unsqueeze(0).expand(batch, -1, -1, -1)
