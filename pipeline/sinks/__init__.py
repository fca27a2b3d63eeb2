"""Result sinks. SINKS is the closed registry: `sinks[i].type` in YAML -> "module:Class"."""

SINKS: dict[str, str] = {
    "video": "pipeline.sinks.video:VideoSink",
    "jsonl": "pipeline.sinks.jsonl:JsonlSink",
    "mot": "pipeline.sinks.mot:MotSink",
}
