"""`vidpipe`: run, validate and list pipelines; dispatch evaluation, training and generation.

Exit codes: 0 ok, 1 a run-time error (one line), 2 a config or command-line mistake (every line,
no traceback), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM; stops like Ctrl-C). Set VIDPIPE_TRACEBACK=1 to see tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from pathlib import Path

from .errors import ConfigError, PipelineError
from .params import suggest

# Commands that live with their area: a module exposing configure(parser) and run(args) -> int.
EXTERNAL = {
    "eval": {"mot": "stages.tracking.evaluate", "flow": "stages.opticalflow.evaluate",
             "planar": "stages.planar.evaluate", "activity": "stages.activities.evaluate",
             "placement": "stages.compositing.evaluate"},
    "train": {"activity": "stages.activities.train"},
    "generate": {"": "scenes.cli"},
    "bench": {"": "pipeline.bench"},
}
HELP = {"eval": "score a component against ground truth", "train": "train a model",
        "generate": "generate sample videos with exact ground truth",
        "bench": "run a config for N frames: throughput, latency, per-stage time, the bound"}

log = logging.getLogger("vidpipe")


class _Once(logging.Filter):
    """Lets each distinct warning through once per run."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def setup_logging(quiet: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vidpipe: %(levelname)s: %(message)s"))
    handler.addFilter(_Once())
    for name in ("vidpipe", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.getLogger("vidpipe").setLevel(logging.WARNING if quiet else logging.INFO)
    logging.captureWarnings(True)


def _error(line: str) -> None:
    print(f"error: {' '.join(str(line).split())}", file=sys.stderr)


def module_main(prog: str, doc: str, configure, run, argv=None) -> int:
    """`python -m <module>` for a command that lives with its area (configure(parser), run(args)),
    with the same one-line errors and exit codes as `vidpipe`."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0],
                                     formatter_class=_DefaultsFormatter)
    configure(parser)
    args = parser.parse_args(argv)
    return guard(lambda: run(args))


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager's stop, `docker stop`, `kill`): the same orderly stop as Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into Terminated in the main thread (where signal handlers run), unless someone
    else (an embedding application) already handles it."""
    import signal

    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def guard(fn) -> int:
    """Run `fn` and map the user-facing errors to one-line messages and exit codes."""
    try:
        return int(fn() or 0)
    except ConfigError as exc:
        if os.environ.get("VIDPIPE_TRACEBACK"):
            raise
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        if os.environ.get("VIDPIPE_TRACEBACK"):
            raise
        _error(exc)
        return 1
    except Terminated:
        print("vidpipe: terminated (SIGTERM); the outputs hold every frame processed so far", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("vidpipe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vidpipe eval mot ... | head`: the reader left; no traceback
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor one at exit's flush
        except (OSError, ValueError):
            pass
        return 1
    except OSError as exc:  # a path named on the command line that cannot be read or written
        if os.environ.get("VIDPIPE_TRACEBACK"):
            raise
        _error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc)
        return 1


# ---- run / validate ----
def _cli_edits(args):
    """Apply --source/--output/--max-frames/--device to the raw document; returns error lines."""
    from .overrides import set_path
    from .sources import infer_type

    def edit(doc: dict) -> list[str]:
        errors = []
        if getattr(args, "source", None):
            old = doc.get("source")
            if isinstance(old, dict) and (old.get("type") or (infer_type(old["uri"]) if old.get("uri") is not None
                                                                else None)) == infer_type(args.source):
                doc["source"] = {**old, "uri": args.source}
            else:
                keep = {"max_frames": old["max_frames"]} if isinstance(old, dict) and "max_frames" in old else {}
                doc["source"] = {"uri": args.source, **keep}
        if getattr(args, "output", None):
            sinks = doc.setdefault("sinks", [])
            if sinks is None:
                sinks = doc["sinks"] = []
            if isinstance(sinks, list):
                video = [s for s in sinks if isinstance(s, dict) and s.get("type") == "video"]
                if video:
                    video[0]["path"] = args.output
                else:
                    sinks.append({"type": "video", "path": args.output})
        for flag, path in (("max_frames", "source.max_frames"), ("device", "pipeline.device")):
            value = getattr(args, flag, None)
            if value is not None:
                try:
                    set_path(doc, path, value)
                except ValueError as exc:
                    errors.append(f"--{flag.replace('_', '-')}: {exc}")
        return errors

    return edit


# The files checked before anything is opened (params declared with `param(path=...)`, relative to
# the working directory). validate: all of them. run: the stages' (model weights, assets), every
# problem at once and before the source is opened; the source's and the sinks' paths keep their
# own one-line errors at open (exit 1), raised before any output is written.
VALIDATE_FILES = ("source", "stages", "sinks")
RUN_FILES = ("stages",)


def _load(args, files=()):
    from . import config

    return config.load(args.config, args.set or (), edit=_cli_edits(args), files=files)


class _Progress:
    """A tqdm bar on the main thread: frames, fps, ETA (from the source's frame count)."""

    def __init__(self, enabled: bool, max_frames: int | None) -> None:
        self.enabled, self.max_frames, self.bar, self.done = enabled, max_frames, None, 0

    def __call__(self, runner) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            info = runner.info
            total = None if info is None or info.live else info.frame_count
            if self.max_frames is not None:
                total = min(total, self.max_frames) if total else self.max_frames
            self.bar = tqdm(total=total, unit="frame", desc="vidpipe", dynamic_ncols=True, leave=False,
                            file=sys.stderr)
        written = runner.stats.frames_written
        self.bar.update(written - self.done)
        self.done = written

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_run(args) -> int:
    from .api import Pipeline
    from .stats import format_table

    cfg = _load(args, RUN_FILES)
    pipe = Pipeline.from_config(cfg)
    progress = _Progress(not args.quiet and sys.stderr.isatty(), cfg.max_frames)
    try:
        pipe.run(progress)
    except KeyboardInterrupt:
        progress.close()
        if pipe.stats and cfg.settings.stats and not args.quiet:
            print(format_table(pipe.stats))  # what was done before Ctrl-C; the outputs are finalized
        raise
    finally:
        progress.close()
    if cfg.settings.stats and not args.quiet:
        print(format_table(pipe.stats))
    return 0


def cmd_validate(args) -> int:
    cfg = _load(args, VALIDATE_FILES)
    chain = " -> ".join([cfg.source.type] + [s.name for s in cfg.stages] + ["[" + ", ".join(s.type for s in cfg.sinks) + "]"])
    print(f"OK: {args.config}: {chain}")
    for note in cfg.notes:
        print(f"note: {note}")
    return 0


def cmd_stages(args) -> int:
    from .reference import collect, render_markdown, render_text

    text = (render_markdown if args.markdown else render_text)(collect())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Area commands' --help: every option with a help text and a default says it."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or action.default == [] \
                or action.nargs == 0:
            return text
        return super()._get_help_string(action)


# ---- external commands ----
def run_module(prog: str, module: str, argv: list[str]) -> int:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        _error(f"{prog}: not available ({exc})")
        return 1
    doc = (mod.__doc__ or "").strip().split("\n\n")[0]
    parser = argparse.ArgumentParser(prog=prog, description=doc or None,
                                     formatter_class=_DefaultsFormatter)
    mod.configure(parser)
    args = parser.parse_args(argv)
    return guard(lambda: mod.run(args))


def _external(group: str, argv: list[str]) -> int:
    table = EXTERNAL[group]
    if "" in table:
        return run_module(f"vidpipe {group}", table[""], argv)
    known = ", ".join(sorted(table))
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: vidpipe {group} {{{','.join(sorted(table))}}} [options]\n{HELP[group]}; "
              f"`vidpipe {group} NAME --help` for a command's options")
        return 0 if argv else 2
    if argv[0] not in table:
        _error(f"vidpipe {group}: unknown command {argv[0]!r}{suggest(argv[0], table)}; known: {known}")
        return 2
    return run_module(f"vidpipe {group} {argv[0]}", table[argv[0]], argv[1:])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vidpipe")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidpipe", description="Real-time video analytics pipelines composed from YAML.")
    parser.add_argument("--version", action="version", version=f"vidpipe {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def config_args(p) -> None:
        p.add_argument("config", help="pipeline YAML file")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                       help="override a config value, e.g. stages.track.max_age=3 (repeatable)")
        p.add_argument("--source", metavar="URI", help="video file, image folder, stream uri or camera index")
        p.add_argument("--output", metavar="PATH", help="path of the first video sink (added if none)")
        p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
        p.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N")

    p = sub.add_parser("run", help="run a pipeline")
    config_args(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no stats table")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("validate", help="check a config and the files it names; print OK or every error")
    config_args(p)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("stages", help="list every stage, source and sink with its params (the config reference)")
    p.add_argument("--markdown", action="store_true", help="Markdown (as in docs/CONFIG.md)")
    p.add_argument("-o", "--out", metavar="PATH", help="write to a file instead of stdout")
    p.set_defaults(func=cmd_stages)
    for group, table in EXTERNAL.items():
        names = ", ".join(sorted(n for n in table if n))
        sub.add_parser(group, help=HELP[group] + (f" ({names})" if names else ""), add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging(quiet="--quiet" in argv or "-q" in argv)
    if argv and argv[0] in EXTERNAL:
        return _external(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    return guard(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
