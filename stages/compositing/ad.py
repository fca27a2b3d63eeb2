"""The ad image: loading a PNG with alpha, and the generated example ad shipped as
configs/assets/ad.png (`python -m stages.compositing.ad configs/assets/ad.png`).

Convention: an ad is (h,w,4) uint8 BGRA, alpha 255 = opaque; pixel centres at integer coordinates,
so the ad's outer corners are (-0.5,-0.5) and (w-0.5,h-0.5).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def load_ad(path: str | Path) -> np.ndarray:
    """Read an image file as BGRA uint8; an image without alpha is opaque. Raises FileNotFoundError
    or ValueError naming the path."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ad image {str(path)!r} not found")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"ad image {str(path)!r}: not a readable image")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"ad image {str(path)!r}: expected at least 2x2 pixels, got {img.shape[1]}x{img.shape[0]}")
    return np.ascontiguousarray(img)


def ad_corners(width: int, height: int) -> np.ndarray:
    """Outer corners of a width x height ad, clockwise from top-left. Convention: (4,2) float64."""
    return np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])


def make_example_ad(width: int = 480, height: int = 240, opaque: bool = False) -> np.ndarray:
    """A generated logo ad: a rounded panel with a gradient, a round emblem and text, anti-aliased
    alpha edges (drawn at 4x and area-averaged). `opaque` fills the whole rectangle (for
    evaluations that compare the drawn region with the surface). Convention: (h,w,4) uint8 BGRA."""
    import cv2

    if width < 64 or height < 32:
        raise ValueError(f"size: expected width >= 64 and height >= 32, got {width}x{height}")
    k = 4
    w, h = width * k, height * k
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = np.float32([150, 40, 20]), np.float32([120, 20, 110])  # BGR: deep blue -> purple
    canvas = np.ascontiguousarray(np.broadcast_to(top * (1 - y) + bottom * y, (h, w, 3))).astype(np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    r = int(0.16 * h) if not opaque else 0
    if r:
        cv2.rectangle(alpha, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(alpha, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(alpha, (cx, cy), r, 255, -1, cv2.LINE_AA)
    else:
        alpha[:] = 255
    cx, cy, rad = int(0.2 * w), h // 2, int(0.32 * h)
    cv2.circle(canvas, (cx, cy), rad, (40, 200, 255), -1, cv2.LINE_AA)  # amber emblem
    tri = np.array([[cx - rad // 2, cy - rad // 2], [cx + rad // 2, cy - rad // 2], [cx, cy + rad // 2]], np.int32)
    cv2.fillPoly(canvas, [tri], (255, 255, 255), cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_DUPLEX
    cv2.putText(canvas, "VIDPIPE", (int(0.39 * w), int(0.55 * h)), font, 0.0092 * h, (255, 255, 255), int(0.032 * h), cv2.LINE_AA)
    cv2.putText(canvas, "real-time video", (int(0.41 * w), int(0.78 * h)), font, 0.0042 * h, (80, 220, 255),
                int(0.012 * h), cv2.LINE_AA)
    cv2.rectangle(canvas, (int(0.4 * w), int(0.62 * h)), (int(0.9 * w), int(0.64 * h)), (40, 200, 255), -1)
    bgra = np.dstack([canvas, alpha])
    return cv2.resize(bgra, (width, height), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    import cv2

    parser = argparse.ArgumentParser(description="write the generated example ad (PNG with alpha)")
    parser.add_argument("out", nargs="?", default="configs/assets/ad.png")
    parser.add_argument("--size", default="480x240", help="WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, make_example_ad(width, height), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({width}x{height}, BGRA)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
