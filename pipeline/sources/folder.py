"""Image folder source: sorted images (natural order: 2.png before 10.png) at a given frame rate.

Also reads the MOT layout: a sequence folder holding `img1/` and `seqinfo.ini`, whose `frameRate`
gives the rate unless `fps` is set. Frame i has time i / fps, pts i and time_base 1 / fps.
"""
from __future__ import annotations

import configparser
import logging
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

from ..errors import SourceError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo
from .base import Source

log = logging.getLogger("vidpipe.sources")
DEFAULT_FPS = 30.0


@dataclass
class FolderParams:
    uri: str = param(path="dir", doc="folder of images, or a MOT sequence folder holding img1/ and seqinfo.ini")
    fps: float | None = param(None, gt=0, doc="frame rate for timestamps (default: seqinfo.ini frameRate, else 30)")
    start: float = param(0.0, ge=0, doc="start time in seconds (skips the images before it)")
    extensions: list[str] = param([".png", ".jpg", ".jpeg", ".bmp"], doc="image file extensions read (case-insensitive)")
    max_pixels: int = param(8192 * 8192, gt=0, doc="reject images with more pixels than this")


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def seqinfo_rate(folder: str) -> float | None:
    """frameRate from a MOT seqinfo.ini in `folder`, if any."""
    path = os.path.join(folder, "seqinfo.ini")
    if not os.path.isfile(path):
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        rate = float(parser["Sequence"]["frameRate"])
    except (configparser.Error, KeyError, ValueError):
        log.warning("%s: no usable frameRate, using the fps param or %s", path, DEFAULT_FPS)
        return None
    return rate if rate > 0 else None


class FolderSource(Source):
    """Reads images in natural sort order with OpenCV (BGR)."""

    type_name = "folder"
    Params = FolderParams
    live = False

    def __init__(self, params: FolderParams | None = None) -> None:
        super().__init__(params)
        self._files: list[str] = []
        self._fps = DEFAULT_FPS
        self._size: tuple[int, int] = (0, 0)
        self._unreadable = 0
        self._frames_out = 0

    def open(self) -> SourceInfo:
        import cv2

        folder = self.params.uri
        if not os.path.exists(folder):
            raise SourceError(f"folder not found: {folder}")
        if not os.path.isdir(folder):
            raise SourceError(f"not a folder (use source type 'file' for a video): {folder}")
        rate = seqinfo_rate(folder)
        images = os.path.join(folder, "img1")
        if os.path.isdir(images):  # MOT sequence layout
            folder = images
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in self.params.extensions)
        names = sorted((n for n in os.listdir(folder) if n.lower().endswith(exts)), key=natural_key)
        if not names:
            raise SourceError(f"no images ({', '.join(exts)}) in folder: {folder}")
        self._fps = self.params.fps or rate or DEFAULT_FPS
        skip = int(round(self.params.start * self._fps))
        self._files = [os.path.join(folder, n) for n in names[skip:]]
        self._first = skip
        if not self._files:
            raise SourceError(f"start={self.params.start}s is past the last of {len(names)} images: {folder}")
        first = cv2.imread(self._files[0], cv2.IMREAD_COLOR)
        if first is None:
            raise SourceError(f"cannot read image: {self._files[0]}")
        h, w = first.shape[:2]
        if w * h > self.params.max_pixels:
            raise SourceError(f"image size {w}x{h} exceeds max_pixels={self.params.max_pixels}: {self._files[0]}")
        self._size = (w, h)
        return SourceInfo(uri=self.params.uri, width=w, height=h, fps=self._fps, live=False,
                          frame_count=len(self._files), time_base=self._time_base(), codec="images")

    def _time_base(self) -> Fraction:
        return 1 / Fraction(self._fps).limit_denominator(1001)

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        import cv2

        tb = self._time_base()
        w, h = self._size
        resized = False
        for path in self._files:
            if stop_event.is_set():
                return
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                self._unreadable += 1
                if self._unreadable == 1:
                    log.warning("%s: unreadable image skipped (further ones are counted)", path)
                continue
            if image.shape[:2] != (h, w):
                if not resized:
                    log.warning("%s: size %dx%d differs from the first image's %dx%d; resized",
                                path, image.shape[1], image.shape[0], w, h)
                    resized = True
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            pts = self._first + self._frames_out + self._unreadable
            frame = Frame(self._frames_out, float(pts * tb), image, pts=pts, time_base=tb)
            self._frames_out += 1
            yield frame

    def stats(self) -> dict:
        return {"frames": self._frames_out, "unreadable": self._unreadable}
