"""Model files: the one-line errors for missing, empty or unreadable files, a small table of known
official downloads, and a sha256-checked fetch into a cache that says where to put the file when it
cannot download (no network).

Convention: paths are `pathlib.Path`; sha256 is lower-case hex; nothing is fetched unless asked.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class ModelError(ValueError):
    """A model file is missing, corrupt, or does not fit what the stage expects. One line."""


@dataclass(frozen=True)
class Known:
    url: str
    sha256: str
    size: int
    head: str
    note: str = ""


# Official release assets only. The YOLOX-Nano digest is the one recorded for this URL by two
# independent projects that vendor it; the copy in ../shared/models (another repository's copy,
# 3,713,911 bytes) is a different file and is used from its path, never checked against this.
KNOWN: dict[str, Known] = {
    "yolox_nano.onnx": Known(
        "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx",
        "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d", 3_659_407, "yolox",
        "YOLOX-Nano, COCO, 416x416, Apache-2.0"),
}

KINDS = {
    "onnx": "an ONNX model (.onnx)",
    "torchscript": "a TorchScript file (torch.jit.save / Ultralytics .torchscript)",
    "export": "a torch.export program (.pt2, torch.export.save)",
}


def cache_dir() -> Path:
    """$VIDPIPE_CACHE, else ~/.cache/vidpipe/models."""
    env = os.environ.get("VIDPIPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vidpipe" / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, kind: str) -> None:
    """ModelError unless `path` is a non-empty regular file."""
    expected = KINDS.get(kind, kind)
    if path.is_dir():
        raise ModelError(f"model file {path} is a directory; expected {expected}")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"model file {path} is empty (0 bytes); expected {expected}")


def resolve(path: str | os.PathLike, kind: str, download: bool = False, cache: Path | None = None,
            timeout: float = 30.0) -> Path:
    """The file to load for `path`: the path itself when it exists, else a cached (or, with
    `download`, freshly fetched) copy of a known model of that file name; else ModelError."""
    p = Path(path).expanduser()
    if p.exists():
        check_file(p, kind)
        return p
    known = KNOWN.get(p.name)
    where = f"model file {p.resolve()} not found; expected {KINDS.get(kind, kind)}"
    if known is None:
        raise ModelError(where)
    cached = (cache or cache_dir()) / p.name
    if cached.is_file():
        verify(cached, known)
        return cached
    if not download:
        raise ModelError(f"{where}; it is published at {known.url} (sha256 {known.sha256}): put it at {p} "
                         f"or {cached}, or set download: true")
    return fetch(known, cached, timeout)


def verify(path: Path, known: Known) -> None:
    digest = sha256_file(path)
    if digest != known.sha256:
        raise ModelError(f"model file {path} has sha256 {digest}, expected {known.sha256} ({known.url}); "
                         f"delete it and download again")


def fetch(known: Known, dest: Path, timeout: float = 30.0) -> Path:
    """Download `known.url` to `dest` (through dest + '.part'), check size and sha256, return dest.
    When it cannot, ModelError says in one line where to put the file by hand."""
    offline = f"put the file (sha256 {known.sha256}) at {dest} by hand"
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(known.url, timeout=timeout) as response, open(part, "wb") as fh:  # noqa: S310
            received = 0
            while chunk := response.read(1 << 20):
                received += len(chunk)
                if received > known.size:
                    break
                digest.update(chunk)
                fh.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(f"cannot download {known.url} ({reason}); offline: {offline}") from None
    if received != known.size or digest.hexdigest() != known.sha256:
        part.unlink(missing_ok=True)
        raise ModelError(f"download of {known.url} gave {received} bytes with sha256 {digest.hexdigest()}, expected "
                         f"{known.size} bytes with sha256 {known.sha256}; {offline}")
    part.replace(dest)
    return dest
