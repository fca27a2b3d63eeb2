"""The reliability suite over the whole pipeline (CLI in-process, or a subprocess when it must be
killed): damaged, empty, non-video and huge inputs, a stage that raises, a full disk, a hard
kill, and a hostile YAML. Each gives one clear error line and a non-zero exit, and every frame
processed before the failure is kept in a playable output."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from avgen import decode_all, index_of, make_video, mp4_boxes

from pipeline import cli, config
from pipeline.config import Registries
from pipeline.registry import Registry
from pipeline.sinks import SINKS
from pipeline.sinks.jsonl import read_jsonl
from pipeline.sources import SOURCES
from stages import STAGES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def registries(monkeypatch):
    """The real sources, stages and sinks, plus the engine tests' `noop` stage (it can raise)."""
    regs = Registries(Registry("stage", {**STAGES, "noop": "fakes:NoopStage"}), Registry("source", SOURCES),
                      Registry("sink", SINKS))
    monkeypatch.setattr(config.Registries, "default", classmethod(lambda cls: regs))


def run(capsys, tmp_path, source, stages="[annotate]", video="out.mp4", jsonl="out.jsonl", extra=""):
    doc = (f"source: {json.dumps(source) if isinstance(source, dict) else repr(str(source))}\n"
           f"stages: {stages}\n"
           f"sinks:\n  - {{type: video, path: '{tmp_path / video}'}}\n  - {{type: jsonl, path: '{tmp_path / jsonl}'}}\n"
           + extra)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(doc)
    code = cli.main(["run", "--quiet", str(cfg)])
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return code, errors, err


def assert_kept(tmp_path, n_min, n_max=None):
    """The video plays and holds exactly the frames the JSON lines say were processed, in order."""
    records = read_jsonl(tmp_path / "out.jsonl")
    images, times, _ = decode_all(tmp_path / "out.mp4")
    assert len(images) == len(records) and n_min <= len(records) <= (n_max or n_min)
    assert np.allclose(times, np.array([r["time"] for r in records]) - records[0]["time"], atol=2e-3)
    return images


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "in.mp4", n=60, gop=10, faststart=True)


def test_corrupt_middle(capsys, tmp_path, clip, registries):
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 3000] = np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    code, errors, _ = run(capsys, tmp_path, bad)
    assert code == 1 and len(errors) == 1 and "damaged video (" in errors[0] and str(bad) in errors[0]
    images = assert_kept(tmp_path, 40, 59)
    assert index_of(images[-1]) == 59  # frames after the damage were processed too


def test_truncated_at_half(capsys, tmp_path, clip, registries):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    code, errors, _ = run(capsys, tmp_path, cut)
    assert code == 1 and len(errors) == 1 and "cut short" in errors[0] and errors[0].endswith(str(cut))
    images = assert_kept(tmp_path, 15, 45)
    assert [index_of(im) for im in images] == list(range(len(images)))


@pytest.mark.parametrize("case,message", [
    ("zero", "empty file (0 bytes): "), ("text", "not a readable video (Invalid data found when processing input): "),
    ("missing", "file not found: "), ("folder_as_file", "is a folder"),
])
def test_unusable_input_one_line_no_output(capsys, tmp_path, registries, case, message):
    path = tmp_path / "input.mp4"
    if case == "zero":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("#!/bin/sh\necho this is not a video\n")
    elif case == "folder_as_file":
        path.mkdir()
    uri = {"type": "file", "uri": str(path)}
    code, errors, _ = run(capsys, tmp_path, uri)
    assert code == 1 and len(errors) == 1 and message in errors[0] and str(path) in errors[0]
    assert not (tmp_path / "out.mp4").exists()


def test_huge_dimensions_rejected_before_decoding(capsys, tmp_path, registries):
    huge = tmp_path / "huge.mkv"
    with av.open(str(huge), "w") as out:
        stream = out.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width = stream.height = 8200
        stream.pix_fmt = "yuv420p"
        for packet in [*stream.encode(av.VideoFrame(8200, 8200, "yuv420p")), *stream.encode()]:
            out.mux(packet)
    t0 = time.perf_counter()
    code, errors, _ = run(capsys, tmp_path, huge)
    assert time.perf_counter() - t0 < 3
    assert code == 1 and errors == [f"error: frame size 8200x8200 exceeds max_pixels=67108864: {huge}"]


def test_stage_that_raises(capsys, tmp_path, clip, registries):
    code, errors, _ = run(capsys, tmp_path, clip, stages="[{type: noop, fail_at: 25}, annotate]")
    assert code == 1 and errors == ["error: stage 'noop' failed on frame 25: ValueError: boom at 25"]
    images = assert_kept(tmp_path, 25)
    assert [index_of(im) for im in images] == list(range(25))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_disk_full(capsys, tmp_path, clip, registries):
    os.symlink("/dev/full", tmp_path / "full.jsonl")  # every write there fails with ENOSPC
    code, errors, _ = run(capsys, tmp_path, clip, jsonl="full.jsonl", extra="")
    assert code == 1 and len(errors) == 1
    assert "No space left on device" in errors[0] and str(tmp_path / "full.jsonl") in errors[0]
    images, times, _ = decode_all(tmp_path / "out.mp4")  # the other output is finalized and plays
    assert len(images) >= 1 and [index_of(im) for im in images] == list(range(len(images)))


def test_output_paths_are_exactly_the_ones_asked_for(capsys, tmp_path, clip, registries):
    code, errors, _ = run(capsys, tmp_path, clip, video="a/b/video.mp4", jsonl="c/results.jsonl")
    assert code == 0 and not errors
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made == ["a/b/video.mp4", "c/results.jsonl", "in.mp4", "run.yaml"]


def test_python_object_yaml_rejected(capsys, tmp_path, registries):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"source: !!python/object/apply:os.system ['touch {marker}']\nstages: [annotate]\n")
    code = cli.main(["run", "--quiet", str(cfg)])
    out, err = capsys.readouterr()
    assert code == 2 and not marker.exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(cfg) in errors[0] and "Traceback" not in err


def test_sigkill_on_a_live_run_leaves_a_playable_file(tmp_path):
    out = tmp_path / "live.mp4"
    cfg = tmp_path / "live.yaml"
    cfg.write_text("source: 'lavfi:testsrc2=size=320x240:rate=30,realtime'\nstages: [annotate]\n"
                   f"sinks: [{{type: video, path: '{out}', keyframe_interval: 0.5}}]\n")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--quiet", str(cfg)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until a few fragments are on disk
            if out.exists() and [b[0] for b in mp4_boxes(out.read_bytes())].count(b"moof") >= 3:
                break
            time.sleep(0.1)
        time.sleep(0.25)  # land the kill somewhere inside a fragment
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    images, times, facts = decode_all(out, tolerant=True)
    assert facts["codec"] == "h264" and len(images) >= 40
    assert np.all(np.diff(times) > 0) and np.allclose(np.diff(times), 1 / 30, atol=2e-3)


def test_sigterm_stops_like_ctrl_c_and_finalizes_the_output(tmp_path):
    """`docker stop` / systemd send SIGTERM: the run stops in order (exit 143), the mp4 is complete,
    and a stage's worker process ends with it."""
    out = tmp_path / "term.mp4"
    cfg = tmp_path / "term.yaml"
    cfg.write_text("source: 'lavfi:testsrc2=size=320x240:rate=30'\n"
                   "stages: [{type: background, process: true}, motion, annotate]\n"
                   f"sinks: [{{type: video, path: '{out}', fragmented: false}}]\n")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--quiet", str(cfg)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 20000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    images, _, facts = decode_all(out)          # a plain (not fragmented) mp4: finalized, or unreadable
    assert facts["codec"] == "h264" and len(images) >= 10
