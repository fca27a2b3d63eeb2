"""Closed registries keyed by `type:`. Each table is written in code (never a dotted path from
YAML) and maps a type name to "module:attribute"; modules are imported only when a config uses
them, so no heavy import (torch, onnx) happens for a pipeline that does not need it."""
from __future__ import annotations

import importlib

from .params import ConfigError, suggest


class Registry:
    def __init__(self, kind: str, table: dict[str, str]) -> None:
        self.kind = kind
        self.table = dict(table)

    def names(self) -> list[str]:
        return sorted(self.table)

    def check(self, name, path: str) -> str | None:
        """An error line for an unknown name, or None."""
        if not isinstance(name, str) or name not in self.table:
            return (f"{path}: unknown {self.kind} type {name!r}{suggest(name, self.table)}; "
                    f"known: {', '.join(self.names())}")
        return None

    def get(self, name: str):
        error = self.check(name, self.kind)
        if error:
            raise ConfigError(error)
        module, _, attr = self.table[name].partition(":")
        return getattr(importlib.import_module(module), attr)


def stage_registry() -> Registry:
    from stages import STAGES

    return Registry("stage", STAGES)


def source_registry() -> Registry:
    from .sources import SOURCES

    return Registry("source", SOURCES)


def sink_registry() -> Registry:
    from .sinks import SINKS

    return Registry("sink", SINKS)
