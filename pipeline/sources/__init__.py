"""Frame sources. SOURCES is the closed registry: `source.type` in YAML -> "module:Class"."""

SOURCES: dict[str, str] = {
}
