"""The vidpipe command: exit codes, one-line errors, overrides from flags, dispatch, generated docs."""
from __future__ import annotations

import _thread
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import fakes
from pipeline import cli, config

ROOT = Path(__file__).resolve().parents[1]
LAVFI = "lavfi:testsrc2=size=64x48:rate=25"


def write(tmp_path, text, name="cfg.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_registries(monkeypatch):
    monkeypatch.setattr(config.Registries, "default", classmethod(lambda cls: fakes.registries()))


def test_validate_ok(capsys, tmp_path):
    code, out, err = run_cli(capsys, "validate", write(tmp_path, f"source: '{LAVFI}'\n"))
    assert code == 0 and out.startswith("OK: ") and "lavfi" in out and err == ""


def test_validate_prints_every_error_without_traceback(capsys, tmp_path):
    path = write(tmp_path, "source: x.mp4\npipeline: {queue_size: -1, device: gpu}\nstages: [{type: nope}]\n")
    code, out, err = run_cli(capsys, "validate", path)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert lines[0] == "error: pipeline.queue_size: expected 1 <= x, got -1"
    assert lines[1] == "error: pipeline.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"
    assert lines[2].startswith("error: stages[0].type: unknown stage type 'nope'") and len(lines) == 4
    assert lines[3].startswith("error: source.uri: file not found: x.mp4 (relative to the working directory ")


@pytest.mark.parametrize("argv, code, message", [
    (["run", "{tmp}/missing.yaml"], 2, "error: {tmp}/missing.yaml: no such file"),
    (["run", "{tmp}"], 2, "error: {tmp}: is a directory, expected a YAML file"),
    (["run", "{cfg}", "--set", "pipeline.queue_size"], 2, "error: --set pipeline.queue_size: expected KEY=VALUE"),
    (["run", "{cfg}", "--set", "pipeline.queue_size=-2"], 2, "error: pipeline.queue_size: expected 1 <= x, got -2"),
    (["run", "{cfg}", "--device", "tpu"], 2, "error: pipeline.device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["run", "{cfg}", "--source", "{tmp}/nope.mp4"], 1, "{tmp}/nope.mp4"),
    (["run", "{cfg}", "--source", "{tmp}/text.mp4"], 1, "{tmp}/text.mp4"),
    (["run", "{cfg}", "--output", "{tmp}/text.mp4/out.mp4"], 1, "{tmp}/text.mp4"),
])
def test_run_errors_are_one_line(capsys, tmp_path, argv, code, message):
    (tmp_path / "text.mp4").write_text("not a video\n")
    cfg = write(tmp_path, f"source: '{LAVFI}'\n")
    argv = [a.format(tmp=tmp_path, cfg=cfg) for a in argv]
    got, out, err = run_cli(capsys, *argv)
    assert got == code
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message.format(tmp=tmp_path) in err, err


def test_cuda_without_cuda_is_a_config_error(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, out, err = run_cli(capsys, "run", write(tmp_path, f"source: '{LAVFI}'\n"), "--device", "cuda", "-q")
    assert code == 2 and err == "error: pipeline.device: 'cuda' requested but CUDA is not available (use auto or cpu)\n"


def test_run_prints_stats_table(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", write(tmp_path, f"source: '{LAVFI}'\n"), "--max-frames", "6")
    assert code == 0
    assert "source->sinks" in out and "6 frames written of 6 read" in out


def test_run_quiet_prints_nothing(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", write(tmp_path, f"source: '{LAVFI}'\n"), "--max-frames", "3", "--quiet")
    assert (code, out) == (0, "")


def test_stage_error_is_one_line_exit_1(capsys, tmp_path, fake_registries):
    path = write(tmp_path, "source: {type: fake, count: 50}\nstages: [{type: noop, fail_at: 3}]\nsinks: [memory]\n")
    code, out, err = run_cli(capsys, "run", path, "--quiet")
    assert code == 1
    assert err == "error: stage 'noop' failed on frame 3: ValueError: boom at 3\n"


def test_ctrl_c_exits_130(capsys, tmp_path, fake_registries):
    path = write(tmp_path, "source: {type: fake, count: 1000000, interval: 0.001}\nstages: [noop]\n")
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    code, out, err = run_cli(capsys, "run", path)
    timer.join()
    assert code == 130 and "interrupted" in err
    assert "frames written of" in out  # the stats of what was done before Ctrl-C


def test_flags_edit_the_document():
    class Args:
        source, output, max_frames, device = "clip2.mp4", "out/o.mp4", 5, "cpu"

    doc = {"source": {"uri": "clip.mp4", "start": 2.0}, "sinks": [{"type": "jsonl", "path": "a"}]}
    assert cli._cli_edits(Args)(doc) == []
    assert doc == {"source": {"uri": "clip2.mp4", "start": 2.0, "max_frames": 5}, "pipeline": {"device": "cpu"},
                   "sinks": [{"type": "jsonl", "path": "a"}, {"type": "video", "path": "out/o.mp4"}]}
    Args.source, Args.output = "rtsp://cam/1", "out/p.mp4"
    cli._cli_edits(Args)(doc)
    assert doc["source"] == {"uri": "rtsp://cam/1", "max_frames": 5}   # another type: its params are dropped
    assert doc["sinks"][1] == {"type": "video", "path": "out/p.mp4"}    # the first video sink is retargeted


def test_set_refines_the_source_chosen_by_the_source_flag(capsys, tmp_path):
    # --set applies after --source: a typo in a new source type's key is reported, not dropped
    path = write(tmp_path, f"source: '{LAVFI}'\n")
    code, out, err = run_cli(capsys, "validate", path, "--source", "rtsp://u:p@127.0.0.1:1/x",
                             "--set", "source.transport=tpc")
    assert code == 2 and "source.transport: expected one of 'tcp', 'udp', got 'tpc'" in err


def test_external_dispatch(capsys, tmp_path, monkeypatch):
    (tmp_path / "fake_eval.py").write_text(
        '"""Fake evaluator."""\n'
        "def configure(parser):\n    parser.add_argument('--n', type=int, default=1)\n"
        "def run(args):\n    print('n =', args.n)\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.EXTERNAL, "eval", {"mot": "fake_eval", "flow": "no_such_module_here"})
    assert run_cli(capsys, "eval", "mot", "--n", "7")[:2] == (3, "n = 7\n")
    code, out, err = run_cli(capsys, "eval", "flow")
    assert code == 1 and err == "error: vidpipe eval flow: not available (No module named 'no_such_module_here')\n"
    code, out, err = run_cli(capsys, "eval", "mto")
    assert code == 2 and "unknown command 'mto' (did you mean 'mot'?)" in err
    assert run_cli(capsys, "eval")[0] == 2 and run_cli(capsys, "eval", "--help")[0] == 0


def test_docs_config_md_is_up_to_date():
    from pipeline.reference import MD_COMMAND, collect, render_markdown

    doc = ROOT / "docs" / "CONFIG.md"
    assert doc.exists(), f"docs/CONFIG.md is missing: run `{MD_COMMAND}`"
    assert doc.read_text() == render_markdown(collect()), f"docs/CONFIG.md is stale: run `{MD_COMMAND}`"


def test_stages_lists_every_registered_component(capsys):
    from pipeline.config import Registries

    code, out, err = run_cli(capsys, "stages")
    regs = Registries.default()
    assert code == 0
    for name in regs.stages.names() + regs.sources.names() + regs.sinks.names():
        assert f"  {name}: " in out


def test_module_entry_point_subprocess(tmp_path):
    bad = write(tmp_path, "source: !!python/object/apply:os.system ['echo hacked']\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", bad], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "hacked" not in proc.stdout
    assert proc.stderr == f"error: {bad}:1:9: tag '!!python/object/apply:os.system' is not allowed (plain YAML only, safe_load)\n"


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs name paths relative to the repository root
    cfg = config.load(path)
    assert cfg.stages or cfg.sinks


def test_closed_stdout_is_no_traceback():
    """`vidpipe eval mot ... | head`: a reader that leaves early ends the command quietly."""
    def write_to_closed_pipe():
        raise BrokenPipeError(32, "Broken pipe")

    assert cli.guard(write_to_closed_pipe) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("vidpipe ")


def test_eval_activity_frames_zero_is_one_line(capsys):
    code, out, err = run_cli(capsys, "eval", "activity", "--frames", "0", "--seeds", "1000")
    assert code == 2 and err == "error: --frames: expected >= 1, got 0\n"  # was an AttributeError traceback


def test_unwritable_path_in_a_command_is_one_line(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    def write_under_a_file():
        (tmp_path / "file" / "out").mkdir(parents=True)

    assert cli.guard(write_under_a_file) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "file" / "out") in err and len(err.splitlines()) == 1
