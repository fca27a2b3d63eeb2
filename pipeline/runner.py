"""The runner: a source thread, one thread per stage and a sink thread, linked by bounded queues.

    source --q0--> stage 0 --q1--> stage 1 ... --qn--> sinks [--tap--> the caller's iterator]

Lifecycle (all in the calling thread): open the source, set up every stage, open every sink (a
failure closes what was opened and raises), start the threads, wait, then close every sink, stage
and source whose open/setup succeeded, exactly once, whatever happened.

Stopping. A stage that raises on frame k records `StageError(stage, k)` and sets the stop event:
the source stops reading, every thread up to and including the failed stage throws its frames
away (counted as discarded), and the stages after it finish the frames already past it, so the
sinks keep every frame before k. `stop()` (any thread) and Ctrl-C do the same with every stage
discarding. If the chain has not drained `drain_timeout` seconds after a stop, the sinks discard
too; after `join_timeout` more the queues abort. Every blocking queue call wakes every `wake`
seconds to check for this, so no thread hangs on a queue.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import Callable, Sequence

from .errors import ConfigError, PipelineError, SinkError, SourceError, StageError
from .frame import Frame
from .queues import ABORT, EOS, TIMEOUT, Edge
from .stage import SourceInfo, Stage, StageContext
from .stats import RunStats, tree_pss_mb

log = logging.getLogger("vidpipe")


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda...' without CUDA is a ConfigError."""
    if device == "auto":
        if "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia/version"):
            return "cpu"  # no NVIDIA driver: skip importing torch just to learn that
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"pipeline.device: {device!r} requested but CUDA is not available (use auto or cpu)")
    return device


def _label(obj) -> str:
    return getattr(obj, "name", None) or getattr(obj, "type_name", "") or type(obj).__name__


class Runner:
    """Runs one source -> stages -> sinks chain once. `run()` returns the stats dict."""

    def __init__(self, source, stages: Sequence[Stage], sinks: Sequence = (), *, device: str = "auto",
                 queue_size: int = 8, drop_policy: str = "auto", max_frames: int | None = None,
                 tap: bool = False, drain_timeout: float = 1.5, join_timeout: float = 5.0,
                 wake: float = 0.05, stage_threads: int = 1, cuda_streams: bool = True) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size: expected 1 <= x, got {queue_size}")
        self.source, self.stages, self.sinks = source, list(stages), list(sinks)
        self.device, self.queue_size, self.drop_policy = device, queue_size, drop_policy
        self.max_frames, self.want_tap = max_frames, tap
        self.drain_timeout, self.join_timeout, self.wake = drain_timeout, join_timeout, wake
        self.stage_threads = stage_threads  # torch intra-op threads per stage thread (0: torch's default)
        self.cuda_streams = cuda_streams    # on CUDA: a stream per stage thread (see _stage_stream)
        self.stop_event = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._discard_upto = -1          # threads at positions <= this throw frames away
        self._error: BaseException | None = None
        self._stop_at: float | None = None
        self._opened: list = []           # (kind, object) whose open/setup succeeded, in order
        self._threads: list[threading.Thread] = []
        self.edges: list[Edge] = []
        self.tap: Edge | None = None
        self.info: SourceInfo | None = None
        self.stats = RunStats()
        self.stage_stats = []
        self.result: dict | None = None
        self.peak_pss_mb: float | None = None   # this process and its workers, sampled while waiting
        self._next_memory_sample = time.monotonic() + 0.5

    # ---- control ----
    def stop(self) -> None:
        """Ask the run to end soon (thread-safe): the source stops, stages discard, sinks finalize."""
        self._halt(len(self.stages) - 1)

    def _halt(self, upto: int, error: BaseException | None = None) -> None:
        with self._lock:
            if error is not None and self._error is None:
                self._error = error
            elif error is not None:
                log.warning("also: %s", error)
            self._discard_upto = max(self._discard_upto, upto)
            if self._stop_at is None:
                self._stop_at = time.perf_counter()
            self.stop_event.set()

    def cpu_time(self) -> float:
        """CPU seconds of this process and of the stages' worker processes (pipeline.isolation)."""
        return time.process_time() + sum(getattr(s, "worker_cpu", 0.0) for s in self.stages)

    def _discarding(self, pos: int) -> bool:
        return pos <= self._discard_upto

    # ---- lifecycle ----
    def _context(self, name: str, device: str, shared: dict) -> StageContext:
        return StageContext(device=device, source=self.info, stop_event=self.stop_event,
                            logger=logging.getLogger(f"vidpipe.{name}"), shared=shared)

    def start(self) -> None:
        """Open, set up and start every thread; on failure close what was opened and raise."""
        try:
            self.info = self.source.open()
            self._opened.append(("source", self.source))
            device = resolve_device(self.device)
            policy = self.drop_policy
            if policy == "auto":
                policy = "drop_oldest" if (self.info.live or getattr(self.source, "live", False)) else "block"
            self.device, self.drop_policy = device, policy
            shared: dict = {}
            for stage in self.stages:   # worker processes start first and import in parallel
                if hasattr(stage, "launch"):
                    self._opened.append(("stage", stage))
                    stage.launch(self._context(stage.name, device, shared), self.stage_threads)
            for stage in self.stages:
                try:
                    with self._setup_threads():
                        stage.setup(self._context(stage.name, device, shared))
                except (ConfigError, PipelineError):
                    raise
                except Exception as exc:
                    raise StageError(stage.name, None, exc) from exc
                if ("stage", stage) not in self._opened:
                    self._opened.append(("stage", stage))
            torch = sys.modules.get("torch")
            if str(device).startswith("cuda") and torch is not None and torch.cuda.is_available():
                torch.cuda.synchronize()  # what setup() queued (weights, graphs) is done before any stage stream runs
            for i, sink in enumerate(self.sinks):
                try:
                    sink.open(self.info, self._context(f"sink.{_label(sink)}", device, shared))
                except (ConfigError, PipelineError):
                    raise
                except Exception as exc:
                    raise SinkError(f"sinks[{i}] ({_label(sink)}): cannot open: {type(exc).__name__}: {exc}") from exc
                self._opened.append(("sink", sink))
        except BaseException:
            self._close_all()
            raise
        self._start_threads(policy)

    def _start_threads(self, policy: str) -> None:
        names = ["source"] + [s.name for s in self.stages] + ["sinks"]
        self.edges = [Edge(f"{a}->{b}", self.queue_size, policy, self._abort, self.wake)
                      for a, b in zip(names[:-1], names[1:])]
        if self.want_tap:
            self.tap = Edge("sinks->caller", self.queue_size, "block", self._abort, self.wake)
        self.stage_stats = [self.stats.add_stage(s.name, s.type_name or type(s).__name__) for s in self.stages]
        sink_stats = self.stats.add_stage("sinks", ",".join(_label(s) for s in self.sinks) or "none")
        self.stats.started = time.perf_counter()
        self.stats.cpu_started = self.cpu_time()
        targets = [("vidpipe-source", self._source_loop, ())]
        for pos, stage in enumerate(self.stages):
            targets.append((f"vidpipe-{stage.name}", self._stage_loop, (pos, stage, self.stage_stats[pos])))
        targets.append(("vidpipe-sinks", self._sink_loop, (sink_stats,)))
        for name, fn, args in targets:
            thread = threading.Thread(target=fn, args=args, name=name, daemon=False)
            self._threads.append(thread)
            thread.start()

    # ---- threads ----
    def _source_loop(self) -> None:
        out, gen = self.edges[0], None
        cpu0 = time.thread_time()
        try:
            gen = self.source.frames(self.stop_event)
            for frame in gen:
                if self.stop_event.is_set() or not out.put(frame, self.stop_event.is_set):
                    break
                self.stats.frames_read += 1
                if self.max_frames is not None and self.stats.frames_read >= self.max_frames:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            if not isinstance(exc, PipelineError):
                uri = getattr(self.info, "uri", "") or _label(self.source)
                err = SourceError(f"{uri}: reading failed after {self.stats.frames_read} frames: "
                                  f"{type(exc).__name__}: {exc}")
                err.__cause__ = exc
                exc = err
            self._halt(-1, exc)  # the frames already read are still processed and written
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("source: closing the frame iterator failed: %s", exc)
            self.stats.source_cpu = time.thread_time() - cpu0  # decoding in this thread (not FFmpeg's own threads)
            out.put_eos()

    def _collect(self, inq: Edge, first, batch: int, max_wait: float):
        """Up to `batch` frames starting with `first`, waiting at most max_wait for more; (frames, ended)."""
        frames, deadline = [first], time.perf_counter() + max_wait
        while len(frames) < batch:
            item = inq.get(timeout=max(0.0, deadline - time.perf_counter()))
            if item is TIMEOUT:
                return frames, False
            if item is EOS or item is ABORT:
                return frames, True
            frames.append(item)
        return frames, False

    def _limit_threads(self) -> None:
        """torch's intra-op thread count belongs to the calling thread: each stage thread gets
        `stage_threads` (1: the chain's parallelism is its threads; more per stage only
        oversubscribe the cores, measured +30 % CPU per frame on 2 cores, benchmarks/RESULTS.md)."""
        torch = sys.modules.get("torch")
        if self.stage_threads and torch is not None:
            torch.set_num_threads(self.stage_threads)

    @contextlib.contextmanager
    def _setup_threads(self):
        """setup() runs in the caller's thread: a stage that sizes a pool from torch's count there
        (an onnxruntime session) sees `stage_threads` too; the caller's own count is restored."""
        torch = sys.modules.get("torch") if self.stage_threads else None
        before = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(self.stage_threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)

    def _stage_stream(self):
        """On CUDA, a stream of this stage thread's own, made its current stream (torch keeps the
        current stream per thread), or None. With one shared stream a stage's host sync (a
        `.cpu()` of its results) waits for every kernel the other stages queued before it, and no
        two stages' kernels overlap; with one stream each they do, and each stage waits for its
        own work only. The frames stay safe to hand on: `_stage_loop` synchronizes the stage's
        stream after process() (the next stage reads finished tensors) while it still holds the
        frame's previous device tensors (none is freed and reused while a kernel reads it)."""
        torch = sys.modules.get("torch")
        if not (self.cuda_streams and torch is not None and str(self.device).startswith("cuda")
                and torch.cuda.is_available()):
            return None
        stream = torch.cuda.Stream(device=self.device)
        torch.cuda.set_stream(stream)
        return stream

    def _stage_loop(self, pos: int, stage: Stage, st) -> None:
        self._limit_threads()
        stream = self._stage_stream()
        inq, outq = self.edges[pos], self.edges[pos + 1]
        batch = max(1, int(getattr(stage, "batch_size", 1) or 1))
        max_wait = max(0.0, float(getattr(stage, "max_wait", 0.0) or 0.0))
        ended = False
        try:
            while not ended:
                item = inq.get()
                if item is EOS or item is ABORT:
                    break
                frames, ended = self._collect(inq, item, batch, max_wait) if batch > 1 else ([item], False)
                if self._discarding(pos):
                    st.discarded += len(frames)
                    continue
                t0, c0 = time.perf_counter(), time.thread_time()
                held = [(f._tensors.copy(), f.mask, f.flow) for f in frames] if stream is not None else None
                try:
                    outs = stage.process_batch(frames) if batch > 1 else [stage.process(frames[0])]
                    if stream is not None:
                        stream.synchronize()  # this stage's kernels on these frames are done
                    if len(outs) != len(frames):
                        raise RuntimeError(f"process_batch returned {len(outs)} results for {len(frames)} frames")
                    if not all(o is None or isinstance(o, Frame) for o in outs):
                        raise TypeError(f"process returned {type(next(o for o in outs if not isinstance(o, Frame))).__name__}, "
                                        f"expected a Frame or None")
                except BaseException as exc:  # noqa: BLE001 - becomes StageError for the caller
                    err = StageError(stage.name, frames[0].index, exc)
                    err.__cause__ = exc
                    st.discarded += len(frames)
                    self._halt(pos, err)
                    continue
                finally:
                    held = None  # the inputs' device tensors may go once the stream is done with them
                dt = time.perf_counter() - t0
                st.cpu += time.thread_time() - c0 + stage.external_cpu()
                outs = [f for f in outs if f is not None]
                st.record(len(frames), len(outs), dt)
                for frame in outs:
                    frame.timings[stage.name] = dt / len(frames)
                    if self._discarding(pos) or not outq.put(frame, lambda: self._discarding(pos)):
                        st.discarded += 1
        except BaseException as exc:  # noqa: BLE001 - a bug here must still end the run
            self._halt(pos, exc)
        finally:
            outq.put_eos()

    def _sink_loop(self, st) -> None:
        pos, inq = len(self.stages), self.edges[-1]
        try:
            while True:
                frame = inq.get()
                if frame is EOS or frame is ABORT:
                    break
                if self._discarding(pos):
                    st.discarded += 1
                    continue
                t0, c0 = time.perf_counter(), time.thread_time()
                for i, sink in enumerate(self.sinks):
                    try:
                        sink.write(frame)
                    except BaseException as exc:  # noqa: BLE001
                        err = exc if isinstance(exc, PipelineError) else SinkError(
                            f"sinks[{i}] ({_label(sink)}) failed on frame {frame.index}: {type(exc).__name__}: {exc}")
                        if err is not exc:
                            err.__cause__ = exc
                        self._halt(pos, err)
                        break
                else:
                    now = time.perf_counter()
                    st.cpu += time.thread_time() - c0
                    st.record(1, 1, now - t0)
                    self.stats.written(now - frame.decoded_at)
                    if self.tap is not None:
                        self.tap.put(frame)
        except BaseException as exc:  # noqa: BLE001
            self._halt(pos, exc)
        finally:
            if self.tap is not None:
                self.tap.put_eos()

    # ---- waiting and closing ----
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait(self, progress: Callable[["Runner"], None] | None = None, poll: float = 0.1) -> dict:
        """Join every thread (Ctrl-C stops the run the same way), close everything, return the stats
        dict or raise the run's first error (StageError, SourceError, SinkError) or KeyboardInterrupt."""
        interrupted = None
        try:
            while self.alive():
                try:
                    if self._join_step(poll):
                        break
                    self._sample_memory()
                    if progress is not None:
                        progress(self)
                except KeyboardInterrupt as exc:   # Ctrl-C, or SIGTERM as the CLI's Terminated
                    if interrupted is not None:
                        self._abort.set()  # a second Ctrl-C: no more draining
                    interrupted = exc
                    self.stop()
        finally:
            self._finish()
        if interrupted is not None:
            raise type(interrupted)()
        if self._error is not None:
            raise self._error
        return self.result

    def _sample_memory(self, every: float = 1.0) -> None:
        """Peak memory of this process and, when stages run in workers, its child processes (PSS:
        shared pages once), sampled about once a second while the run goes (from 0.5 s on)."""
        now = time.monotonic()
        if now < self._next_memory_sample:
            return
        self._next_memory_sample = now + every
        # the fork server and the workers when this run has some (not one an earlier run left)
        pss = tree_pss_mb(descendants=any(getattr(s, "has_worker", False) for s in self.stages))
        if pss is not None:
            self.peak_pss_mb = max(self.peak_pss_mb or 0.0, pss)

    def _join_step(self, poll: float) -> bool:
        """Join a little; True when threads stuck in process() must be left behind."""
        for thread in self._threads:
            if thread.is_alive():
                thread.join(poll)
                break
        stop_at = self._stop_at
        if stop_at is not None:
            waited = time.perf_counter() - stop_at
            if waited > self.drain_timeout:
                self._discard_upto = len(self.stages)  # stop draining: nothing more is written
            if waited > self.drain_timeout + self.join_timeout and not self._abort.is_set():
                stuck = [t.name for t in self._threads if t.is_alive()]
                log.warning("run did not end %.1f s after stop; aborting queues (still busy: %s)",
                            waited, ", ".join(stuck))
                self._abort.set()
            if waited > self.drain_timeout + 2 * self.join_timeout:
                stuck = [t.name for t in self._threads if t.is_alive()]
                self._halt(len(self.stages), PipelineError(
                    f"threads still running after stop: {', '.join(stuck)} (a stage's process() does not return)"))
                return True
        return False

    def _finish(self) -> None:
        if self.alive():
            self._abort.set()
        self._close_all()
        self.stats.ended = time.perf_counter()  # finalizing the outputs is part of the run
        self.stats.cpu_ended = self.cpu_time()
        extra = {"device": self.device, "drop_policy": self.drop_policy,
                 "stopped": "error" if self._error else ("stop" if self._stop_at else "end")}
        source = {"type": getattr(self.source, "type_name", ""), "uri": getattr(self.info, "uri", "")}
        try:
            source.update(self.source.stats() or {})
        except Exception as exc:  # noqa: BLE001
            log.warning("source.stats() failed: %s", exc)
        summaries = {}
        for stage in self.stages:
            try:
                summaries[stage.name] = stage.summary() or {}
            except Exception as exc:  # noqa: BLE001
                log.warning("%s.summary() failed: %s", stage.name, exc)
        extra["outputs"] = []
        for sink in self.sinks:
            try:
                extra["outputs"].append({"type": _label(sink), **(getattr(sink, "summary", dict)() or {})})
            except Exception as exc:  # noqa: BLE001
                log.warning("sink %s: summary() failed: %s", _label(sink), exc)
        self.result = self.stats.to_dict(self.edges, source, summaries, **extra)
        workers = [w for w in (getattr(s, "worker_peak_rss_mb", None) for s in self.stages) if w]
        if workers:   # this process's peak plus each worker process's (an upper bound of the total)
            self.result["peak_rss_mb"] = round(self.result["peak_rss_mb"] + sum(workers), 1)
        self.result["peak_pss_mb"] = self.peak_pss_mb

    def _close_all(self) -> None:
        """close() once for everything opened: sinks first (finalize the output), stages, source."""
        busy = {t.name for t in self._threads if t.is_alive()}
        order = [o for o in self._opened if o[0] == "sink"] + [o for o in self._opened if o[0] == "stage"] + \
                [o for o in self._opened if o[0] == "source"]
        self._opened = []
        for kind, obj in order:
            if kind == "stage" and f"vidpipe-{obj.name}" in busy or kind == "sink" and "vidpipe-sinks" in busy:
                log.warning("%s %s is still running; not closed", kind, _label(obj))
                continue
            try:
                obj.close()
            except Exception as exc:  # noqa: BLE001
                err = StageError(obj.name, None, exc) if kind == "stage" else \
                    (exc if isinstance(exc, PipelineError) else
                     (SinkError if kind == "sink" else SourceError)(f"{kind} {_label(obj)}: close failed: {exc}"))
                if err is not exc:
                    err.__cause__ = exc
                with self._lock:
                    if self._error is None:
                        self._error = err
                    else:
                        log.warning("%s %s: close failed: %s", kind, _label(obj), exc)

    def run(self, progress: Callable[["Runner"], None] | None = None) -> dict:
        self.start()
        return self.wait(progress)

