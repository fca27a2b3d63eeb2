"""`vidpipe eval activity` / `train activity` with --config: the config's own stages, in its order,
with its params (process: ignored), truth boxes with --detector gt, the activity stage's params
from the config refined by --classifier/--weights/--set, one-line errors (exit 2), and the
built-in chain unchanged without --config."""
import json

import numpy as np
import pytest

from conftest import ROOT
from stages.activities import evaluate as ev
from stages.activities import train as tr
from stages.activities.dataset import GroundTruthBoxes, SceneSpec, build_stages, load_chain

DEMO_LIKE = """
source: street.mp4
stages:
  - {type: background, shadows: false, max_width: 320, process: true}
  - {type: motion, split_ratio: 0.3}
  - {type: track, max_age: 7, min_hits: 2, split: true}
  - {type: flow, max_width: 160, process: true}
  - {type: activity, classifier: rules, hysteresis_k: 4, rules: {walk_speed: 0.4}, process: true}
  - {type: events, lines: [{name: c, p1: [0, 0], p2: [10, 10]}]}
  - annotate
sinks:
  - {type: jsonl, path: out.jsonl}
"""

# The built-in --detector motion chain (stage defaults) spelled out as a config; with --detector gt
# the truth boxes replace background and motion.
PLAIN = "stages:\n  - background\n  - motion\n  - track\n  - flow\n  - {type: activity, hysteresis_k: 4}\n"


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text if text.lstrip().startswith("source") else "source: x.mp4\n" + text)
    return path


def kinds(chain):
    return [type(st).__name__ if isinstance(st, GroundTruthBoxes) else st.type_name for st in chain]


def test_config_chain_types_order_and_params(tmp_path):
    chain = load_chain(write(tmp_path, DEMO_LIKE))
    stages = build_stages("config", chain.activity, chain=chain)
    assert kinds(stages) == ["background", "motion", "track", "flow", "activity"]
    bg, motion, track, flow, act = stages
    assert (bg.params.shadows, bg.params.max_width) == (False, 320)
    assert motion.params.split_ratio == 0.3
    assert (track.params.max_age, track.params.min_hits, track.params.split) == (7, 2, True)
    assert flow.params.max_width == 160
    assert (act.params.hysteresis_k, act.params.rules.walk_speed) == (4, 0.4)
    assert chain.boxes == "background+motion"
    # truth boxes in place of the box stages, the config's track/flow/activity kept
    gt = build_stages("gt", chain.activity, seed=3, chain=chain)
    assert kinds(gt) == ["GroundTruthBoxes", "track", "flow", "activity"]
    assert gt[1].params.max_age == 7 and gt[2].params.max_width == 160


def test_overrides_refine_the_configs_activity_stage(tmp_path):
    weights = ROOT / "stages" / "activities" / "activity_tcn.pt"
    if not weights.is_file():
        pytest.skip("stages/activities/activity_tcn.pt not present")
    path = write(tmp_path, DEMO_LIKE)
    chain, params = ev.config_chain(path, "temporal", str(weights), ["hysteresis_margin=0.5", "rules.run_speed=2"])
    assert (params.classifier, params.weights) == ("temporal", str(weights))
    assert (params.hysteresis_k, params.hysteresis_margin, params.rules.run_speed) == (4, 0.5, 2)
    assert build_stages("config", params, chain=chain)[-1].params is params
    # no activity stage in the config: the defaults with the flags, appended after flow
    chain, params = ev.config_chain(write(tmp_path, PLAIN.replace(
        "  - {type: activity, hysteresis_k: 4}\n", ""), "n.yaml"), None, None, ["hysteresis_k=9"])
    assert chain.activity is None and (params.classifier, params.hysteresis_k) == ("rules", 9)
    assert kinds(build_stages("config", params, chain=chain))[-2:] == ["flow", "activity"]
    # training takes the config's feature params, writing features, no model, no events
    fp = tr.feature_params(load_chain(path))
    assert (fp.hysteresis_k, fp.write_features, fp.events, fp.classifier, fp.weights) == (4, True, False, "rules", None)


def test_default_config_runs_in_thread_with_the_demo_params(monkeypatch):
    monkeypatch.chdir(ROOT)
    chain = load_chain("configs/default.yaml")
    stages = build_stages("config", chain.activity, chain=chain)
    assert kinds(stages) == ["background", "motion", "track", "flow", "activity"]
    assert all(type(st).__module__.startswith("stages.") for st in stages)   # no worker-process proxies
    assert stages[2].params.split and stages[-1].params.classifier == "temporal"


@pytest.mark.parametrize("yaml_text, argv, message", [
    ("stages:\n  - background\n  - motion\n  - {type: track, max_agee: 3}\n  - activity\n", [],
     "stages[2].max_agee: unknown key"),
    ("stages:\n  - motion\n  - track\n  - activity\n", [], "stages[0] (motion): reads 'mask'"),
    ("stages:\n  - background\n  - motion\n  - track\n  - {type: activity, classifier: temporal, weights: no.pt}\n",
     [], "stages[3].weights: file not found"),
    (PLAIN, ["--set", "hysteresis_kk=3"], "stages[4].hysteresis_kk: unknown key"),
    (PLAIN, ["--set", "hysteresis_k"], "expected KEY=VALUE"),
    (PLAIN, ["--detector", "yolox"], "--detector yolox: "),
    ("stages: [1, 2\n", [], "YAML syntax error"),
    (None, [], "no such file"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, capsys, yaml_text, argv, message):
    path = tmp_path / "missing.yaml" if yaml_text is None else write(tmp_path, yaml_text)
    rc = ev.main(["--config", str(path), "--seeds", "1000", "--frames", "2"] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert "Traceback" not in err
    if yaml_text is not None and not argv:   # the training command reads the same file the same way
        rc = tr.main(["--config", str(path), "--seeds", "1", "--frames", "2", "--out", str(tmp_path / "w.pt")])
        err = capsys.readouterr().err
        assert rc == 2 and message in err, err


def test_builtin_chains_unchanged_without_config():
    from stages.activity import ActivityParams
    from stages.background import BackgroundParams
    from stages.flow import FlowParams
    from stages.motion import MotionParams
    from stages.track import TrackParams

    params = ActivityParams()
    stages = build_stages("motion", params)
    assert kinds(stages) == ["background", "motion", "track", "flow", "activity"]
    assert [st.params for st in stages[:4]] == [BackgroundParams(), MotionParams(), TrackParams(), FlowParams()]
    assert stages[-1].params is params and ev.check_detector(None, None) == "gt"


@pytest.mark.parametrize("detector", ["motion", "gt"])
def test_config_spelling_out_the_builtin_chain_scores_the_same(tmp_path, detector):
    """A config with the built-in chain's stages and defaults gives the same numbers as no config."""
    spec = [SceneSpec(3, size=(640, 360) if detector == "motion" else (320, 180), n_frames=45)]
    chain, params = ev.config_chain(write(tmp_path, PLAIN), None, None, [])
    kw = {"min_age": 0.1, "settle": 0.1}
    with_config = ev.evaluate(spec, params, "gt" if detector == "gt" else "config", chain=chain, **kw)
    without = ev.evaluate(spec, ev.activity_params("rules", None, ["hysteresis_k=4"]), detector, **kw)
    assert with_config["counted"] > 20, with_config
    assert with_config == without


def test_cli_with_config_prints_chain_and_writes_json(tmp_path, capsys):
    path = write(tmp_path, DEMO_LIKE)
    out = tmp_path / "r.json"
    rc = ev.main(["--config", str(path), "--seeds", "1000", "--frames", "12", "--size", "320x180",
                  "--json", str(out), "--min-age", "0.1"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "background -> motion -> track -> flow -> activity" in text
    r = json.loads(out.read_text())
    assert r["visible"] > 0 and np.asarray(r["confusion"]).shape == (5, 6)


def test_train_with_config_caches_per_chain(tmp_path, capsys):
    path = write(tmp_path, PLAIN)
    cache = tmp_path / "cache"
    rc = tr.main(["--config", str(path), "--detector", "gt", "--seeds", "1", "--frames", "20", "--epochs", "1",
                  "--cache", str(cache), "--out", str(tmp_path / "w.pt")])
    assert rc == 0 and (tmp_path / "w.pt").is_file(), capsys.readouterr().err
    first = sorted(p.name for p in cache.iterdir())
    assert len(first) == 1 and first[0].startswith("gt_cfg")
    # another track param -> another chain -> its own cache file
    other = write(tmp_path, PLAIN.replace("  - track\n", "  - {type: track, max_age: 5}\n"), "d.yaml")
    seqs = tr.load_or_collect([1], 20, "gt", cache, log=lambda *a: None, chain=load_chain(other))
    assert len(list(cache.iterdir())) == 2 and seqs and seqs[0][0].shape[1] == len(tr.FEATURES)
