"""A stage in its own process (`process: true` on a stage in the YAML).

Why: the stage threads of one interpreter share one GIL. A chain of Python-heavy stages (numpy on
small arrays, OpenCV calls, torch ops) keeps every thread waiting for it, so on a CPU the chain
uses ~1.3 of 2 cores however the work is split. A stage moved into a worker process has a GIL of
its own; its thread in the runner only ships frames (a pipe, pickle protocol 5) and waits with the
GIL released.

What crosses: the fields the stage reads (declared `reads` and `optional_reads`) to the worker,
and back the fields it writes (`writes`), `meta` and `timings`: the picture and other large arrays
(mask, flow) through shared memory (pipeline.shared_arrays), the rest pickled through the pipe.
Frames keep their order (one in flight per stage). The worker is forked from a `forkserver`
(a single-threaded process that imported numpy, OpenCV and torch once: no fork of the threaded
runner, and no worker importing torch again; `spawn` where there is no forkserver), builds the
stage from its class and params, runs `setup()` there, and reports errors as one line with the original exception's type. It ignores
Ctrl-C and SIGTERM: the runner decides when it stops, and `close()` ends it (terminated if it
hangs); it ends by itself when the parent is gone.
On a CUDA device a stage that works on the device runs in its thread as usual (device tensors stay
on the device; a worker would need its own CUDA context and host copies) and says so in its
summary; a `host_stage` (numpy/OpenCV work: track, activity, events, planar_track) still gets a
worker, on the CPU, with device tensors it reads copied to the host.
CPU time: the worker's own CPU (all its threads) is reported with every frame and counted for the
stage by the runner and the bench (`external_cpu`).
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import pickle
import signal
import sys
import threading
import time
import warnings
from typing import Any

from .frame import Frame
from .params import ConfigError
from .shared_arrays import SharedArrays, WorkerArrays, take_large
from .stage import Stage, StageContext
from .stats import peak_rss_mb

log = logging.getLogger("vidpipe")

# FIELDS key -> Frame attribute that holds it
_ATTRIBUTES = {"detections": "detections", "tracks": "detections", "track_flow": "detections",
               "mask": "mask", "flow": "flow", "activities": "activities", "events": "events",
               "plane": "plane"}
START_TIMEOUT = 120.0     # seconds for a worker to import its modules and run setup()
CLOSE_TIMEOUT = 10.0


def _host(value):
    """Tensors become numpy arrays (the host contract); anything else is sent as it is."""
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    return value


def attributes(keys) -> tuple[str, ...]:
    """The Frame attributes that hold these FIELDS keys (image aside: it crosses on its own)."""
    return tuple(sorted({_ATTRIBUTES[k] for k in keys if k in _ATTRIBUTES}))


def pack(frame: Frame, attrs: tuple[str, ...]) -> dict:
    """The frame's identity ("id"), meta, timings and the attributes `attrs`, host side."""
    out = {"id": (frame.index, frame.time, frame.pts, frame.time_base, frame.source, frame.decoded_at),
           "meta": frame.meta, "timings": frame.timings}
    for attr in attrs:
        out[attr] = _host(getattr(frame, attr))
    return out


def apply(frame: Frame, data: dict) -> Frame:
    """Set what `pack` carried (all but the identity) on `frame`."""
    for key, value in data.items():
        if key != "id":
            setattr(frame, key, value)
    return frame


def unpack(data: dict, image) -> Frame:
    index, time_, pts, time_base, source, decoded_at = data["id"]
    return apply(Frame(index, time_, image, source=source, pts=pts, time_base=time_base, decoded_at=decoded_at),
                 data)


def _describe(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""


class WorkerError(RuntimeError):
    """An exception raised in a stage's worker process, with the original type's name."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{message} (in the stage's worker process)")
        self.type_name = type_name


def _worker(conn, cls_path: str, params, name: str, device: str, source, stage_threads: int) -> None:
    """The worker process: build, set up, then answer frames until 'close'."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C and a service manager's SIGTERM reach the
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # parent, which finishes the frames and closes us
    process_time = time.process_time
    try:
        module, qualname = cls_path.split(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        stage = cls(params, name=name)
        stage.setup(StageContext(device, source, threading.Event(), logging.getLogger(f"vidpipe.{name}"), {}))
        if stage_threads and "torch" in sys.modules:   # imported by the fork server, or by the stage
            sys.modules["torch"].set_num_threads(stage_threads)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        _quietly(conn.send, ("error", _describe(exc), process_time(), isinstance(exc, ConfigError)))
        return
    returned, image_back = attributes(stage.writes), "image" in stage.writes
    # arrays the stage neither keeps nor writes are read in place, in the block (Stage.input_views)
    copied = set(returned) | ({"image"} if image_back else set())
    views = stage.input_views
    if views:   # torch.from_numpy of a view warns that it is read-only: the stage only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    shared = WorkerArrays()
    if not _quietly(conn.send, ("ready", None, process_time(), False)):
        return
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):       # the parent is gone
            return
        kind, data, refs, offers = pickle.loads(message)
        if kind == "close":
            summary, error = {}, None
            try:
                stage.close()
                summary = stage.summary() or {}
            except BaseException as exc:  # noqa: BLE001
                error = _describe(exc)
            _quietly(conn.send_bytes, pickle.dumps(("closed", (summary, error), peak_rss_mb(), process_time()),
                                                   protocol=5))
            return
        try:
            arrays = {key: shared.receive(key, ref, view=views and key not in copied) for key, ref in refs.items()}
            image = arrays.pop("image")
            out = stage.process(unpack({**data, **arrays}, image))
            if out is None:
                reply = pickle.dumps(("dropped", None, None, process_time()), protocol=5)
            else:
                payload = pack(out, returned)
                back = {key: shared.send(key, value, offers) for key, value in take_large(payload).items()}
                if image_back:
                    back["image"] = shared.send("image", out.image, offers)
                reply = pickle.dumps(("frame", payload, back, process_time()), protocol=5)
        except BaseException as exc:  # noqa: BLE001 - also a result that cannot be pickled
            reply = pickle.dumps(("error", _describe(exc), None, process_time()), protocol=5)
        if not _quietly(conn.send_bytes, reply):
            return


def _quietly(send, message) -> bool:
    """Send to the parent; False (no traceback) when it is gone: the worker then just ends."""
    try:
        send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):
        return False


_START_LOCK = threading.Lock()
# imported once by the fork server: every worker forked from it starts with them (copy-on-write),
# instead of each spawned worker importing torch on its own (~1 s of CPU each)
PRELOAD = ["numpy", "cv2", "torch", "pipeline.isolation"]
START_METHOD = None       # None: forkserver where the platform has it, else spawn (benchmarks set it)


def _start_context():
    """'forkserver' where the platform has it (Linux, macOS): one single-threaded server process
    imports PRELOAD once and forks each worker from that state; else 'spawn'."""
    import multiprocessing

    if START_METHOD is not None:
        return multiprocessing.get_context(START_METHOD)
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _main_not_reimported():
    """Start a spawned worker without re-running the caller's script in it: multiprocessing would
    import __main__ there (a script without an `if __name__ == "__main__":` guard would start its
    pipeline again); the worker needs only pipeline.isolation."""
    main = sys.modules.get("__main__")
    with _START_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
        try:
            if main is not None:
                main.__dict__.pop("__file__", None)
                main.__dict__["__spec__"] = None
            yield
        finally:
            if main is not None:
                main.__dict__.pop("__spec__", None)
                main.__dict__.update(saved)


class ProcessStage(Stage):
    """Runs `cls(params, name)` in a worker process; same reads, writes and results."""

    def __init__(self, cls: type, params: Any = None, name: str | None = None) -> None:
        inner = cls(params, name=name)    # reads/writes may depend on params; nothing heavy in constructors
        super().__init__(inner.params, inner.name)
        self.cls = cls
        self._inner = inner       # runs in the thread instead on a CUDA device
        self._inline = False
        self.type_name = inner.type_name
        self.host_stage = inner.host_stage
        self.reads, self.optional_reads, self.writes = inner.reads, inner.optional_reads, inner.writes
        self._sent = attributes(self.reads | self.optional_reads)
        self._proc = self._conn = None
        self._arrays = SharedArrays(self.name)
        self._summary: dict = {}
        self._cpu = 0.0           # the worker's CPU seconds reported so far
        self._cpu_taken = 0.0     # ... of which external_cpu() has handed out
        self.worker_peak_rss_mb: float | None = None   # reported when it closes

    # ---- lifecycle ----
    def launch(self, context: StageContext, stage_threads: int = 1) -> None:
        """Start the worker (imports and setup run there, in parallel with the other stages')."""
        device = str(context.device)
        if device.startswith("cuda"):
            if not self.host_stage:
                if not self._inline:
                    log.info("%s: process: true applies to host stages on %s; the stage runs in its thread",
                             self.name, device)
                self._inline = True
                return
            device = "cpu"            # host work (numpy, OpenCV): its worker needs no GPU
        if self._proc is not None:
            return
        ctx = _start_context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, name=f"vidpipe-{self.name}", daemon=True,
                                 args=(child, f"{self.cls.__module__}:{self.cls.__qualname__}", self.params,
                                       self.name, device, context.source, stage_threads))
        with _main_not_reimported():
            self._proc.start()
        child.close()

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        self.launch(context)
        if self._inline:
            self._inner.setup(context)
            return
        if not self._conn.poll(START_TIMEOUT):
            self._kill()
            raise RuntimeError(f"worker process did not start within {START_TIMEOUT:.0f} s")
        try:
            kind, error, cpu, config_error = self._conn.recv()
        except (EOFError, OSError):
            raise RuntimeError(f"worker process exited during setup (exit code {self._exit_code()})") from None
        self._cpu = self._cpu_taken = cpu       # setup's CPU is not a frame's
        if kind == "error":
            self._kill()
            if config_error:
                raise ConfigError(error[1])
            raise WorkerError(*error)

    def process(self, frame: Frame) -> Frame | None:
        if self._inline:
            return self._inner.process(frame)
        data = pack(frame, self._sent)
        arrays = {"image": frame.image, **take_large(data)}
        message = ("frame", data, self._arrays.send(arrays), self._arrays.offers())
        try:
            self._conn.send_bytes(pickle.dumps(message, protocol=5))
            kind, payload, back, cpu = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError, BrokenPipeError):
            raise RuntimeError(f"worker process died (exit code {self._exit_code()})") from None
        self._cpu = cpu
        if kind == "error":
            raise WorkerError(*payload)
        if kind == "dropped":
            return None
        apply(frame, payload)
        for key, ref in back.items():
            value = self._arrays.receive(key, ref)
            if key == "image":
                frame.set_image(value)
            else:
                setattr(frame, key, value)
        return frame

    def close(self) -> None:
        if self._inline:
            self._inner.close()
            return
        if self._proc is None:
            return
        try:
            if self._proc.is_alive():
                self._conn.send_bytes(pickle.dumps(("close", None, None, None), protocol=5))
                if self._conn.poll(CLOSE_TIMEOUT):
                    _, (summary, error), rss, cpu = pickle.loads(self._conn.recv_bytes())
                    self._summary, self._cpu, self.worker_peak_rss_mb = summary, cpu, rss
                    if error is not None:
                        raise WorkerError(*error)
        except (EOFError, OSError):
            pass
        finally:
            self._kill()

    def _kill(self) -> None:
        self._arrays.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.join(CLOSE_TIMEOUT if proc.is_alive() else 0)
        if proc.is_alive():
            log.warning("%s: worker process did not end; terminated", self.name)
            proc.terminate()
            proc.join(2.0)
        self._conn.close()

    def _exit_code(self):
        if self._proc is None:
            return None
        self._proc.join(1.0)
        return self._proc.exitcode

    # ---- reporting ----
    @property
    def has_worker(self) -> bool:
        """Whether a worker process runs this stage (not on a GPU run's device stages)."""
        return self._proc is not None and not self._inline

    def external_cpu(self) -> float:
        """CPU seconds the worker used since the last call (for the stage's share)."""
        delta, self._cpu_taken = self._cpu - self._cpu_taken, self._cpu
        return delta

    @property
    def worker_cpu(self) -> float:
        """CPU seconds the worker has used in all (setup included)."""
        return self._cpu

    def summary(self) -> dict:
        if self._inline:
            return {**(self._inner.summary() or {}), "process": "thread (cuda)"}
        return {**self._summary, "process": "worker"}
