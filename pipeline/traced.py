"""Run a chain of small torch ops as ONE call: a TorchScript trace per input signature.

Why: a stage thread that issues hundreds of small torch ops per frame (flow at 1/4 scale: ~740)
releases and re-acquires the GIL around every one of them, and with ten busy stage threads each
re-acquisition queues behind the others (a convoy: 30 Jacobi steps take 1 ms alone and 60 ms to
0.6 s next to one thread running Python). A traced graph runs in TorchScript's C++ interpreter with
the GIL released once for the whole call. Same ops, same results; on a GPU it also removes the
Python launch overhead.

The trace is made on the first call with a new signature (shapes, dtypes, devices, which inputs
are None) and checked against the eager result of that same call; a trace that does not match,
or that cannot be made, is dropped and the function runs eagerly from then on (`fallback` says
why). Functions must be free of data-dependent Python control flow (a trace replays the path the
first call took). Convention: `fn(*args)` takes tensors or None and returns a tensor or a tuple
of tensors; it must not mutate its inputs unless `mutates=True` (then the check runs the eager
function on clones).

`share`: a key naming everything the trace bakes in (the stage type and its params, the model
file, the device). Calls with the same key and signature reuse one trace for the whole process:
PyTorch never frees the memory a trace took (pytorch/pytorch#35600; ~10-20 MB per traced flow
step), so a script that runs one config over many files in one process would grow by that much
per pipeline without it.
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict
from typing import Callable, Hashable

log = logging.getLogger("vidpipe")
_SHARED: dict = {}          # (share key, signature) -> trace, for the whole process
_SHARED_LOCK = threading.Lock()


def _signature(args) -> tuple:
    return tuple(None if a is None else (tuple(a.shape), a.dtype, str(a.device)) for a in args)


def _max_difference(a, b) -> float:
    import torch

    a = a if isinstance(a, (tuple, list)) else (a,)
    b = b if isinstance(b, (tuple, list)) else (b,)
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape or x.dtype != y.dtype:
            return float("inf")
        if x.numel():
            if x.dtype == torch.bool:
                worst = max(worst, float((x != y).float().mean()))
            else:
                worst = max(worst, float((x.double() - y.double()).abs().max()))
    return worst


class TracedCall:
    """`fn` traced once per input signature and replayed as one TorchScript call.

    tolerance: largest allowed |traced - eager| on the first call (bool outputs: fraction of
    pixels that differ); max_cache: signatures kept (oldest dropped); enabled=False runs eagerly;
    share: see the module docstring (None: this object's traces are its own).
    """

    def __init__(self, fn: Callable, name: str, *, tolerance: float = 1e-4, mutates: bool = False,
                 max_cache: int = 8, enabled: bool = True, share: Hashable | None = None) -> None:
        self.fn, self.name, self.share = fn, name, share
        self.tolerance, self.mutates, self.max_cache = tolerance, mutates, max_cache
        self.enabled = enabled
        self.fallback: str | None = None       # why tracing is off, once it was given up
        self.traces = 0                        # traces in use (a new one per new signature)
        self._cache: OrderedDict = OrderedDict()

    def __call__(self, *args):
        if not self.enabled or self.fallback is not None:
            return self.fn(*args)
        key = _signature(args)
        traced = self._cache.get(key)
        if traced is not None:
            self._cache.move_to_end(key)
            return traced(*[a for a in args if a is not None])
        if self.share is not None:
            with _SHARED_LOCK:
                traced = _SHARED.get((self.share, key))
            if traced is not None:          # traced and checked by an earlier pipeline in this process
                self._keep(key, traced)
                return traced(*[a for a in args if a is not None])
        return self._trace(key, args)

    def _keep(self, key, traced) -> None:
        if len(self._cache) >= self.max_cache:
            self._cache.popitem(last=False)
        self._cache[key] = traced
        self.traces += 1

    def _trace(self, key, args):
        import torch

        present = [i for i, a in enumerate(args) if a is not None]
        inputs = [args[i] for i in present]

        def positional(*tensors):
            return self.fn(*_refill(args, present, tensors))

        fresh = (lambda: [t.clone() for t in inputs]) if self.mutates else (lambda: inputs)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                traced = torch.jit.trace(positional, tuple(fresh()), check_trace=False, strict=False)
            eager_in, traced_in = fresh(), fresh()
            expected = positional(*eager_in)
            got = traced(*traced_in)
        except Exception as exc:  # noqa: BLE001 - not traceable: run eagerly, say why
            return self._give_up(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", args)
        worst = _max_difference(got, expected)
        if self.mutates:   # the inputs' new state must match too
            worst = max(worst, _max_difference(tuple(traced_in), tuple(eager_in)))
        if not worst <= self.tolerance:
            return self._give_up(f"trace differs from eager by {worst:.3g} (> {self.tolerance:g})", args)
        problems = [str(w.message).splitlines()[0] for w in caught
                    if issubclass(w.category, torch.jit.TracerWarning)]
        if problems:
            log.debug("%s: tracer warnings (result checked): %s", self.name, "; ".join(problems[:3]))
        self._keep(key, traced)
        if self.share is not None:
            with _SHARED_LOCK:
                _SHARED[(self.share, key)] = traced
        return traced(*inputs) if self.mutates else expected

    def _give_up(self, reason: str, args):
        self.fallback = reason
        log.info("%s: running eagerly (%s)", self.name, reason)
        return self.fn(*args)


def _refill(args, present, tensors):
    full = list(args)
    for i, t in zip(present, tensors):
        full[i] = t
    return full
