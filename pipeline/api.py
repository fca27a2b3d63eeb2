"""The Python API for people who embed the pipeline.

    stats = Pipeline.from_yaml("configs/default.yaml", overrides=["pipeline.queue_size=4"]).run()

    with Pipeline.from_dict({"source": "in.mp4", "stages": [{"type": "annotate"}]}) as pipe:
        for frame in pipe.frames():       # processed frames, in order; sinks are still written
            ...

Sources, stages and sinks may also be passed as objects: `Pipeline(source, [stage, ...], [sink])`.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

from . import config as _config
from .errors import ConfigError
from .frame import Frame
from .graph import check_graph
from .queues import ABORT, EOS, TIMEOUT
from .runner import Runner


class Pipeline:
    def __init__(self, source, stages: Sequence = (), sinks: Sequence = (), *, device: str = "auto",
                 queue_size: int = 8, drop_policy: str = "auto", max_frames: int | None = None,
                 print_stats: bool = True, drain_timeout: float = 1.5, registries=None,
                 stage_threads: int = 1, cuda_streams: bool = True) -> None:
        self.source, self.stages, self.sinks = source, list(stages), list(sinks)
        self.options = dict(device=device, queue_size=queue_size, drop_policy=drop_policy,
                            max_frames=max_frames, drain_timeout=drain_timeout, stage_threads=stage_threads,
                            cuda_streams=cuda_streams)
        self.print_stats = print_stats
        names = [s.name for s in self.stages]
        errors = [f"stages[{i}].name: duplicate stage name {n!r}" for i, n in enumerate(names) if n in names[:i]]
        errors += check_graph([(f"stages[{i}] ({s.name})", s) for i, s in enumerate(self.stages)],
                              [(f"sinks[{i}] ({getattr(s, 'type_name', '') or type(s).__name__})", s)
                               for i, s in enumerate(self.sinks)],
                              registries.stages if registries is not None else None)
        if errors:
            raise ConfigError(errors)
        self.runner: Runner | None = None
        self.stats: dict | None = None

    # ---- construction ----
    @classmethod
    def from_config(cls, cfg: "_config.PipelineConfig") -> "Pipeline":
        s = cfg.settings
        return cls(cfg.source.build(), [spec.build() for spec in cfg.stages], [spec.build() for spec in cfg.sinks],
                   device=s.device, queue_size=s.queue_size, drop_policy=s.drop_policy,
                   max_frames=cfg.max_frames, print_stats=s.stats, stage_threads=s.stage_threads,
                   cuda_streams=s.cuda_streams)

    @classmethod
    def from_yaml(cls, path, overrides: Sequence[str] = (), registries=None) -> "Pipeline":
        return cls.from_config(_config.load(path, overrides, registries))

    @classmethod
    def from_dict(cls, doc: dict, overrides: Sequence[str] = (), registries=None) -> "Pipeline":
        return cls.from_config(_config.from_dict(doc, overrides, registries))

    # ---- running ----
    def _runner(self, tap: bool) -> Runner:
        if self.runner is not None and self.runner.alive():
            raise RuntimeError("this pipeline is already running")
        self.runner = Runner(self.source, self.stages, self.sinks, tap=tap, **self.options)
        return self.runner

    def run(self, progress: Callable[[Runner], None] | None = None) -> dict:
        """Run to the end (or stop/error); returns the stats dict, raises StageError & co."""
        runner = self._runner(tap=False)
        try:
            self.stats = runner.run(progress)
        finally:
            self.stats = runner.result
        return self.stats

    def frames(self) -> Iterator[Frame]:
        """Run the chain and yield every frame that reached the end, after the sinks wrote it.
        Leaving the loop early stops the run and finalizes the sinks."""
        runner = self._runner(tap=True)
        runner.start()
        finished = False
        try:
            while True:
                item = runner.tap.get()
                if item is EOS or item is ABORT:
                    break
                yield item
            finished = True
        finally:
            if runner.result is None:  # not already finished by __exit__
                if not finished:
                    runner.stop()
                    _drain(runner)
                try:
                    runner.wait()
                finally:
                    self.stats = runner.result

    def stop(self) -> None:
        """Ask a running pipeline to end (thread-safe); run() then returns the stats."""
        if self.runner is not None:
            self.runner.stop()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        runner = self.runner
        if runner is not None and runner.result is None and runner._threads:
            runner.stop()
            if runner.tap is not None:
                _drain(runner)
            try:
                runner.wait()
            except Exception:  # noqa: BLE001 - an error while leaving a with-block after another one
                if exc[0] is None:
                    raise
            finally:
                self.stats = runner.result


def _drain(runner: Runner) -> None:
    """Throw away what waits on the caller's tap so that the sink thread can end."""
    while True:
        item = runner.tap.get(timeout=0.1)
        if item is EOS or item is ABORT or (item is TIMEOUT and not runner.alive()):
            return
