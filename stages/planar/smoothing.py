"""Temporal smoothing of tracked corners without lag on fast motion: the One-Euro filter
(Casiez, Roussel and Vogel, CHI 2012), whose cutoff rises with the speed of the motion.

Convention: values are float arrays of any fixed shape (corners: (4,2) pixels); dt in seconds;
cutoffs in Hz; beta in 1/pixel (cutoff = min_cutoff + beta * speed in px/s). One speed, the mean
corner speed, sets the cutoff for the whole quad, so that its shape is not distorted.
"""
from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Adaptive low-pass: min_cutoff (Hz) at rest, wider as the points move (beta), d_cutoff (Hz)
    for the speed estimate. `reset()` forgets the past (after a loss or a re-anchor)."""

    def __init__(self, min_cutoff: float = 2.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"OneEuroFilter: expected min_cutoff > 0, d_cutoff > 0, beta >= 0; got "
                             f"{min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or dt <= 0:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        speed = float(np.mean(np.linalg.norm(self._dx.reshape(-1, 2), axis=1))) if x.size % 2 == 0 \
            else float(np.mean(np.abs(self._dx)))
        a = _alpha(self.min_cutoff + self.beta * speed, dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()
