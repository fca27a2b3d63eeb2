"""The bounded queue on each edge of the chain, with its full-queue policy.

`block` (lossless): a producer waits for room. `drop_oldest` (live): the oldest waiting frame is
thrown away to make room, and counted. End-of-stream is never dropped. Every wait wakes every
`wake` seconds so that a producer can give up (its frames are no longer wanted) and every call
returns ABORT once the run is aborted, so no thread can hang on a queue.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable

POLICIES = ("block", "drop_oldest")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOS = _Marker("EOS")          # end of stream: the producer is done
ABORT = _Marker("ABORT")      # the run was aborted: stop at once
TIMEOUT = _Marker("TIMEOUT")  # a get with a deadline found nothing


class Edge:
    """A FIFO of at most `maxsize` frames between two threads (plus one end-of-stream marker)."""

    def __init__(self, name: str, maxsize: int, policy: str, abort: threading.Event, wake: float = 0.05) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size: expected 1 <= size, got {maxsize}")
        if policy not in POLICIES:
            raise ValueError(f"queue policy: expected one of {POLICIES}, got {policy!r}")
        self.name, self.maxsize, self.policy = name, maxsize, policy
        self._abort, self._wake = abort, wake
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self.puts = 0
        self.drops = 0
        self.high_water = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item, give_up: Callable[[], bool] | None = None) -> bool:
        """Enqueue a frame; False when the run was aborted or `give_up()` became true while waiting."""
        with self._cond:
            if self.policy == "drop_oldest":
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.drops += 1
            else:
                while len(self._items) >= self.maxsize:
                    if self._abort.is_set() or (give_up is not None and give_up()):
                        return False
                    self._cond.wait(self._wake)
            self._items.append(item)
            self.puts += 1
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def put_eos(self) -> None:
        """Append end-of-stream: never dropped, never waits (it is not counted against the size)."""
        with self._cond:
            self._items.append(EOS)
            self._cond.notify_all()

    def get(self, timeout: float | None = None):
        """The next item, EOS, ABORT, or TIMEOUT once `timeout` seconds passed with nothing to get."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while not self._items:
                if self._abort.is_set():
                    return ABORT
                if deadline is None:
                    self._cond.wait(self._wake)
                    continue
                left = deadline - time.perf_counter()
                if left <= 0:
                    return TIMEOUT
                self._cond.wait(min(left, self._wake))
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def stats(self) -> dict:
        return {"edge": self.name, "size": self.maxsize, "policy": self.policy, "puts": self.puts,
                "drops": self.drops, "high_water": self.high_water}
