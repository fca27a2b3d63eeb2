"""Result sinks. SINKS is the closed registry: `sinks[i].type` in YAML -> "module:Class"."""

SINKS: dict[str, str] = {
}
