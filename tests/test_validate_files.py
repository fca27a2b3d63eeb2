"""`vidpipe validate` checks the files a config names (params declared with `param(path=...)`):
one line per problem naming the key, all collected, exit 2; `vidpipe run` checks the stages' files
before opening anything. Paths are relative to the working directory, as the components open them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import cli, config
from pipeline.params import Note, check_path, describe, field_file_errors, file_errors, param
from stages.detection import weights

ROOT = Path(__file__).resolve().parents[1]
LAVFI = "lavfi:testsrc2=size=64x48:rate=25"
KNOWN = "yolox_nano.onnx"


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """A working directory holding a non-video text file, a folder and a non-empty file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "text.txt").write_text("x\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.onnx").write_bytes(b"")
    return tmp_path


# ---- the check of one path ----
@pytest.mark.parametrize("value, kind, expected", [
    ("text.txt", "file", None),
    ("nope.png", "file", "file not found: nope.png (relative to the working directory {cwd})"),
    ("{cwd}/nope.png", "file", "file not found: {cwd}/nope.png"),
    ("folder", "file", "is a folder, expected a file: folder"),
    ("empty.onnx", "file", "empty file (0 bytes): empty.onnx"),
    ("folder", "dir", None),
    ("frames", "dir", "folder not found: frames (relative to the working directory {cwd})"),
    ("text.txt", "dir", "not a folder: text.txt"),
    ("out/a/b/c.mp4", "output", None),                       # folders the run creates
    ("text.txt", "output", None),                            # overwritten
    ("folder", "output", "is a folder, expected a file: folder"),
    ("text.txt/sub/out.mp4", "output", "cannot create the output folder {cwd}/text.txt/sub: {cwd}/text.txt is a file"),
    ("", "output", "output path is empty"),
])
def test_check_path(cwd, value, kind, expected):
    got = check_path(value.format(cwd=cwd), kind)
    assert got == (expected.format(cwd=cwd) if expected else None)
    assert not (cwd / "out").exists()  # nothing is created


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes everything")
def test_check_path_permissions(cwd):
    (cwd / "secret.png").write_text("x")
    (cwd / "secret.png").chmod(0)
    (cwd / "ro").mkdir(mode=0o500)
    assert check_path("secret.png", "file") == "file not readable (permission denied): secret.png"
    assert check_path("ro/out.mp4", "output") == f"output folder not writable (permission denied): {cwd}/ro"


def test_param_path_kind_is_checked_and_documented():
    with pytest.raises(ValueError, match="path: expected one of file, dir, output, got 'url'"):
        param("x", path="url")
    from pipeline.sources.file import FileParams

    assert describe(FileParams)[0]["type"] == "str (file path)"


# ---- the generic walk and the hook ----
@dataclass
class Inner:
    mask: str | None = param(None, path="file")


@dataclass
class Outer:
    image: str = param("a.png", path="file")
    out: str = param("o/x.txt", path="output")
    label: str = param("not a path")
    inner: Inner = param(default_factory=Inner)
    more: list[Inner] = param(default_factory=list)


def test_generic_walk_finds_nested_path_params(cwd):
    params = Outer(inner=Inner("m.png"), more=[Inner(None), Inner("text.txt"), Inner("folder")])
    where = f" (relative to the working directory {cwd})"
    assert file_errors(params, "stages[1]") == [
        f"stages[1].image: file not found: a.png{where}",
        f"stages[1].inner.mask: file not found: m.png{where}",
        "stages[1].more[2].mask: is a folder, expected a file: folder"]
    assert field_file_errors(params, skip=("image", "inner", "more")) == []


def test_hook_replaces_the_generic_walk_and_keeps_notes():
    @dataclass
    class Hooked(Outer):
        def check_files(self):
            return field_file_errors(self, skip=("image",)) + [Note("image: fetched at the run's start")]

    lines = file_errors(Hooked(out="ok.txt"), "stages[0]")
    assert lines == ["stages[0].image: fetched at the run's start"] and isinstance(lines[0], Note)


# ---- vidpipe validate ----
BROKEN = f"""\
source: clips/missing.mp4
stages:
  - {{type: detect, model: models/mine.onnx, classes: names.txt}}
  - track
  - {{type: activity, classifier: temporal, weights: weights/tcn.pt}}
  - {{type: planar_track, reference_image: poster.png}}
  - {{type: placement, image: ads/ad.png}}
sinks:
  - {{type: video, path: text.txt/out.mp4}}
  - {{type: jsonl, path: out/r.jsonl}}
"""


def test_validate_reports_every_missing_file_in_one_line_each(cwd, capsys):
    (cwd / "cfg.yaml").write_text(BROKEN)
    code, out, err = run_cli(capsys, "validate", "cfg.yaml")
    where = f" (relative to the working directory {cwd})"
    assert code == 2 and out == "" and "Traceback" not in err
    assert sorted(err.splitlines()) == sorted([
        # placement checks its image when the params are built (the message predates this check)
        "error: stages[4].image: file not found: ads/ad.png (paths are relative to the working directory)",
        f"error: source.uri: file not found: clips/missing.mp4{where}",
        f"error: stages[0].classes: file not found: names.txt{where}",
        f"error: stages[0].model: file not found: models/mine.onnx{where}",
        f"error: stages[2].weights: file not found: weights/tcn.pt{where}",
        "error: stages[3].reference_image: file not found: poster.png",  # also checked when built
        f"error: sinks[0].path: cannot create the output folder {cwd}/text.txt: {cwd}/text.txt is a file"])
    assert not (cwd / "out").exists()


@pytest.mark.parametrize("source", ["rtsp://user:pw@127.0.0.1:1/stream", LAVFI, "0", "/dev/video77",
                                    "http://127.0.0.1:1/live.m3u8"])
def test_streams_devices_and_filters_are_not_files(cwd, capsys, source):
    (cwd / "cfg.yaml").write_text(f"source: '{source}'\nsinks: [{{type: video, path: out/a.mp4}}]\n")
    code, out, err = run_cli(capsys, "validate", "cfg.yaml")
    assert (code, err) == (0, "") and out.startswith("OK: cfg.yaml: ")


def test_folder_source_and_flags_are_checked(cwd, capsys):
    (cwd / "cfg.yaml").write_text(f"source: '{LAVFI}'\n")
    assert run_cli(capsys, "validate", "cfg.yaml", "--source", "folder")[0] == 0
    code, out, err = run_cli(capsys, "validate", "cfg.yaml", "--set", "source={type: folder, uri: text.txt}",
                             "--output", "folder")
    assert code == 2 and err.splitlines() == ["error: source.uri: not a folder: text.txt",
                                              "error: sinks[0].path: is a folder, expected a file: folder"]


def test_activity_rules_ignore_a_stale_weights_path(cwd, capsys):
    (cwd / "cfg.yaml").write_text(f"source: '{LAVFI}'\n"
                                  "stages: [background, motion, track, {type: activity, weights: gone.pt}]\n")
    assert run_cli(capsys, "validate", "cfg.yaml")[:2] == (0, "OK: cfg.yaml: lavfi -> background -> motion -> track "
                                                             "-> activity -> []\n")


def detect_yaml(**params) -> str:
    items = ", ".join(f"{k}: {v}" for k, v in {"model": f"models/{KNOWN}", **params}.items())
    return f"source: '{LAVFI}'\nstages: [{{type: detect, {items}}}]\n"


def test_known_model_missing_says_where_it_is_published(cwd, capsys):
    (cwd / "cfg.yaml").write_text(detect_yaml())
    code, out, err = run_cli(capsys, "validate", "cfg.yaml")
    known = weights.KNOWN[KNOWN]
    assert code == 2 and err == (
        f"error: stages[0].model: file not found: models/{KNOWN} (relative to the working directory {cwd}); "
        f"it is published at {known.url} (sha256 {known.sha256}): put it at models/{KNOWN} or "
        f"{cwd}/cache/{KNOWN}, or set download: true\n")


def test_known_model_with_download_is_a_note(cwd, capsys):
    (cwd / "cfg.yaml").write_text(detect_yaml(download="true", cache_dir="mycache"))
    code, out, err = run_cli(capsys, "validate", "cfg.yaml")
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == (f"note: stages[0].model: models/{KNOWN} is not here: the run downloads it from "
                                   f"{weights.KNOWN[KNOWN].url} into mycache/{KNOWN} (download: true)")
    assert not (cwd / "mycache").exists()  # nothing fetched


def test_known_model_cached_copy_is_sha256_checked(cwd, capsys):
    (cwd / "cache").mkdir()
    (cwd / "cache" / KNOWN).write_bytes(b"not the release file")
    (cwd / "cfg.yaml").write_text(detect_yaml())
    code, out, err = run_cli(capsys, "validate", "cfg.yaml")
    assert code == 2 and err.startswith(f"error: stages[0].model: model file {cwd}/cache/{KNOWN} has sha256 ")
    assert err.rstrip().endswith("delete it and download again") and len(err.splitlines()) == 1


def test_model_present_is_not_opened_by_validate(cwd, capsys):
    (cwd / "models").mkdir()
    (cwd / "models" / KNOWN).write_bytes(b"any bytes: validate checks presence; setup reads the model")
    (cwd / "cfg.yaml").write_text(detect_yaml(classes="[a, b]"))
    assert run_cli(capsys, "validate", "cfg.yaml")[:2] == (0, "OK: cfg.yaml: lavfi -> detect -> []\n")


# ---- vidpipe run ----
def test_run_checks_the_stages_files_before_opening_anything(cwd, capsys):
    (cwd / "cfg.yaml").write_text(
        "source: {type: folder, uri: frames}\n"            # a missing source would fail later, exit 1
        "stages: [{type: detect, model: models/none.onnx}, track,\n"
        "         {type: activity, classifier: temporal, weights: w.pt}]\n"
        "sinks: [{type: jsonl, path: out/r.jsonl}]\n")
    code, out, err = run_cli(capsys, "run", "cfg.yaml", "-q")
    where = f" (relative to the working directory {cwd})"
    assert code == 2 and err.splitlines() == [f"error: stages[0].model: file not found: models/none.onnx{where}",
                                              f"error: stages[2].weights: file not found: w.pt{where}"]
    assert not (cwd / "out").exists()


# ---- the shipped configs name files that are there ----
@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_files_exist(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs name paths relative to the repository root
    if "../shared/" in path.read_text() and not (ROOT.parent / "shared").is_dir():
        pytest.skip("names files in ../shared, absent on a fresh clone")
    cfg = config.load(path, files=cli.VALIDATE_FILES)
    assert cfg.notes == []
