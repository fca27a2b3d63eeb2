"""`--set a.b=c` overrides on a raw config document.

Paths: ``pipeline.queue_size=4``, ``source.uri=rtsp://cam/1``, ``stages.track.max_age=3`` (a stage
by its name, which defaults to its type), ``stages[2].max_age=3`` (by index), ``sinks.video.path=x``
or ``sinks[0].path=x`` (a sink by type or index). Values are parsed as YAML (``3`` is an int,
``true`` a bool, ``[1, 2]`` a list, ``null`` None); text that is not valid YAML stays a string.
"""
from __future__ import annotations

import copy
import re

import yaml

from .params import suggest

_PATH = re.compile(r"^[^.\[\]=\s]+(\.[^.\[\]=\s]+|\[\d+\])*$")
_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse_value(text: str):
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text


def _tokens(path: str) -> list[int | str]:
    return [int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _TOKEN.finditer(path)]


def _label(item) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return item.get("name") or item.get("type")
    return None


def _step(container, token, parent: str):
    """(child, container_after) following one token, or raise ValueError with a message."""
    if isinstance(container, list):
        if isinstance(token, int):
            if not 0 <= token < len(container):
                raise ValueError(f"index {token} out of range ({parent} has {len(container)} items)")
            return token
        labels = [_label(item) for item in container]
        if token not in labels:
            kind = "stage" if parent == "stages" else "item"
            known = ", ".join(str(x) for x in labels if x) or "none"
            raise ValueError(f"no {kind} named {token!r} in {parent}{suggest(token, [x for x in labels if x])}; "
                             f"{parent}: {known}")
        return labels.index(token)
    if isinstance(container, dict):
        if isinstance(token, int):
            raise ValueError(f"{parent} is a mapping, not a list")
        return token
    raise ValueError(f"{parent} is {container!r}, not a mapping or list")


def set_path(doc: dict, path: str, value) -> None:
    """Set `value` at `path` in `doc` (in place), creating missing mappings; ValueError on a bad path."""
    if not _PATH.match(path):
        raise ValueError("expected a dotted path like pipeline.queue_size or stages[2].max_age")
    tokens = _tokens(path)
    node, where = doc, ""
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        key = _step(node, token, where or "the config")
        if isinstance(node, list) and isinstance(token, str):
            item = node[key]
            if isinstance(item, str):  # a bare "- annotate" item
                node[key] = item = {"type": item}
        if last:
            node[key] = value
            return
        child = node[key] if not isinstance(node, dict) else node.get(key)
        if where == "" and token == "source" and isinstance(child, (str, int)) and not isinstance(child, bool):
            child = node[key] = {"uri": child}
        elif isinstance(node, list) and isinstance(child, str):
            child = node[key] = {"type": child}
        elif child is None:
            child = node[key] = {}
        node = child
        where = f"{where}[{token}]" if isinstance(token, int) else (f"{where}.{token}" if where else str(token))


def apply_overrides(doc: dict, overrides) -> tuple[dict, list[str]]:
    """A deep copy of `doc` with every ``KEY=VALUE`` applied, and the error lines for bad ones."""
    doc = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    errors: list[str] = []
    for line in overrides or ():
        key, sep, text = str(line).partition("=")
        if not sep or not key.strip():
            errors.append(f"--set {line}: expected KEY=VALUE, e.g. pipeline.queue_size=4")
            continue
        try:
            set_path(doc, key.strip(), parse_value(text))
        except ValueError as exc:
            errors.append(f"--set {line}: {exc}")
    return doc, errors
