"""Pictures and other large arrays (the foreground mask, the flow field) between the runner and a
stage's worker process (pipeline.isolation) through shared memory: the parent makes one block per
array and direction ('in' to the worker, 'out' back) and unlinks them, so an array crosses as a
memcpy and a few bytes of message instead of a pickled copy through the pipe. Small arrays, and
every array where /dev/shm has no room (a container's default 64 MB), go inline, through the pipe.

An 'out' block is made once the worker has returned that array inline once (its size is known
then); from the next frame on the parent offers it with each frame.

Convention: arrays are numpy arrays of a plain dtype (pictures (H,W,3) uint8 BGR); a reference is
("shm", block name, shape, dtype) to the worker, ("shm", shape, dtype) back, or ("inline", array).
"""
from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("vidpipe")

SHM_RESERVE = 32 << 20    # bytes left free in /dev/shm for others
MIN_SHARED = 64 << 10     # smaller arrays are pickled: a block would cost more than it saves


def shm_free_bytes() -> int | None:
    """Free bytes in /dev/shm (Linux; None where there is no such mount)."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def shareable(value) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray) and value.nbytes >= MIN_SHARED and not value.dtype.hasobject


def take_large(fields: dict) -> dict:
    """Remove and return the values of `fields` that go through shared memory (see shareable)."""
    return {key: fields.pop(key) for key in list(fields) if shareable(fields[key])}


def _view(shm, shape, dtype):
    import numpy as np

    return np.ndarray(shape, dtype, buffer=shm.buf)


class SharedArrays:
    """The parent's blocks of one stage: arrays to the worker (`send`) and back (`receive`), at
    1080p 2.7 -> ~0.6 ms of the runner thread's time per picture."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.blocks: dict[tuple[str, str], Any] = {}   # ("in" | "out", array name) -> SharedMemory
        self.inline = False                   # no room in /dev/shm: everything goes through the pipe
        self.shared: dict[tuple[str, str], int] = {}   # (direction, array name) -> arrays that used a block

    def block(self, which: tuple[str, str], nbytes: int):
        from multiprocessing import shared_memory

        shm = self.blocks.get(which)
        if shm is None or shm.size < nbytes:
            self._release(which)
            shm = self.blocks[which] = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        return shm

    def send(self, arrays: dict) -> dict:
        """Copy each large array into its 'in' block: {name: reference} for the worker."""
        refs = {}
        for key, value in arrays.items():
            if not shareable(value) or not self._room(("in", key), value.nbytes):
                refs[key] = ("inline", value)
                continue
            shm = self.block(("in", key), value.nbytes)
            _view(shm, value.shape, value.dtype)[...] = value
            refs[key] = ("shm", shm.name, value.shape, value.dtype.str)
        if self.inline:     # /dev/shm ran short part way: the blocks filled before it are released
            return {key: ("inline", value) for key, value in arrays.items()}
        for key, ref in refs.items():
            if ref[0] == "shm":
                self._count(("in", key))
        return refs

    def offers(self) -> dict:
        """The 'out' blocks the worker may write into: {array name: (block name, size)}."""
        return {key: (shm.name, shm.size) for (which, key), shm in self.blocks.items() if which == "out"}

    def receive(self, key: str, ref):
        """An array the worker returned; one returned inline gets an 'out' block for next time."""
        if ref[0] == "shm":
            _, shape, dtype = ref
            self._count(("out", key))
            return _view(self.blocks[("out", key)], shape, dtype).copy()
        value = ref[1]
        if shareable(value) and self._room(("out", key), value.nbytes):
            self.block(("out", key), value.nbytes)
        return value

    def _count(self, which: tuple[str, str]) -> None:
        self.shared[which] = self.shared.get(which, 0) + 1

    def _room(self, which: tuple[str, str], nbytes: int) -> bool:
        """Whether a block of nbytes may be made (checked first: writing past a full tmpfs would
        kill the process with SIGBUS); False for good, with one warning, once it is short."""
        if self.inline:
            return False
        if which in self.blocks and self.blocks[which].size >= nbytes:
            return True                                   # the block exists: nothing new to allocate
        free = shm_free_bytes()
        if free is not None and free < nbytes + SHM_RESERVE:
            self.inline = True
            self.close()
            log.warning("%s: only %.0f MB free in /dev/shm; frames go through the pipe instead (slower; "
                        "give the container more, e.g. docker run --shm-size=1g)", self.name, free / 2**20)
            return False
        return True

    def _release(self, which) -> None:
        shm = self.blocks.pop(which, None)
        if shm is not None:
            shm.close()
            shm.unlink()

    def close(self) -> None:
        for which in list(self.blocks):
            self._release(which)


class WorkerArrays:
    """The worker's views of the parent's blocks, re-attached when the parent replaces one."""

    def __init__(self) -> None:
        self.blocks: dict[str, Any] = {}      # block name -> SharedMemory
        self.names: dict[tuple[str, str], str] = {}   # ("in" | "out", array name) -> its block now

    def get(self, which: tuple[str, str], name: str):
        from multiprocessing import shared_memory

        old = self.names.get(which)
        if old != name:
            if old is not None:           # the parent made a bigger block: drop the old view
                self.blocks.pop(old).close()
            self.blocks[name] = shared_memory.SharedMemory(name=name)
            self.names[which] = name
        return self.blocks[name]

    def receive(self, key: str, ref, view: bool = False):
        """The array the parent sent: a copy (the block is refilled with the next frame), or with
        `view` a read-only view of the block, valid until the worker answers this frame."""
        if ref[0] == "inline":
            return ref[1]
        _, name, shape, dtype = ref
        array = _view(self.get(("in", key), name), shape, dtype)
        if not view:
            return array.copy()
        array.flags.writeable = False
        return array

    def send(self, key: str, value, offers: dict):
        """Write an array into the 'out' block the parent offers when it fits; else inline."""
        offer = offers.get(key)
        if offer is None or not shareable(value) or value.nbytes > offer[1]:
            return ("inline", value)
        _view(self.get(("out", key), offer[0]), value.shape, value.dtype)[...] = value
        return ("shm", value.shape, value.dtype.str)
