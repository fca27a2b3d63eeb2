"""Config: YAML (``yaml.safe_load`` only) -> a validated `PipelineConfig`, every error collected
and named by its path (``stages[2].iou_threshold: expected 0 < x <= 1, got 1.5``).

Document sections: ``source`` (a uri string or a mapping: type, uri, max_frames, source params),
``pipeline`` (`PipelineSettings`), ``stages`` (list: type, optional unique name, stage params flat)
and ``sinks`` (list: type, sink params). `--set` overrides are applied to the raw document first
(`pipeline.overrides`), so their mistakes are reported with the rest. With `files=` the files that
the named sections' params declare (`param(path=...)`: inputs, model weights, assets, outputs' folders)
are checked against the file system too, relative to the working directory (`params.file_errors`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .graph import check_graph
from .overrides import apply_overrides
from .params import ConfigError, Note, build, file_errors, param, suggest
from .registry import Registry, sink_registry, source_registry, stage_registry

SECTIONS = ("source", "pipeline", "stages", "sinks")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


@dataclass
class PipelineSettings:
    """The `pipeline:` section."""

    device: str = param("auto", doc="auto | cpu | cuda | cuda:N (auto: cuda when available, else cpu)")
    queue_size: int = param(8, ge=1, doc="capacity of every queue between two threads, in frames")
    drop_policy: str = param("auto", choices=("auto", "block", "drop_oldest"),
                             doc="full queue: block (lossless) or drop_oldest (counted); auto: block for files, "
                                 "drop_oldest for live sources")
    stats: bool = param(True, doc="print the stats table at the end of a CLI run")
    stage_threads: int = param(1, ge=0, doc="torch intra-op threads of each stage's thread (0: torch's default, "
                               "all cores per stage; 1: the stages' own threads are the parallelism)")
    cuda_streams: bool = param(True, doc="on CUDA, a stream per stage thread: stages' kernels overlap and a stage's "
                               "host sync waits for its own work only (false: one shared stream)")

    def validate(self) -> list[str]:
        if not _DEVICE.match(self.device):
            return [f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}"]
        return []


@dataclass
class SourceCommon:
    """Keys of `source:` handled by the engine for every source type."""

    type: str | None = param(None, doc="source type; inferred from uri when omitted (rtsp://, a folder, "
                                       "/dev/videoN or a camera index, lavfi:..., else a file)")
    max_frames: int | None = param(None, ge=1, doc="stop after this many frames (null: all)")


@dataclass
class StageCommon:
    """Keys of every `stages[i]` item besides the stage's own params."""

    type: str = param(doc="stage type (see the list below)")
    name: str | None = param(None, doc="unique name, used by --set stages.NAME.key=value; defaults to type")
    process: bool = param(False, doc="run the stage in its own worker process (CPU pipelines): a GIL of its own "
                          "for a Python-heavy stage; frames cross a pipe (see pipeline.isolation)")


@dataclass
class Registries:
    """The closed tables a config is checked against (injectable for tests and embedding)."""

    stages: Registry
    sources: Registry
    sinks: Registry

    @classmethod
    def default(cls) -> "Registries":
        return cls(stage_registry(), source_registry(), sink_registry())


@dataclass
class ComponentSpec:
    """One validated source, stage or sink: its class, built params and where it came from."""

    type: str
    cls: type
    params: Any
    path: str            # "source", "stages[2]", "sinks[0]"
    name: str = ""
    process: bool = False  # stages: in a worker process (pipeline.isolation)

    def build(self):
        if self.path.startswith("stages"):
            if self.process:
                from .isolation import ProcessStage

                return ProcessStage(self.cls, self.params, name=self.name)
            return self.cls(self.params, name=self.name)
        return self.cls(self.params)


@dataclass
class PipelineConfig:
    source: ComponentSpec
    settings: PipelineSettings
    stages: list[ComponentSpec] = field(default_factory=list)
    sinks: list[ComponentSpec] = field(default_factory=list)
    max_frames: int | None = None
    origin: str = "<dict>"
    notes: list[str] = field(default_factory=list)   # from the file checks: not errors (a model to fetch)


def _line_of(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def load_yaml(path) -> dict:
    """Read a config file with yaml.safe_load; every failure is a one-line ConfigError naming the file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, expected a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        found = re.search(r"'([^']+)'", str(getattr(exc, "problem", "")))
        tag = found.group(1).replace("tag:yaml.org,2002:", "!!") if found else "?"
        raise ConfigError(f"{p}{_line_of(exc)}: tag {tag!r} is not allowed (plain YAML only, safe_load)") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}{_line_of(exc)}: YAML syntax error: {problem}") from None
    if doc is None:
        raise ConfigError(f"{p}: empty config (expected a mapping with source, pipeline, stages, sinks)")
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: expected a mapping with source, pipeline, stages, sinks; got {type(doc).__name__}")
    return doc


def _resolve(registry: Registry, name, path: str, errors: list[str]):
    """The class registered as `name`, or None with an error line."""
    error = registry.check(name, path)
    if error:
        errors.append(error)
        return None
    try:
        return registry.get(name)
    except Exception as exc:  # a broken or missing module is reported, not raised
        errors.append(f"{path}: {registry.kind} {name!r} could not be loaded: {type(exc).__name__}: {exc}")
        return None


def _infer_type(uri) -> str:
    from .sources import infer_type

    return infer_type(uri)


def _source(raw, reg: Registry, errors: list[str]) -> tuple[ComponentSpec | None, int | None]:
    if raw is None:
        errors.append("source: required (a video file, image folder, stream uri or camera index)")
        return None, None
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = {"uri": raw}
    if not isinstance(raw, dict):
        errors.append(f"source: expected a uri or a mapping, got {raw!r}")
        return None, None
    raw = dict(raw)
    given = {k: raw.pop(k) for k in ("type", "max_frames") if k in raw}
    common = build(SourceCommon, given, "source", errors)
    if isinstance(raw.get("uri"), int) and not isinstance(raw.get("uri"), bool):
        raw["uri"] = str(raw["uri"])  # a camera index
    kind = given.get("type")
    if kind is not None and not isinstance(kind, str):
        return None, None  # reported by SourceCommon
    if kind is None:
        if raw.get("uri") is None:
            errors.append("source.uri: required (or give source.type)")
            return None, None
        kind = _infer_type(raw["uri"])
    cls = _resolve(reg, kind, "source.type", errors)
    if cls is None:
        return None, None
    params = build(cls.Params, raw, "source", errors)
    max_frames = common.max_frames if common is not None else None
    return ComponentSpec(kind, cls, params, "source", kind), max_frames


def _items(raw, section: str, errors: list[str]) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{section}: expected a list of {{type: ...}} items, got {type(raw).__name__}")
        return []
    return raw


def _component(item, path: str, reg: Registry, errors: list[str], named: bool) -> ComponentSpec | None:
    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        errors.append(f"{path}: expected a mapping with a type, got {item!r}")
        return None
    item = dict(item)
    if "type" not in item:
        errors.append(f"{path}.type: required; known: {', '.join(reg.names())}")
        return None
    kind = item.pop("type")
    name = item.pop("name", None) if named else None
    if name is not None and not isinstance(name, str):
        errors.append(f"{path}.name: expected a string, got {name!r}")
        name = None
    process = item.pop("process", False) if named else False
    if not isinstance(process, bool):
        errors.append(f"{path}.process: expected true or false, got {process!r}")
        process = False
    cls = _resolve(reg, kind, f"{path}.type", errors)
    if cls is None:
        return None
    params = build(cls.Params, item, path, errors)
    return ComponentSpec(kind, cls, params, path, name or kind, process)


def _output_clashes(source: ComponentSpec | None, sinks: list) -> list[str]:
    """A sink that would overwrite the input video, or two sinks writing the same file."""
    def real(p) -> str:
        return os.path.realpath(os.path.expanduser(str(p)))

    errors, seen = [], {}
    uri = getattr(source.params, "uri", None) if source is not None and source.type == "file" else None
    for spec in sinks:
        path = getattr(spec.params, "path", None) if spec is not None else None
        if not isinstance(path, str) or not path:
            continue
        if isinstance(uri, str) and real(path) == real(uri):
            errors.append(f"{spec.path}.path: {path} is the input video (source.uri); writing it would destroy "
                          f"the input: choose another output path")
        elif real(path) in seen:
            errors.append(f"{spec.path}.path: {path} is also written by {seen[real(path)]}; give each sink its own file")
        seen.setdefault(real(path), spec.path)
    return errors


def _file_problems(specs: list, sections, errors: list[str]) -> list[str]:
    """`params.file_errors` of every built spec in `sections` ("source", "stages", "sinks"), less
    the keys already reported (a params' own validate() may have found the same missing file)."""
    lines = []
    for spec in specs:
        if spec is None or spec.params is None or not spec.path.startswith(tuple(sections)):
            continue
        for line in file_errors(spec.params, spec.path):
            key = line.split(": ", 1)[0] + ": "
            if not any(e.startswith(key) for e in errors):
                lines.append(line)
    return lines


def validate(doc: dict, registries: Registries | None = None, origin: str = "<dict>",
             errors: list[str] | None = None, files=()) -> PipelineConfig:
    """Check a whole document and build its specs; raises ConfigError listing every problem
    (after any `errors` already found, e.g. by the overrides). `files`: the sections ("source",
    "stages", "sinks") whose params' files are checked as well (none by default)."""
    regs = registries or Registries.default()
    errors = list(errors or ())
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin}: expected a mapping with {', '.join(SECTIONS)}")
    for key in doc:
        if key not in SECTIONS:
            errors.append(f"{key}: unknown section{suggest(key, SECTIONS)}; known: {', '.join(SECTIONS)}")
    source, max_frames = _source(doc.get("source"), regs.sources, errors)
    settings = build(PipelineSettings, doc.get("pipeline"), "pipeline", errors)
    raw_settings = doc.get("pipeline")
    if settings is None and isinstance(raw_settings, dict) and isinstance(raw_settings.get("device"), str):
        errors += [f"pipeline.{e}" for e in PipelineSettings(device=raw_settings["device"]).validate()]
    stages = [_component(item, f"stages[{i}]", regs.stages, errors, named=True)
              for i, item in enumerate(_items(doc.get("stages"), "stages", errors))]
    sinks = [_component(item, f"sinks[{i}]", regs.sinks, errors, named=False)
             for i, item in enumerate(_items(doc.get("sinks"), "sinks", errors))]
    seen: dict[str, str] = {}
    for spec in stages:
        if spec is None:
            continue
        if spec.name in seen:
            errors.append(f"{spec.path}.name: duplicate stage name {spec.name!r} (also {seen[spec.name]}); "
                          f"give one of them a distinct `name:`")
        seen.setdefault(spec.name, spec.path)
    errors.extend(_output_clashes(source, sinks))
    found = _file_problems([source] + stages + sinks, files, errors) if files else []
    errors.extend(line for line in found if not isinstance(line, Note))
    if all(s is not None for s in stages + sinks):
        errors.extend(check_graph([(f"{s.path} ({s.name})", s.cls) for s in stages],
                                  [(f"{s.path} ({s.type})", s.cls) for s in sinks], regs.stages))
    if errors:
        raise ConfigError(errors)
    return PipelineConfig(source, settings, stages, sinks, max_frames, origin,
                          [line for line in found if isinstance(line, Note)])


def load(path, overrides=(), registries: Registries | None = None, edit=None, files=()) -> PipelineConfig:
    """Read, edit (a callable on the raw dict: the CLI's --source/--output flags), override
    (`--set` lines, applied last so that they refine what the flags chose) and validate
    (`files`: the sections whose files are checked too, see `validate`)."""
    doc, errors = load_yaml(path), []
    if edit is not None:
        errors += edit(doc) or []
    doc, set_errors = apply_overrides(doc, overrides)
    return validate(doc, registries, str(path), errors + set_errors, files)


def from_dict(doc: dict, overrides=(), registries: Registries | None = None) -> PipelineConfig:
    doc, errors = apply_overrides(doc, overrides)
    return validate(doc, registries, "<dict>", errors)
