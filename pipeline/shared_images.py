"""Pictures between the runner and a stage's worker process (pipeline.isolation) through shared
memory: two blocks per stage made and unlinked by the parent ('in' to the worker, 'out' back), so
a frame crosses as a memcpy and a few bytes of message instead of a pickled copy through the pipe.
Where /dev/shm has no room (a container's default 64 MB) the pictures go inline, through the pipe.

Convention: pictures are (H,W,3) uint8 BGR numpy arrays; a reference sent to the worker is
(in name, out name, out size, shape), or ("inline", picture).
"""
from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("vidpipe")

SHM_RESERVE = 32 << 20    # bytes left free in /dev/shm for others


def shm_free_bytes() -> int | None:
    """Free bytes in /dev/shm (Linux; None where there is no such mount)."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


class SharedImages:
    """Two shared-memory blocks of one stage (made by the parent): pictures to the worker and
    back, so a frame crosses as a memcpy and a few bytes of message instead of a pickled copy
    through the pipe (at 1080p: 2.7 -> ~0.6 ms of the runner thread's time per frame)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.blocks: dict[str, Any] = {}      # "in" / "out" -> SharedMemory
        self.inline = False                   # no room in /dev/shm: pictures go through the pipe

    def block(self, which: str, nbytes: int):
        from multiprocessing import shared_memory

        shm = self.blocks.get(which)
        if shm is None or shm.size < nbytes:
            self._release(which)
            shm = self.blocks[which] = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        return shm

    def put(self, image) -> tuple:
        """Copy `image` into the 'in' block; returns what the worker needs: (in, out, size, shape),
        or ("inline", image) when shared memory is short (a container's 64 MB /dev/shm: writing
        past a full tmpfs would kill the process with SIGBUS, so the room is checked first)."""
        import numpy as np

        if self.inline or not self._room(2 * image.nbytes):
            return ("inline", image)
        shm_in = self.block("in", image.nbytes)
        shm_out = self.block("out", image.nbytes)
        np.copyto(np.ndarray(image.shape, np.uint8, buffer=shm_in.buf), image)
        return shm_in.name, shm_out.name, shm_out.size, image.shape

    def _room(self, nbytes: int) -> bool:
        if all(which in self.blocks and self.blocks[which].size >= nbytes // 2 for which in ("in", "out")):
            return True                                   # the blocks exist: nothing new to allocate
        free = shm_free_bytes()
        if free is not None and free < nbytes + SHM_RESERVE:
            self.inline = True
            log.warning("%s: only %.0f MB free in /dev/shm; frames go through the pipe instead (slower; "
                        "give the container more, e.g. docker run --shm-size=1g)", self.name, free / 2**20)
            return False
        return True

    def take(self, shape):
        import numpy as np

        return np.ndarray(shape, np.uint8, buffer=self.blocks["out"].buf).copy()

    def _release(self, which: str) -> None:
        shm = self.blocks.pop(which, None)
        if shm is not None:
            shm.close()
            shm.unlink()

    def close(self) -> None:
        for which in list(self.blocks):
            self._release(which)


class WorkerImages:
    """The worker's view of the parent's blocks, re-attached when a name changes."""

    def __init__(self) -> None:
        self.blocks: dict[str, Any] = {}

    def get(self, name: str):
        from multiprocessing import shared_memory

        shm = self.blocks.get(name)
        if shm is None:
            if len(self.blocks) >= 4:      # the parent replaced its blocks: drop the old views
                for old in self.blocks.values():
                    old.close()
                self.blocks.clear()
            shm = self.blocks[name] = shared_memory.SharedMemory(name=name)
        return shm

    def image_in(self, ref):
        import numpy as np

        if ref[0] == "inline":
            return ref[1]
        name_in, _, _, shape = ref
        return np.ndarray(shape, np.uint8, buffer=self.get(name_in).buf).copy()

    def image_out(self, ref, image):
        """Write the stage's picture into the 'out' block when it fits: returns its shape, or the
        picture itself to be pickled (a stage that changed the frame size)."""
        import numpy as np

        if ref[0] == "inline":
            return ("inline", image)
        _, name_out, size, _ = ref
        if image.nbytes > size or image.dtype != np.uint8:
            return ("inline", image)
        np.copyto(np.ndarray(image.shape, np.uint8, buffer=self.get(name_out).buf), image)
        return ("shared", image.shape)
