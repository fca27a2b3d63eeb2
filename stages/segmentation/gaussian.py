"""A per-pixel running Gaussian background model in torch (GPU-capable, batched).

Each pixel keeps a mean colour, one variance shared by its three channels (as in MOG2) and an age
(frames it has been observed). A pixel is foreground when its squared distance to the mean exceeds
`threshold` times the variance (MOG2's `varThreshold`). The learning rate adapts: a pixel seen for
`age` frames learns at max(rate, 1/(age+1)), so a fresh model (or a pixel that has just come into
view after a camera move) converges in a few frames and then settles at `rate`; foreground and
shadow pixels learn `foreground_factor` times slower, so a walking person does not smear into the
model. A second, candidate colour per pixel absorbs what stays: a foreground pixel whose colour
holds still for `absorb_frames` frames (a ghost left where an object stood in the first frame, a
parked object) becomes background. Shadows follow MOG2's test: the pixel is a darker copy of the
background, brightness ratio a = <x,mu>/|mu|^2 in [shadow_ratio, 1] and colour distortion
|x - a mu|^2 below threshold * var * a^2; shadow pixels are not foreground.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def to_batch(image: torch.Tensor) -> torch.Tensor:
    """(3,H,W) or (B,3,H,W), any dtype -> contiguous (B,3,H,W) float32 in [0,255]."""
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image: expected (3,H,W) or (B,3,H,W), got {tuple(image.shape)}")
    return image.to(torch.float32).contiguous()


def downscale(image: torch.Tensor, scale: float) -> torch.Tensor:
    """Area-average resize by `scale` in (0, 1]. Convention: (B,C,H,W) float -> (B,C,round(H*s),round(W*s))."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale: expected 0 < scale <= 1, got {scale}")
    if scale == 1:
        return image
    h, w = max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale))
    return F.interpolate(image, size=(h, w), mode="area")


def _neighbourhood_range(mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel min and max of the 3x3 neighbourhood (shifted in-place max/min; separable)."""
    out = []
    for op in (torch.maximum, torch.minimum):
        r = mean.clone()
        r[..., :, 1:] = op(r[..., :, 1:], mean[..., :, :-1])
        r[..., :, :-1] = op(r[..., :, :-1], mean[..., :, 1:])
        c = r.clone()
        r[..., 1:, :] = op(r[..., 1:, :], c[..., :-1, :])
        r[..., :-1, :] = op(r[..., :-1, :], c[..., 1:, :])
        out.append(r)
    return out[1], out[0]


def _csum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the 3 channels of (B,3,H,W), keepdim (faster than .sum(1) on the CPU)."""
    return t[:, 0:1] + t[:, 1:2] + t[:, 2:3]


class GaussianBackground:
    """Running Gaussian per pixel. Convention: `apply` takes (3,H,W) or (B,3,H,W) images (uint8 or
    float in [0,255]) and returns (fg, shadow), two (B,H,W) bool tensors on the image's device.
    Variances are in squared intensity levels per channel; rates are per frame, in (0, 1]."""

    def __init__(self, rate: float = 0.01, threshold: float = 16.0, foreground_factor: float = 0.1,
                 shadows: bool = True, shadow_ratio: float = 0.5, absorb_frames: int = 60, absorb_min: int = 5,
                 slack: bool = False,
                 var_init: float = 225.0, var_min: float = 16.0, var_max: float = 5625.0) -> None:
        if not 0 < rate <= 1:
            raise ValueError(f"rate: expected 0 < rate <= 1, got {rate}")
        if threshold <= 0:
            raise ValueError(f"threshold: expected > 0, got {threshold}")
        if not 0 <= foreground_factor <= 1:
            raise ValueError(f"foreground_factor: expected 0 <= x <= 1, got {foreground_factor}")
        if not 0 < shadow_ratio < 1:
            raise ValueError(f"shadow_ratio: expected 0 < x < 1, got {shadow_ratio}")
        if absorb_frames < 0:
            raise ValueError(f"absorb_frames: expected >= 0 (0 = never), got {absorb_frames}")
        if not 0 < var_min <= var_init <= var_max:
            raise ValueError(f"variances: expected 0 < var_min <= var_init <= var_max, got {var_min}, {var_init}, {var_max}")
        self.rate, self.threshold, self.foreground_factor = rate, threshold, foreground_factor
        self.shadows, self.shadow_ratio, self.absorb_frames = shadows, shadow_ratio, absorb_frames
        self.absorb_min = max(1, absorb_min)
        self.slack = slack
        self.var_init, self.var_min, self.var_max = var_init, var_min, var_max
        self.state: torch.Tensor | None = None  # (B,9,H,W): mean(3) var(1) age(1) candidate(3) hits(1)

    def reset(self) -> None:
        self.state = None

    @property
    def mean(self) -> torch.Tensor | None:
        return None if self.state is None else self.state[:, 0:3]

    @property
    def var(self) -> torch.Tensor | None:
        return None if self.state is None else self.state[:, 3:4]

    @property
    def age(self) -> torch.Tensor | None:
        return None if self.state is None else self.state[:, 4:5]

    def _init_state(self, x: torch.Tensor) -> None:
        b, _, h, w = x.shape
        self.state = torch.zeros((b, 9, h, w), dtype=torch.float32, device=x.device)
        self.state[:, 0:3] = x
        self.state[:, 3:4] = self.var_init
        self.state[:, 5:8] = x

    def fits(self, image: torch.Tensor) -> bool:
        """Whether the model exists for images like this one ((3,H,W) or (B,3,H,W), any dtype:
        batch, size and device)."""
        s, x = self.state, image if image.ndim == 4 else image[None]
        return s is not None and s.shape[0] == x.shape[0] and s.shape[2:] == x.shape[2:] and s.device == x.device

    def ensure(self, batch: int, height: int, width: int, device) -> None:
        """Allocate an empty model (every pixel unseen) unless one of this size exists."""
        if self.state is None or tuple(self.state.shape) != (batch, 9, height, width) or self.state.device != torch.device(device):
            self.state = torch.zeros((batch, 9, height, width), dtype=torch.float32, device=device)
            self.state[:, 3:4] = self.var_init

    def apply(self, image: torch.Tensor, learn: bool = True, valid: torch.Tensor | None = None, window=None):
        """Classify then (if `learn`) update. `valid` (B,1,H,W) bool marks pixels observed in this
        image (None = all); others are neither classified nor learned. `window` (y0, y1, x0, x1):
        the image covers only that part of an existing model (see `ensure`). Returns (fg, shadow)
        as (B,H,W) bool tensors."""
        x = to_batch(image)
        if window is None and not self.fits(x):
            self._init_state(x)
        s = self.state if window is None else self.state[:, :, window[0]:window[1], window[2]:window[3]]
        mean, var, age = s[:, 0:3], s[:, 3:4], s[:, 4:5]
        diff = x - mean
        d2 = _csum(diff * diff)
        known = age > 0.5
        if valid is not None:
            known &= valid
        if self.slack:  # distance to the colour range of the 3x3 neighbourhood: +-1 px misregistration
            lo, hi = _neighbourhood_range(mean)  # halfway to the neighbours: about +-0.5 px
            lo.add_(mean).mul_(0.5)
            hi.add_(mean).mul_(0.5)
            e = (x - hi).clamp_min_(0) + (lo - x).clamp_min_(0)
            fg = _csum(e * e) > var * self.threshold
        else:
            fg = d2 > var * self.threshold
        fg &= known
        shadow = None
        if self.shadows:
            num = _csum(x * mean)
            a = num / _csum(mean * mean).clamp_min_(1e-6)
            dist2a = _csum(x * x).sub_(num * a).clamp_min_(0)  # |x - a mu|^2 with a = <x,mu>/|mu|^2
            shadow = (a >= self.shadow_ratio) & (a <= 1) & (dist2a < var * self.threshold * a * a)
            shadow &= fg
            fg &= ~shadow
        if learn:
            self._update(s, x, diff, d2, fg, shadow, known, valid)
        return fg[:, 0], (torch.zeros_like(fg) if shadow is None else shadow)[:, 0]

    def _update(self, s, x, diff, d2, fg, shadow, known, valid) -> None:
        """In-place update of the state (view) `s`, written for few passes over memory (the CPU
        cost is bandwidth)."""
        mean, var, age, cand, hits = s[:, 0:3], s[:, 3:4], s[:, 4:5], s[:, 5:8], s[:, 8:9]
        moving = fg if shadow is None else fg | shadow
        rate = (age + 1.0).reciprocal_().clamp_(min=self.rate)
        if self.foreground_factor == 0:
            rate.masked_fill_(moving, 0.0)
        elif self.foreground_factor < 1:
            rate.mul_(1.0 - (1.0 - self.foreground_factor) * moving.to(torch.float32))
        if valid is not None:
            rate.masked_fill_(~valid, 0.0)
        mean.addcmul_(diff, rate)
        var.add_(d2.mul_(1.0 / 3.0).sub_(var).mul_(rate))
        var.masked_fill_(~known if valid is None else valid & ~known, self.var_init)  # first sight
        var.clamp_(self.var_min, self.var_max)
        age.add_(1.0 if valid is None else valid.to(torch.float32)).clamp_(max=1e6)
        if self.absorb_frames <= 0:
            return
        # candidate colour: follows a foreground pixel while it holds still; promoted when it has
        dc = x - cand
        still = _csum(dc * dc) < var * self.threshold
        still &= fg
        restart = fg & ~still
        hits.add_(1.0).mul_(still).masked_fill_(restart, 1.0)  # still: +1, new colour: 1, background: 0
        cand.addcmul_(dc, still / hits.clamp_min(1.0) + restart)  # running mean, or restart at x
        # young pixels (just started, or just come into view) absorb sooner: up to `absorb_frames`
        # after they have been watched for twice as long, so ghosts of the first frames go quickly
        promote = hits >= (age * 0.5).clamp_(min=min(self.absorb_frames, float(self.absorb_min)), max=self.absorb_frames)
        # unconditional (no promote.any() test): the same result, and no data-dependent branch,
        # so the step can run as one trace (pipeline.traced)
        mean.addcmul_(cand - mean, promote.to(torch.float32))
        var.masked_fill_(promote, self.var_init)
        hits.masked_fill_(promote, 0.0)

    def warp(self, grid: torch.Tensor) -> None:
        """Resample the state through `grid` (B,H,W,2, normalized, align_corners=False) as made by
        `motion.homography_grid`: the model follows the camera. Pixels that come from outside the
        old view (or straddle its border) restart with age 0 and the initial variance."""
        if self.state is None:
            return
        b, _, h, w = self.state.shape
        ones = torch.ones((b, 1, h, w), dtype=torch.float32, device=self.state.device)
        out = F.grid_sample(torch.cat([self.state, ones], 1), grid.to(torch.float32), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
        inside = (out[:, 9:10] > 0.999).to(torch.float32)
        state = out[:, :9] * inside
        state[:, 3:4] += (1.0 - inside) * self.var_init  # outside: age 0, initial variance, no hits
        self.state = state.contiguous()
