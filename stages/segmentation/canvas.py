"""A background model for a moving camera that lives on a fixed canvas (the view of a reference
frame plus a margin), so that each frame is resampled once on its way in and the mask once on its
way out. (Warping the model itself every frame, the obvious alternative, resamples the model's
memory again and again: after a hundred frames it is a blurred picture and the variances are
inflated, which hides people in front of texture.) When the view drifts off the canvas, or zooms
too far from it, the model is moved once onto a new canvas around the current view.

Convention: images at processing resolution, either (B,3,h,w) float32 [0,255] torch (warped with
grid_sample, on any device) or (h,w,3) uint8 numpy (the CPU path: warped with OpenCV, ~5x cheaper);
homographies 3x3 float64 in processing pixels (centres at integers), `cur_from_prev` maps the
previous frame to the current one; the mask out is a (B,h,w) bool tensor in the current frame.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .gaussian import GaussianBackground


def pixel_grid(height: int, width: int, device) -> torch.Tensor:
    """(H*W,3) float32 homogeneous pixel centres (x, y, 1), row-major."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                            torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(height * width, device=device)], 1)


def sample_grid(base: torch.Tensor, src_from_dst: np.ndarray, dst_hw, src_hw) -> torch.Tensor:
    """grid_sample grid (1,H,W,2) (align_corners=False) reading a src_hw image at dst pixels."""
    h = torch.as_tensor(np.asarray(src_from_dst, np.float64), dtype=torch.float32, device=base.device)
    p = base @ h.T
    xy = p[:, :2] / torch.where(p[:, 2:3].abs() < 1e-9, torch.full_like(p[:, 2:3], 1e-9), p[:, 2:3])
    scale = torch.tensor([2.0 / src_hw[1], 2.0 / src_hw[0]], device=base.device)
    return ((xy + 0.5) * scale - 1.0).reshape(1, dst_hw[0], dst_hw[1], 2)


class CanvasBackground:
    """GaussianBackground on a canvas `margin` x the frame size larger on every side. Convention:
    module docstring. `rebases` counts the times the model moved to a new canvas."""

    def __init__(self, model: GaussianBackground, margin: float = 0.15, max_zoom: float = 1.6) -> None:
        if not 0 <= margin <= 2:
            raise ValueError(f"margin: expected 0 <= margin <= 2, got {margin}")
        if max_zoom <= 1:
            raise ValueError(f"max_zoom: expected > 1, got {max_zoom}")
        self.model, self.margin, self.max_zoom = model, margin, max_zoom
        self.canvas_from_cur: np.ndarray | None = None
        self.rebases = 0
        self._bases: dict = {}

    def reset(self) -> None:
        self.model.reset()
        self.canvas_from_cur = None

    def _base(self, h: int, w: int, device) -> torch.Tensor:
        key = (h, w, str(device))
        if key not in self._bases:
            self._bases[key] = pixel_grid(h, w, device)
        return self._bases[key]

    def _new_canvas(self, h: int, w: int) -> np.ndarray:
        mx, my = round(self.margin * w), round(self.margin * h)
        self.canvas_hw = (h + 2 * my, w + 2 * mx)
        return np.array([[1.0, 0, mx], [0, 1.0, my], [0, 0, 1.0]])

    def _needs_rebase(self, canvas_from_cur: np.ndarray, h: int, w: int) -> bool:
        corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]).T
        p = canvas_from_cur @ corners
        if np.any(p[2] <= 1e-6):
            return True
        xy = p[:2] / p[2]
        ch, cw = self.canvas_hw
        outside = (xy[0].min() < -0.5) or (xy[1].min() < -0.5) or (xy[0].max() > cw - 0.5) or (xy[1].max() > ch - 0.5)
        zoom = np.sqrt(abs(np.linalg.det(canvas_from_cur[:2, :2])))
        return bool(outside or not 1 / self.max_zoom < zoom < self.max_zoom)

    def apply(self, x, cur_from_prev: np.ndarray | None) -> torch.Tensor:
        """Register `x` to the canvas (`cur_from_prev` None: a fresh start on a new canvas),
        classify and learn there, and return the mask in the current frame."""
        host = isinstance(x, np.ndarray)
        b, h, w = (1, *x.shape[:2]) if host else (x.shape[0], *x.shape[2:])
        device = "cpu" if host else x.device
        if cur_from_prev is None or self.canvas_from_cur is None:
            self.model.reset()
            self.canvas_from_cur = self._new_canvas(h, w)
        else:
            canvas_from_cur = self.canvas_from_cur @ np.linalg.inv(cur_from_prev)
            if self._needs_rebase(canvas_from_cur, h, w):
                new = self._new_canvas(h, w)  # around the current view, same size
                old_from_new = canvas_from_cur @ np.linalg.inv(new)
                if self.model.state is not None:
                    ch, cw = self.canvas_hw
                    grid = sample_grid(self._base(ch, cw, device), old_from_new, (ch, cw), (ch, cw))
                    self.model.warp(grid.expand(b, -1, -1, -1))
                self.rebases += 1
                canvas_from_cur = new
            self.canvas_from_cur = canvas_from_cur
        ch, cw = self.canvas_hw
        self.model.ensure(b, ch, cw, device)
        win = self._window(h, w)
        if host:
            return self._apply_host(x, win)
        y0, y1, x0, x1 = win
        shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])  # window -> canvas
        into = sample_grid(self._base(y1 - y0, x1 - x0, device), np.linalg.inv(self.canvas_from_cur) @ shift,
                           (y1 - y0, x1 - x0), (h, w))
        ones = torch.ones((b, 1, h, w), dtype=x.dtype, device=device)
        xc = F.grid_sample(torch.cat([x, ones], 1), into.expand(b, -1, -1, -1), mode="bilinear",
                           padding_mode="zeros", align_corners=False)
        fg_c, _ = self.model.apply(xc[:, :3].contiguous(), valid=xc[:, 3:4] > 0.999, window=win)
        back = sample_grid(self._base(h, w, device), np.linalg.inv(shift) @ self.canvas_from_cur, (h, w),
                           (y1 - y0, x1 - x0))
        fg = F.grid_sample(fg_c[:, None].to(x.dtype), back.expand(b, -1, -1, -1), mode="bilinear",
                           padding_mode="zeros", align_corners=False)
        return fg[:, 0] > 0.5

    def _window(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1): the canvas rows/columns the current view covers (the model runs there only)."""
        corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]).T
        p = self.canvas_from_cur @ corners
        xy = p[:2] / p[2]
        ch, cw = self.canvas_hw
        x0, y0 = (int(max(0, np.floor(v))) for v in xy.min(1))
        x1, y1 = int(min(cw, np.ceil(xy[0].max()) + 1)), int(min(ch, np.ceil(xy[1].max()) + 1))
        return y0, max(y0 + 1, y1), x0, max(x0 + 1, x1)

    def _apply_host(self, x: np.ndarray, win) -> torch.Tensor:
        import cv2

        h, w = x.shape[:2]
        y0, y1, x0, x1 = win
        to_win = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ self.canvas_from_cur
        bgra = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)  # alpha 255 marks pixels seen in this frame
        xc = cv2.warpPerspective(bgra, to_win, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        t = torch.from_numpy(xc).permute(2, 0, 1)[None]
        fg_c, _ = self.model.apply(t[:, :3], valid=t[:, 3:4] == 255, window=win)
        m = fg_c[0].numpy().astype(np.uint8) * 255
        back = cv2.warpPerspective(m, np.linalg.inv(to_win), (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return torch.from_numpy(back > 127)[None]
