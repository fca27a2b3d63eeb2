"""The config reference, generated from the registries and the params dataclasses (never stale):
`vidpipe stages` prints it, `vidpipe stages --markdown -o docs/CONFIG.md` writes docs/CONFIG.md."""
from __future__ import annotations

import json
import sys

from .config import PipelineSettings, Registries, SourceCommon, StageCommon
from .params import describe
from .stage import FIELDS

MD_COMMAND = "vidpipe stages --markdown -o docs/CONFIG.md"

EXAMPLE = """\
source:                 # a uri string, or a mapping
  uri: sample_videos/street.mp4
  max_frames: null
pipeline:
  device: auto
  queue_size: 8
  drop_policy: auto
stages:                 # in chain order; each: type, optional name, then its params
  - type: annotate
sinks:
  - {type: video, path: out/annotated.mp4}
"""


def _doc(cls) -> str:
    """The class's own docstring (not inherited), else its module's, first paragraph on one line."""
    text = cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or ""
    return " ".join(text.strip().split("\n\n")[0].split())


def _default(value) -> str:
    if value == "(required)":
        return value
    try:
        return json.dumps(value)
    except TypeError:
        return str(value)


def _entries(registry) -> list[dict]:
    out = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except Exception as exc:  # noqa: BLE001 - listed as unavailable, not a crash
            out.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        out.append({"name": name, "doc": _doc(cls), "params": describe(cls.Params),
                    "reads": sorted(getattr(cls, "reads", ())), "writes": sorted(getattr(cls, "writes", ())),
                    "optional_reads": sorted(getattr(cls, "optional_reads", ()))})
    return out


def collect(registries: Registries | None = None) -> dict:
    regs = registries or Registries.default()
    return {"sources": _entries(regs.sources), "stages": _entries(regs.stages), "sinks": _entries(regs.sinks)}


def _io_line(entry: dict) -> str:
    parts = [f"{k.replace('_', ' ')}: {', '.join(entry[k])}" for k in ("reads", "optional_reads", "writes") if entry.get(k)]
    return "; ".join(parts)


# ---- plain text ----
def _text_params(rows: list[dict], indent: str = "    ") -> list[str]:
    lines = []
    for r in rows:
        limits = f" [{r['limits']}]" if r["limits"] else ""
        lines.append(f"{indent}{r['name']}: {r['type']} = {_default(r['default'])}{limits}")
        if r["doc"]:
            lines.append(f"{indent}    {r['doc']}")
    return lines


def render_text(ref: dict) -> str:
    lines = ["pipeline: (section)"] + _text_params(describe(PipelineSettings))
    for kind, common in (("sources", SourceCommon), ("stages", StageCommon), ("sinks", None)):
        lines += ["", f"{kind}:"]
        if common is not None:
            lines += ["  common keys:"] + _text_params(describe(common))
        for e in ref[kind]:
            if "error" in e:
                lines.append(f"  {e['name']}: (not available: {e['error']})")
                continue
            lines.append(f"  {e['name']}: {e['doc']}")
            if _io_line(e):
                lines.append(f"    ({_io_line(e)})")
            lines += _text_params(e["params"])
    return "\n".join(lines) + "\n"


# ---- markdown ----
def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict]) -> list[str]:
    if not rows:
        return ["(no parameters)", ""]
    lines = ["| key | type | default | limits | description |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| `{r['name']}` | {_cell(r['type'])} | `{_cell(_default(r['default']))}` | "
                     f"{_cell(r['limits'])} | {_cell(r['doc'])} |")
    return lines + [""]


def _md_entries(entries: list[dict]) -> list[str]:
    lines = []
    for e in entries:
        lines.append(f"### `{e['name']}`")
        lines.append("")
        if "error" in e:
            lines += [f"Not available here: {_cell(e['error'])}", ""]
            continue
        if e["doc"]:
            lines += [e["doc"], ""]
        if _io_line(e):
            lines += [f"*{_io_line(e)}*", ""]
        lines += _md_table(e["params"])
    return lines


def render_markdown(ref: dict) -> str:
    lines = ["# Configuration reference", "",
             f"Generated from the code by `{MD_COMMAND}`; do not edit by hand "
             "(a test fails when this file is stale).", "",
             "A config is a YAML file (read with `yaml.safe_load`) with four sections. Every error is reported "
             "with its path (`stages[2].iou_threshold: expected 0 < x <= 1, got 1.5`). Any key can be "
             "overridden on the command line: `--set pipeline.queue_size=4`, `--set stages.track.max_age=3` "
             "(a stage by name), `--set stages[2].max_age=3` (by index), `--set sinks.video.path=out/x.mp4`.", "",
             "```yaml", EXAMPLE.rstrip(), "```", "",
             "## `pipeline`", ""] + _md_table(describe(PipelineSettings))
    lines += ["## `source`", "", "A uri string, or a mapping of `type`, `uri`, `max_frames` and the source "
              "type's parameters.", ""] + _md_table(describe(SourceCommon)) + _md_entries(ref["sources"])
    lines += ["## `stages`", "", "A list, in chain order. Each item: `type`, an optional unique `name`, then the "
              "stage's parameters. The graph is checked before the first frame: every field a stage reads "
              "must be written by a stage before it.", ""] + _md_table(describe(StageCommon)) + _md_entries(ref["stages"])
    lines += ["## `sinks`", "", "A list; each item: `type` and the sink's parameters. Sinks run in the last "
              "thread, in this order.", ""] + _md_entries(ref["sinks"])
    lines += ["## Frame fields", "", "What `reads` and `writes` name.", "", "| field | meaning |", "| --- | --- |"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in FIELDS.items()]
    return "\n".join(lines) + "\n"
