"""Image pyramid and warping helpers shared by the flow kernels (torch, any device).

Convention: images (B,C,H,W) float32; flow (B,2,H,W) float32 pixels, channel 0 = dx. Borders are
replicated (Neumann) everywhere; warping uses grid_sample with align_corners=True, so pixel
centres sit at integer coordinates 0..W-1.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

# BGR weights (ITU-R BT.601), the same as cv2.cvtColor(..., COLOR_BGR2GRAY).
_BGR_WEIGHTS = (0.114, 0.587, 0.299)


def check_images(name: str, *images: torch.Tensor) -> None:
    """Raise ValueError unless every image is a float (B,1,H,W) tensor of one shape."""
    first = images[0]
    for im in images:
        if not torch.is_tensor(im) or im.ndim != 4 or im.shape[1] != 1 or not im.is_floating_point():
            got = tuple(im.shape) if torch.is_tensor(im) else type(im).__name__
            raise ValueError(f"{name}: expected float (B,1,H,W) tensors, got {got}")
        if im.shape != first.shape:
            raise ValueError(f"{name}: image shapes differ: {tuple(first.shape)} vs {tuple(im.shape)}")
    if first.shape[-1] < 2 or first.shape[-2] < 2:
        raise ValueError(f"{name}: images must be at least 2x2, got {tuple(first.shape[-2:])}")


def dims(x: torch.Tensor) -> tuple[int, ...]:
    """x.shape as Python ints (also while torch.jit.trace records sizes as tensors: traces are
    made per shape, so sizes are constants there)."""
    return tuple(int(v) for v in x.shape)


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """BGR to grey. Convention: (B,3,H,W) or (3,H,W), uint8 or float, BGR -> (B,1,H,W) float32,
    same scale as the input (uint8 gives 0..255)."""
    x = images if images.ndim == 4 else images[None]
    if x.shape[1] == 1:
        return x.float()
    if x.shape[1] != 3:
        raise ValueError(f"to_gray: expected 1 or 3 channels, got shape {tuple(images.shape)}")
    x = x.float()
    b, g, r = _BGR_WEIGHTS
    return (x[:, 0:1] * b).add_(x[:, 1:2], alpha=g).add_(x[:, 2:3], alpha=r)


def gaussian_taps(sigma: float, radius: int | None = None) -> list[float]:
    """Normalised 1-D Gaussian taps, radius ceil(3 sigma) unless given. Convention: sigma > 0 pixels."""
    if sigma <= 0:
        raise ValueError(f"gaussian_taps: expected sigma > 0, got {sigma}")
    r = max(1, int(math.ceil(3.0 * sigma))) if radius is None else radius
    w = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    s = sum(w)
    return [v / s for v in w]


def filter_separable(x: torch.Tensor, taps_x, taps_y=None) -> torch.Tensor:
    """Correlate each channel with taps_x along W and taps_y (default taps_x) along H, replicate
    borders. Shifted-slice sums: fast on CPU for short filters, and device-agnostic.
    Convention: x (B,C,H,W) float; taps odd-length sequences of floats."""
    taps_y = taps_x if taps_y is None else taps_y
    for dim, taps in ((3, taps_x), (2, taps_y)):
        r = len(taps) // 2
        if r == 0:
            x = x * taps[0]
            continue
        pad = (r, r, 0, 0) if dim == 3 else (0, 0, r, r)
        p = F.pad(x, pad, mode="replicate")
        n = int(x.shape[dim])
        out = p.narrow(dim, 0, n) * taps[0]
        for i in range(1, len(taps)):
            if taps[i] != 0.0:
                out.add_(p.narrow(dim, i, n), alpha=taps[i])
        x = out
    return x


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, replicate borders. Convention: (B,C,H,W) float; sigma in pixels
    (<= 0 returns x unchanged)."""
    if sigma <= 0:
        return x
    return filter_separable(x, gaussian_taps(sigma))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False), no anti-aliasing: blur first when shrinking.
    Convention: (B,C,H,W) float -> (B,C,h,w)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def level_sizes(height: int, width: int, levels: int, factor: float, min_size: int = 16) -> list[tuple[int, int]]:
    """Pyramid sizes from fine (index 0) to coarse; stops before a side would drop below min_size.
    Convention: 0 < factor < 1; levels >= 1."""
    if not 0 < factor < 1:
        raise ValueError(f"pyramid factor: expected 0 < factor < 1, got {factor}")
    if levels < 1:
        raise ValueError(f"pyramid levels: expected >= 1, got {levels}")
    sizes = [(height, width)]
    for k in range(1, levels):
        h, w = int(round(height * factor ** k)), int(round(width * factor ** k))
        if min(h, w) < min_size:
            break
        sizes.append((h, w))
    return sizes


def build_pyramid(x: torch.Tensor, sizes: list[tuple[int, int]], factor: float) -> list[torch.Tensor]:
    """Images at each size in `sizes` (fine to coarse), each level blurred with the anti-alias
    sigma 1/sqrt(2 factor) (Sun et al.) and resized from the one above.
    Convention: (B,C,H,W) float; sizes from level_sizes()."""
    sigma = 1.0 / math.sqrt(2.0 * factor)
    out = [x]
    for size in sizes[1:]:
        out.append(resize(gaussian_blur(out[-1], sigma), size))
    return out


def coarse_to_fine(image1: torch.Tensor, image2: torch.Tensor, step, *, levels: int, factor: float,
                   presmooth: float, min_size: int, warps: int, median: int,
                   flow0: torch.Tensor | None = None) -> torch.Tensor:
    """The coarse-to-fine driver of the warping methods: both images presmoothed, a Gaussian
    pyramid, and at each level from the coarsest `warps` times flow = median(step(im1, im2, flow)).
    flow0 (full resolution) warm-starts the coarsest level, else zero.
    Convention: (B,1,H,W) float images; step(im1, im2, flow) -> (B,2,h,w) flow in the level's
    pixels; returns (B,2,H,W) pixels."""
    n_b, _, h, w = dims(image1)
    both = gaussian_blur(torch.cat([image1, image2], 1), presmooth)
    sizes = level_sizes(h, w, levels, factor, min_size)
    pyramid = build_pyramid(both, sizes, factor)
    flow = None
    for level in range(len(sizes) - 1, -1, -1):
        im1, im2 = pyramid[level][:, 0:1], pyramid[level][:, 1:2]
        if flow is None:
            flow = resize_flow(flow0, sizes[level]) if flow0 is not None else im1.new_zeros(n_b, 2, *sizes[level])
        else:
            flow = resize_flow(flow, sizes[level])
        for _ in range(warps):
            flow = median_filter(step(im1, im2, flow), median)
    return flow


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a flow field to `size` and rescale its values to the new pixel units.
    Convention: (B,2,H,W) float pixels -> (B,2,h,w) pixels of the new size."""
    h0, w0 = dims(flow)[-2:]
    if (h0, w0) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w0, size[0] / h0], dtype=flow.dtype, device=flow.device)
    return out * scale.view(1, 2, 1, 1)


def base_grid(height: int, width: int, device, dtype=torch.float32) -> torch.Tensor:
    """Pixel coordinates (1,2,H,W): channel 0 = x, channel 1 = y."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    return torch.stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)])[None]


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Backward warp: out(p) = image(p + flow(p)), border replicated, plus the mask of points that
    stayed inside the image. Convention: image (B,C,H,W) float, flow (B,2,H,W) pixels; returns
    ((B,C,H,W) float, (B,1,H,W) bool). mode: 'bilinear' (grid_sample) or 'bicubic' (Catmull-Rom,
    Keys a = -0.5, which reproduces linear ramps; grid_sample's bicubic uses a = -0.75, which does
    not, and biases sub-pixel flow by a few hundredths of a pixel)."""
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"warp: mode must be 'bilinear' or 'bicubic', got {mode!r}")
    b, _, h, w = dims(image)
    if flow.shape != (b, 2, h, w):
        raise ValueError(f"warp: flow must be {(b, 2, h, w)}, got {tuple(flow.shape)}")
    pos = base_grid(h, w, flow.device, flow.dtype) + flow
    inside = ((pos[:, 0:1] >= 0) & (pos[:, 0:1] <= w - 1) & (pos[:, 1:2] >= 0) & (pos[:, 1:2] <= h - 1))
    if mode == "bicubic":
        return _warp_cubic(image, pos), inside
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=flow.dtype, device=flow.device)
    grid = (pos * scale.view(1, 2, 1, 1) - 1.0).permute(0, 2, 3, 1)
    out = F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)
    return out, inside


def cubic_weights(t: torch.Tensor) -> list[torch.Tensor]:
    """Catmull-Rom (Keys a = -0.5) weights of the taps at offsets -1, 0, 1, 2 for fraction t."""
    t2, t3 = t * t, t * t * t
    return [0.5 * (-t3 + 2 * t2 - t), 0.5 * (3 * t3 - 5 * t2 + 2), 0.5 * (-3 * t3 + 4 * t2 + t), 0.5 * (t3 - t2)]


def _warp_cubic(image: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Separable cubic interpolation at pixel positions pos (B,2,H,W); taps clamped to the image."""
    b, c, h, w = dims(image)
    x = pos[:, 0:1].clamp(-2.0, w + 1.0)
    y = pos[:, 1:2].clamp(-2.0, h + 1.0)
    x0, y0 = torch.floor(x), torch.floor(y)
    wx, wy = cubic_weights(x - x0), cubic_weights(y - y0)
    x0, y0 = x0.long(), y0.long()
    cols = [(x0 + (i - 1)).clamp_(0, w - 1) for i in range(4)]
    flat = image.reshape(b, c, h * w)
    out = None
    for j in range(4):
        row_base = (y0 + (j - 1)).clamp_(0, h - 1) * w
        row = None
        for i in range(4):
            idx = (row_base + cols[i]).reshape(b, 1, h * w).expand(b, c, h * w)
            term = torch.gather(flat, 2, idx).reshape(b, c, h, w) * wx[i]
            row = term if row is None else row.add_(term)
        out = row.mul_(wy[j]) if out is None else out.add_(row.mul_(wy[j]))
    return out


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sorting network on n (a power of two) wires: (low, high) pairs."""
    pairs, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@lru_cache(maxsize=8)
def median_network(n: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """A selection network for the median of n values: Batcher's sorting network on the next power
    of two (the padding wires hold +inf, so comparators touching them are no-ops and dropped),
    pruned backwards to the comparators the middle output depends on. Each entry is (a, b,
    keep_min_at_a, keep_max_at_b). For n = 25: 113 comparators (checked exhaustively on all 2^25
    0/1 inputs by the 0-1 principle in the tests for n = 9 and in development for n = 25)."""
    m = 1
    while m < n:
        m *= 2
    pairs = [(a, b) for a, b in _batcher_pairs(m) if b < n]
    need, kept = {n // 2}, []
    for a, b in reversed(pairs):
        if a in need or b in need:
            kept.append((a, b, a in need, b in need))
            need |= {a, b}
    return tuple(reversed(kept))


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel median over a size x size window, replicate borders (size odd >= 3; 1 = copy),
    by a min/max selection network over shifted views (about 8x faster than torch.median on the CPU
    and exact). Convention: (B,C,H,W) float -> same shape."""
    if size <= 1:
        return x
    if size % 2 == 0:
        raise ValueError(f"median_filter: size must be odd, got {size}")
    h, w = dims(x)[-2:]
    r = size // 2
    p = F.pad(x, (r, r, r, r), mode="replicate")
    v = [p[..., i:i + h, j:j + w] for i in range(size) for j in range(size)]
    for a, b, keep_low, keep_high in median_network(size * size):
        lo = torch.minimum(v[a], v[b]) if keep_low else None
        if keep_high:
            v[b] = torch.maximum(v[a], v[b])
        if keep_low:
            v[a] = lo
    return v[(size * size) // 2].contiguous()
