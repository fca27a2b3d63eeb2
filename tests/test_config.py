"""Config loading and validation: malformed configs, table-driven, each with its expected message."""
from __future__ import annotations

import textwrap

import pytest

import fakes
from pipeline import config
from pipeline.config import PipelineSettings
from pipeline.overrides import apply_overrides, parse_value
from pipeline.params import ConfigError

GOOD = """\
source: {type: fake, count: 5}
pipeline: {queue_size: 4}
stages:
  - type: detect
  - type: track
  - {type: noop, name: slow, sleep: 0.0}
sinks:
  - {type: memory, path: out/x}
  - {type: mot}
"""

# (case id, YAML text or None for a missing file, --set overrides, expected substring of one error line)
BAD = [
    ("unknown stage", "source: x.mp4\nstages: [{type: trak}]", [],
     "stages[0].type: unknown stage type 'trak' (did you mean 'track'?); known: batch, detect"),
    ("wrong type", "source: x.mp4\npipeline: {queue_size: eight}", [],
     "pipeline.queue_size: expected an integer, got 'eight'"),
    ("negative queue size", "source: x.mp4\npipeline: {queue_size: -1}", [],
     "pipeline.queue_size: expected 1 <= x, got -1"),
    ("unknown stage key", "source: x.mp4\nstages: [{type: noop, iou_treshold: 0.3}]", [],
     "stages[0].iou_treshold: unknown key (did you mean 'iou_threshold'?)"),
    ("out of range", "source: x.mp4\nstages: [{type: noop}, {type: noop, name: b}, {type: noop, name: c, iou_threshold: 1.5}]",
     [], "stages[2].iou_threshold: expected 0 < x <= 1, got 1.5"),
    ("unknown section", "source: x.mp4\nstage: []", [], "stage: unknown section (did you mean 'stages'?)"),
    ("yaml syntax error", "source: x.mp4\nstages:\n  - {type: noop\n", [], "cfg.yaml:4:1: YAML syntax error"),
    ("python tag", "source: !!python/object/apply:os.system ['echo hacked']\n", [],
     "cfg.yaml:1:9: tag '!!python/object/apply:os.system' is not allowed"),
    ("missing file", None, [], "cfg.yaml: no such file"),
    ("graph order", "source: x.mp4\nstages: [{type: track}, {type: detect}]", [],
     "stages[0] (track): reads 'detections', which no stage before it writes (add a detect stage before it)"),
    ("sink reads", "source: x.mp4\nstages: [{type: detect}]\nsinks: [{type: mot}]", [],
     "sinks[0] (mot): reads 'tracks', which no stage writes (add a track stage before it)"),
    ("duplicate names", "source: x.mp4\nstages: [{type: noop}, {type: noop}]", [],
     "stages[1].name: duplicate stage name 'noop' (also stages[0])"),
    ("bad --set syntax", GOOD, ["pipeline.queue_size"], "--set pipeline.queue_size: expected KEY=VALUE"),
    ("--set unknown stage", GOOD, ["stages.slwo.sleep=1"],
     "--set stages.slwo.sleep=1: no stage named 'slwo' in stages (did you mean 'slow'?)"),
    ("--set index out of range", GOOD, ["stages[7].sleep=1"],
     "--set stages[7].sleep=1: index 7 out of range (stages has 3 items)"),
    ("--set wrong type", GOOD, ["pipeline.queue_size=abc"], "pipeline.queue_size: expected an integer, got 'abc'"),
    ("--set bad path", GOOD, ["stages..x=1"], "--set stages..x=1: expected a dotted path"),
    ("choice typo", "source: x.mp4\npipeline: {drop_policy: drop_oldset}", [],
     "pipeline.drop_policy: expected one of 'auto', 'block', 'drop_oldest', got 'drop_oldset' (did you mean 'drop_oldest'?)"),
    ("bad device", "source: x.mp4\npipeline: {device: gpu}", [],
     "pipeline.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("missing source", "stages: []", [], "source: required"),
    ("unknown source type", "source: {type: fak, uri: x}", [],
     "source.type: unknown source type 'fak' (did you mean 'fake'?)"),
    ("stages not a list", "source: x.mp4\nstages: {type: noop}", [], "stages: expected a list"),
    ("stage without type", "source: x.mp4\nstages: [{name: a}]", [], "stages[0].type: required"),
    ("empty file", "", [], "cfg.yaml: empty config"),
    ("not a mapping", "- a\n- b\n", [], "cfg.yaml: expected a mapping"),
    ("max_frames zero", "source: {uri: x.mp4, max_frames: 0}", [], "source.max_frames: expected 1 <= x, got 0"),
    ("max_frames and source key", "source: {type: fake, max_frames: -1, cuont: 2}", [], "source.cuont: unknown key"),
    ("bool for number", "source: x.mp4\nstages: [{type: noop, sleep: yes}]", [], "stages[0].sleep: expected a number, got True"),
    ("unknown sink", "source: x.mp4\nsinks: [{type: memroy}]", [], "sinks[0].type: unknown sink type 'memroy' (did you mean 'memory'?)"),
    ("unknown source key", "source: {type: fake, uri: x, cuont: 3}", [], "source.cuont: unknown key (did you mean 'count'?)"),
]


def _load(tmp_path, text, overrides=()):
    path = tmp_path / "cfg.yaml"
    if text is not None:
        path.write_text(text)
    return config.load(path, overrides, registries=fakes.registries())


@pytest.mark.parametrize("text, overrides, expected", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_malformed_config_names_its_path(tmp_path, text, overrides, expected):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, overrides)
    errors = info.value.errors
    assert all("\n" not in line for line in errors), errors
    assert any(expected in line for line in errors), f"{expected!r} not in {errors}"


def test_every_error_is_collected(tmp_path):
    text = textwrap.dedent("""\
        source: {type: fake, count: -3}
        pipeline: {queue_size: 0, drop_policy: never}
        stages: [{type: noop, sleep: -1}, {type: nope}]
        sinks: [{type: memory, colour: red}]
        """)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, ["stages.ghost.x=1"])
    prefixes = [line.split(":")[0] for line in info.value.errors]
    assert prefixes == ["--set stages.ghost.x=1", "source.count", "pipeline.queue_size", "pipeline.drop_policy",
                        "stages[0].sleep", "stages[1].type", "sinks[0].colour"]


def test_good_config_builds_specs(tmp_path):
    cfg = _load(tmp_path, GOOD)
    assert cfg.settings == PipelineSettings(queue_size=4)
    assert [s.name for s in cfg.stages] == ["detect", "track", "slow"]
    assert cfg.source.params.count == 5 and cfg.max_frames is None
    assert [s.type for s in cfg.sinks] == ["memory", "mot"]
    stage = cfg.stages[2].build()
    assert isinstance(stage, fakes.NoopStage) and stage.name == "slow"


@pytest.mark.parametrize("overrides, check", [
    (["pipeline.queue_size=3"], lambda c: c.settings.queue_size == 3),
    (["stages.slow.sleep=0.5"], lambda c: c.stages[2].params.sleep == 0.5),
    (["stages[2].sleep=0.25"], lambda c: c.stages[2].params.sleep == 0.25),
    (["stages.detect.iou_threshold=0.75"], lambda c: c.stages[0].params.iou_threshold == 0.75),
    (["sinks.memory.path=out/y", "sinks[1].path=z"], lambda c: (c.sinks[0].params.path, c.sinks[1].params.path) == ("out/y", "z")),
    (["source.max_frames=7", "source.count=9"], lambda c: (c.max_frames, c.source.params.count) == (7, 9)),
    (["pipeline.stats=false", "pipeline.device=cuda:1"], lambda c: not c.settings.stats and c.settings.device == "cuda:1"),
    (["stages.slow.fail_at=null"], lambda c: c.stages[2].params.fail_at is None),
])
def test_overrides_apply(tmp_path, overrides, check):
    assert check(_load(tmp_path, GOOD, overrides))


def test_override_on_string_source_and_missing_section():
    doc, errors = apply_overrides({"source": "a.mp4", "stages": ["noop"]},
                                  ["source.max_frames=3", "pipeline.queue_size=2", "stages.noop.sleep=1"])
    assert errors == []
    assert doc == {"source": {"uri": "a.mp4", "max_frames": 3}, "pipeline": {"queue_size": 2},
                   "stages": [{"type": "noop", "sleep": 1}]}


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("true", True), ("null", None), ("", None),
                                         ("[1, 2]", [1, 2]), ("rtsp://u:p@cam/1", "rtsp://u:p@cam/1"),
                                         ("{a: [", "{a: [")])
def test_override_values_parse_as_yaml(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("uri, kind", [("clip.mp4", "file"), ("rtsp://cam/1", "rtsp"), ("0", "webcam"), (0, "webcam"),
                                       ("/dev/video2", "webcam"), ("lavfi:testsrc", "lavfi"), (".", "folder")])
def test_source_type_inferred_from_uri(uri, kind):
    from pipeline.sources import infer_type

    assert infer_type(uri) == kind


def test_source_type_inference_in_config(tmp_path):
    (tmp_path / "frames").mkdir()
    cfg = config.from_dict({"source": str(tmp_path / "frames")}, registries=fakes.registries())
    assert cfg.source.type == "folder" and cfg.source.params.uri == str(tmp_path / "frames")


def test_real_registries_every_stage_declares_known_fields():
    """Every registered stage that imports declares only FIELDS keys and has a Params dataclass."""
    from pipeline.config import Registries
    from pipeline.reference import collect

    ref = collect(Registries.default())
    from pipeline.stage import FIELDS

    for entry in ref["stages"] + ref["sinks"]:
        if "error" in entry:
            continue
        assert set(entry["reads"]) | set(entry["writes"]) | set(entry["optional_reads"]) <= set(FIELDS), entry["name"]


# (case id, sinks, expected error substring or None): a sink must not overwrite the input video or
# another sink's file (`--output` pointed at the source silently destroyed the input).
OUTPUT_CLASHES = [
    ("output is the input", [{"type": "video", "path": "{d}/clip.mp4"}],
     "sinks[0].path: {d}/clip.mp4 is the input video (source.uri)"),
    ("same file by another spelling", [{"type": "video", "path": "{d}/sub/../clip.mp4"}], "is the input video"),
    ("two sinks, one file", [{"type": "video", "path": "{d}/a.mp4"}, {"type": "jsonl", "path": "{d}/a.mp4"}],
     "sinks[1].path: {d}/a.mp4 is also written by sinks[0]"),
    ("distinct files", [{"type": "video", "path": "{d}/a.mp4"}, {"type": "jsonl", "path": "{d}/a.jsonl"}], None),
]


@pytest.mark.parametrize("sinks, expected", [c[1:] for c in OUTPUT_CLASHES], ids=[c[0] for c in OUTPUT_CLASHES])
def test_sink_cannot_overwrite_input_or_another_sink(tmp_path, sinks, expected):
    d = str(tmp_path)
    doc = {"source": f"{d}/clip.mp4", "sinks": [{**s, "path": s["path"].format(d=d)} for s in sinks]}
    if expected is None:
        assert len(config.from_dict(doc).sinks) == len(sinks)
        return
    with pytest.raises(ConfigError) as info:
        config.from_dict(doc)
    assert any(expected.format(d=d) in line for line in info.value.errors), info.value.errors
