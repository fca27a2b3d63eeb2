"""Typed parameters: a dataclass per stage (or source, or sink), built from YAML with every error
collected and named by its path, e.g. ``stages[2].iou_threshold: expected 0 < x <= 1, got 1.5``.

Declare a field with `param()` to give it a range, a choice list and a one-line doc:

    @dataclass
    class TrackParams:
        iou_threshold: float = param(0.3, gt=0, le=1, doc="minimum IoU to match")
        algorithm: str = param("sort", choices=("sort", "bytetrack"))

Supported annotations: bool, int, float, str, Literal[...], X | None, list[X], tuple[X, ...],
tuple[X, Y], dict[str, X] and nested param dataclasses.

A param that names a file says so with `path=`: "file" (an existing, readable, non-empty file),
"dir" (an existing folder) or "output" (a file to write: its folder exists or can be created).
`file_errors(params, "stages[0]")` checks them all against the file system (`vidpipe validate`),
one line per problem: ``stages[0].model: file not found: models/yolox_nano.onnx``. Relative paths
are taken from the working directory, as every component opens them. A params class with its own
rules (optional files, download caches) defines `check_files(self) -> list[str]` instead, calling
`field_file_errors(self, skip=...)` for the rest; a line it returns as a `Note` is information,
not an error.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin


class ConfigError(Exception):
    """A user's mistake in a config: one or more lines, each naming its path. Exit code 2."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


PATH_KINDS = {"file": "file path", "dir": "folder path", "output": "output path"}


def param(default: Any = MISSING, *, ge=None, gt=None, le=None, lt=None, choices=None, doc: str = "",
          default_factory: Any = MISSING, path: str | None = None):
    """A dataclass field with validation metadata (ranges are inclusive for ge/le, exclusive gt/lt;
    `path`: one of PATH_KINDS when a string value names a file, see `file_errors`)."""
    if path is not None and path not in PATH_KINDS:
        raise ValueError(f"path: expected one of {', '.join(PATH_KINDS)}, got {path!r}")
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": tuple(choices) if choices else None, "doc": doc,
            "path": path}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


def suggest(name: str, known) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(tp) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _type_name(a) for a in get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _range_text(meta: dict) -> str | None:
    lo = f"{meta['ge']} <= " if meta.get("ge") is not None else f"{meta['gt']} < " if meta.get("gt") is not None else ""
    hi = f" <= {meta['le']}" if meta.get("le") is not None else f" < {meta['lt']}" if meta.get("lt") is not None else ""
    return f"{lo}x{hi}" if (lo or hi) else None


def _check_range(value, meta: dict) -> bool:
    return not ((meta.get("ge") is not None and value < meta["ge"]) or (meta.get("gt") is not None and value <= meta["gt"])
                or (meta.get("le") is not None and value > meta["le"]) or (meta.get("lt") is not None and value >= meta["lt"]))


def _convert(value, tp, path: str, errors: list[str], meta: dict | None = None):
    """Convert one YAML value to `tp`, appending an error (and returning None) on mismatch."""
    meta = meta or {}
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        for arg in non_none:
            trial: list[str] = []
            out = _convert(value, arg, path, trial, meta)
            if not trial:
                return out
        if len(non_none) == 1:
            return _convert(value, non_none[0], path, errors, meta)
        errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return None
    if origin is Literal:
        if value not in get_args(tp):
            errors.append(f"{path}: expected one of {', '.join(map(repr, get_args(tp)))}, got {value!r}{suggest(value, get_args(tp))}")
            return None
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path, errors)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            errors.append(f"{path}: expected a list ({_type_name(tp)}), got {value!r}")
            return None
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                errors.append(f"{path}: expected {len(args)} items, got {len(value)}")
                return None
            return tuple(_convert(v, a, f"{path}[{i}]", errors) for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {value!r}")
            return None
        val_tp = get_args(tp)[1] if get_args(tp) else Any
        return {str(k): _convert(v, val_tp, f"{path}.{k}", errors) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {value!r}")
            return None
        return value
    if tp in (int, float):
        ok = isinstance(value, int) and not isinstance(value, bool) if tp is int else \
            isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            errors.append(f"{path}: expected {'an integer' if tp is int else 'a number'}, got {value!r}")
            return None
        value = tp(value)
        if value != value or not _check_range(value, meta):  # NaN fails every range
            errors.append(f"{path}: expected {_range_text(meta) or 'a finite number'}, got {value!r}")
            return None
    elif tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
            return None
    if meta.get("choices") and value not in meta["choices"]:
        errors.append(f"{path}: expected one of {', '.join(map(repr, meta['choices']))}, got {value!r}{suggest(value, meta['choices'])}")
        return None
    return value


def build(cls, raw, path: str, errors: list[str]):
    """Build the params dataclass `cls` from a mapping; errors are appended, never raised."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a mapping of parameters, got {raw!r}")
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    prefix = f"{path}." if path else ""
    for key in raw:
        if key not in known:
            errors.append(f"{prefix}{key}: unknown key{suggest(key, known)}; known: {', '.join(known)}")
    values, n_before = {}, len(errors)
    for name, f in known.items():
        if name in raw:
            values[name] = _convert(raw[name], hints[name], f"{prefix}{name}", errors, dict(f.metadata))
        elif f.default is MISSING and f.default_factory is MISSING:
            errors.append(f"{prefix}{name}: required ({_type_name(hints[name])}) is missing")
    if len(errors) != n_before:
        return None
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        for message in check() or ():
            errors.append(f"{prefix}{message}")
    return obj


def build_or_raise(cls, raw, path: str = ""):
    errors: list[str] = []
    obj = build(cls, raw, path, errors)
    if errors:
        raise ConfigError(errors)
    return obj


def describe(cls) -> list[dict]:
    """Rows for the generated config reference: name, type, default, range/choices, doc."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in fields(cls):
        if not f.init:
            continue
        meta = dict(f.metadata)
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        if dataclasses.is_dataclass(default):
            default = dataclasses.asdict(default)
        limits = _range_text(meta) or (" | ".join(map(repr, meta["choices"])) if meta.get("choices") else "")
        kind = f" ({PATH_KINDS[meta['path']]})" if meta.get("path") else ""
        rows.append({"name": f.name, "type": _type_name(hints[f.name]) + kind, "default": default,
                     "limits": limits, "doc": meta.get("doc", "")})
    return rows


class Note(str):
    """A line of `check_files()` that informs (a file that the run will fetch) rather than fails."""


def _relative(value: str) -> str:
    return "" if os.path.isabs(value) else f" (relative to the working directory {os.getcwd()})"


def check_path(value: str, kind: str) -> str | None:
    """What is wrong with `value` as a path of `kind` (see PATH_KINDS), in one line, or None.
    Nothing is created or opened for writing."""
    if kind == "file":
        if not os.path.exists(value):
            return f"file not found: {value}{_relative(value)}"
        if os.path.isdir(value):
            return f"is a folder, expected a file: {value}"
        if not os.access(value, os.R_OK):
            return f"file not readable (permission denied): {value}"
        if os.path.isfile(value) and os.path.getsize(value) == 0:
            return f"empty file (0 bytes): {value}"
        return None
    if kind == "dir":
        if not os.path.exists(value):
            return f"folder not found: {value}{_relative(value)}"
        if not os.path.isdir(value):
            return f"not a folder: {value}"
        if not os.access(value, os.R_OK | os.X_OK):
            return f"folder not readable (permission denied): {value}"
        return None
    if kind == "output":
        if not value:
            return "output path is empty"
        if os.path.isdir(value):
            return f"is a folder, expected a file: {value}"
        if os.path.exists(value) and not os.access(value, os.W_OK):
            return f"file not writable (permission denied): {value}"
        folder = existing = os.path.dirname(os.path.abspath(value))
        while not os.path.exists(existing):  # the folders the run would create
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            return f"cannot create the output folder {folder}: {existing} is a file"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"output folder not writable (permission denied): {existing}"
        return None
    raise ValueError(f"kind: expected one of {', '.join(PATH_KINDS)}, got {kind!r}")


def field_file_errors(obj, skip=()) -> list[str]:
    """The generic check: every string param declared with `path=` (nested params too), except
    the names in `skip`; lines relative to `obj` (``model: file not found: ...``)."""
    lines: list[str] = []
    for f in fields(obj):
        if not f.init or f.name in skip:
            continue
        value, kind = getattr(obj, f.name), f.metadata.get("path")
        if kind and isinstance(value, str):
            problem = check_path(value, kind)
            if problem:
                lines.append(f"{f.name}: {problem}")
        elif dataclasses.is_dataclass(value):
            lines += file_errors(value, f.name)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    lines += file_errors(item, f"{f.name}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if dataclasses.is_dataclass(item):
                    lines += file_errors(item, f"{f.name}.{key}")
    return lines


def file_errors(obj, path: str = "") -> list[str]:
    """Every problem with the files that the built params `obj` name, each line prefixed by `path`
    (``stages[0].model: file not found: ...``); `Note` lines are kept as Notes. Uses the class's
    `check_files()` when it has one, else `field_file_errors`."""
    own = getattr(obj, "check_files", None)
    lines = list(own() or ()) if callable(own) else field_file_errors(obj)
    prefix = f"{path}." if path else ""
    return [(Note if isinstance(line, Note) else str)(f"{prefix}{line}") for line in lines]


@dataclass
class NoParams:
    """For components that take no parameters."""
