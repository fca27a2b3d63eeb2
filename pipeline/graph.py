"""The build-time graph check: every key a stage (or sink) reads must be written by a stage before
it ("image" is always there, written by the source). Runs on classes or instances, before the first
frame is decoded, so a tracker before a detector is a config error, not a crash on frame 0."""
from __future__ import annotations

from typing import Iterable

from .stage import FIELDS

ALWAYS = frozenset({"image"})


def _writers(key: str, registry) -> list[str]:
    """Registered stage types that write `key` (only computed for an error message)."""
    if registry is None:
        return []
    found = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except Exception:  # noqa: BLE001 - a broken module only loses a hint here
            continue
        if key in getattr(cls, "writes", ()):
            found.append(name)
    return found


def _hint(key: str, registry) -> str:
    names = _writers(key, registry)
    if not names:
        return ""
    return f" (add {' or '.join(f'a {n}' for n in names)} stage before it)"


def check_graph(stages: Iterable[tuple[str, object]], sinks: Iterable[tuple[str, object]] = (),
                registry=None) -> list[str]:
    """Error lines for unsatisfied reads. `stages` and `sinks` are (label, class or instance) pairs
    in chain order; labels look like ``stages[0] (track)``."""
    errors: list[str] = []
    written = set(ALWAYS)
    for label, comp in stages:
        for key in sorted(set(getattr(comp, "reads", ())) - written):
            errors.append(f"{label}: reads {key!r}, which no stage before it writes{_hint(key, registry)}")
        for key in sorted(set(getattr(comp, "reads", ())) | set(getattr(comp, "writes", ()))):
            if key not in FIELDS:
                errors.append(f"{label}: declares unknown field {key!r}; known: {', '.join(FIELDS)}")
        written |= set(getattr(comp, "writes", ()))
    for label, comp in sinks:
        for key in sorted(set(getattr(comp, "reads", ())) - written):
            errors.append(f"{label}: reads {key!r}, which no stage writes{_hint(key, registry)}")
    return errors
