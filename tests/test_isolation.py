"""pipeline.isolation: a stage in its own worker process gives the same frames, errors, drops
and summaries as in a thread, and its CPU time is counted."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeSink, FakeSource
from pipeline import ConfigError, Pipeline, StageError
from pipeline.config import from_dict
from pipeline.isolation import ProcessStage
from pipeline.stage import SourceInfo, StageContext
from workerstages import BadSetupStage, MarkStage, MaskFlowReader, MaskFlowStage, WorkerParams

ROOT = Path(__file__).resolve().parents[1]


class KeepSink(FakeSink):
    def write(self, frame) -> None:
        super().write(frame)
        self.frames = getattr(self, "frames", []) + [frame]


def run(stage, count=12, size=(32, 24), **sink_kw):
    sink = KeepSink(**sink_kw)
    stages = stage if isinstance(stage, list) else [stage]
    source = FakeSource(count=count, width=size[0], height=size[1])
    stats = Pipeline(source, stages, [sink], device="cpu", print_stats=False).run()
    return stats, sink


def test_same_frames_as_in_a_thread_and_worker_is_another_process():
    stats, sink = run(ProcessStage(MarkStage, WorkerParams(), name="mark"))
    _, ref = run(MarkStage(WorkerParams(), name="mark"))
    assert sink.indices == ref.indices == list(range(12))
    for got, want in zip(sink.frames, ref.frames):
        np.testing.assert_array_equal(got.image, want.image)                 # written image came back
        np.testing.assert_array_equal(got.detections.xyxy, want.detections.xyxy)
        assert got.meta["pid"] != os.getpid() and want.meta["pid"] == os.getpid()
    assert stats["stages"][0]["summary"] == {"frames": 12, "process": "worker"}


def test_drops_are_counted_like_in_a_thread():
    stats, sink = run(ProcessStage(MarkStage, WorkerParams(drop_every=3), name="mark"))
    assert sink.indices == [i for i in range(12) if (i + 1) % 3]
    assert stats["frames_written"] == 8


def test_error_in_worker_names_stage_frame_and_original_type():
    with pytest.raises(StageError) as info:
        run(ProcessStage(MarkStage, WorkerParams(fail_at=5), name="mark"))
    assert info.value.frame_index == 5 and "ValueError: boom at 5" in str(info.value)


def test_worker_that_dies_is_a_clear_error_and_earlier_frames_are_kept():
    sink = KeepSink()
    with pytest.raises(StageError) as info:
        Pipeline(FakeSource(count=12), [ProcessStage(MarkStage, WorkerParams(die_at=4), name="mark")], [sink],
                 device="cpu", print_stats=False).run()
    assert info.value.frame_index == 4 and "worker process died (exit code 3)" in str(info.value)
    assert sink.indices == [0, 1, 2, 3] and sink.closes == 1


def test_setup_error_raised_before_any_frame():
    sink = KeepSink()
    with pytest.raises(StageError) as info:
        Pipeline(FakeSource(count=5), [ProcessStage(BadSetupStage, WorkerParams(), name="bad")], [sink],
                 device="cpu", print_stats=False).run()
    assert "FileNotFoundError: weights.pt not found" in str(info.value) and sink.indices == []


def test_worker_cpu_is_counted_for_the_stage():
    stats, _ = run(ProcessStage(MarkStage, WorkerParams(burn=0.02), name="mark"), count=10)
    stage = next(s for s in stats["stages"] if s["name"] == "mark")
    assert stage["cpu_s"] >= 10 * 0.02 * 0.9            # the proxy thread alone would be ~0
    assert stats["cpu_s"] >= stage["cpu_s"]
    from pipeline.stats import peak_rss_mb
    assert stats["peak_rss_mb"] > peak_rss_mb() + 5       # the worker's memory is counted too


def test_host_stage_gets_a_cpu_worker_on_a_cuda_run():
    from pipeline.frame import Frame
    from workerstages import HostMarkStage

    stage = ProcessStage(HostMarkStage, WorkerParams(), name="mark")
    ctx = StageContext("cuda", SourceInfo("x", 8, 8, 25.0, False), threading.Event(), logging.getLogger("t"))
    stage.setup(ctx)
    try:
        out = stage.process(Frame(3, 0.1, np.zeros((8, 8, 3), np.uint8)))
    finally:
        stage.close()
    assert out.meta["pid"] != os.getpid() and out.meta["device"] == "cpu"


def test_on_cuda_it_runs_in_the_thread():
    """A config with process: true also runs on a GPU: there the stage stays in its thread."""
    stage = ProcessStage(MarkStage, WorkerParams(), name="mark")
    ctx = StageContext("cuda", SourceInfo("x", 8, 8, 25.0, False), threading.Event(), logging.getLogger("t"))
    stage.setup(ctx)                      # no worker started; MarkStage itself needs no GPU
    from pipeline.frame import Frame
    out = stage.process(Frame(3, 0.1, np.zeros((8, 8, 3), np.uint8)))
    stage.close()
    assert stage._proc is None and out.meta["pid"] == os.getpid()
    assert stage.summary() == {"frames": 1, "process": "thread (cuda)"}


def test_config_key_and_its_errors():
    doc = {"source": str(ROOT / "sample_videos" / "street.mp4"),
           "stages": [{"type": "background", "process": True}, {"type": "motion"}]}
    cfg = from_dict(doc)
    built = [s.build() for s in cfg.stages]
    assert isinstance(built[0], ProcessStage) and built[0].writes == frozenset({"mask"})
    assert not isinstance(built[1], ProcessStage)
    doc["stages"][0]["process"] = "yes"
    with pytest.raises(ConfigError, match=r"stages\[0\]\.process: expected true or false"):
        from_dict(doc)


def test_real_stage_in_a_worker_matches_the_thread():
    """background -> motion -> track on the street sample: same boxes with background in a worker."""
    doc = {"source": {"uri": str(ROOT / "sample_videos" / "street.mp4"), "max_frames": 30},
           "pipeline": {"device": "cpu", "stats": False},
           "stages": [{"type": "background", "process": True}, {"type": "motion"}, {"type": "track"}]}
    results = []
    for process in (True, False):
        doc["stages"][0]["process"] = process
        sink = KeepSink()
        cfg = from_dict(doc)
        Pipeline(cfg.source.build(), [s.build() for s in cfg.stages], [sink], device="cpu", print_stats=False,
                 max_frames=cfg.max_frames).run()
        results.append(sink.frames)
    assert len(results[0]) == len(results[1]) == 30
    for a, b in zip(*results):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.detections.xyxy, b.detections.xyxy)
        np.testing.assert_array_equal(a.detections.track_id, b.detections.track_id)


def test_a_script_without_main_guard_runs(tmp_path):
    """Workers do not re-run the caller's script (spawn would import __main__ again)."""
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
        "from fakes import FakeSink, FakeSource\n"
        "from pipeline import Pipeline\n"
        "from pipeline.isolation import ProcessStage\n"
        "from workerstages import MarkStage, WorkerParams\n"
        "sink = FakeSink()\n"
        "Pipeline(FakeSource(count=5), [ProcessStage(MarkStage, WorkerParams(), name='m')], [sink],\n"
        "         device='cpu', print_stats=False).run()\n"
        "print('written', sink.indices)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("written") == 1 and "[0, 1, 2, 3, 4]" in out.stdout


def test_a_result_that_cannot_cross_is_a_clear_error():
    from workerstages import UnpicklableStage

    with pytest.raises(StageError) as info:
        run(ProcessStage(UnpicklableStage, WorkerParams(), name="odd"))
    assert info.value.frame_index == 0 and "TypeError" in str(info.value) and "lock" in str(info.value)


def test_default_chain_gives_the_same_outputs_with_and_without_workers(tmp_path):
    """configs/default.yaml (four stages in workers) vs the same chain in threads: identical MOT
    tracks and JSON lines (timings aside) over 40 frames."""
    import json

    from pipeline import config

    outputs = []
    for workers in (True, False):
        sets = [f"sinks.video.path={tmp_path / f'{workers}.mp4'}", f"sinks.jsonl.path={tmp_path / f'{workers}.jsonl'}",
                f"sinks.mot.path={tmp_path / f'{workers}.txt'}", "source.max_frames=40", "pipeline.device=cpu",
                f"source.uri={ROOT / 'sample_videos' / 'street.mp4'}",
                "stages.placement.image=" + str(ROOT / "configs" / "assets" / "ad.png"),
                "stages.activity.weights=" + str(ROOT / "stages" / "activities" / "activity_tcn_motion.pt")]
        if not workers:
            sets += [f"stages.{n}.process=false" for n in ("background", "flow", "activity", "planar_track")]
        cfg = config.load(ROOT / "configs" / "default.yaml", sets)
        assert sum(s.process for s in cfg.stages) == (4 if workers else 0)
        stats = Pipeline.from_config(cfg).run()
        assert stats["frames_written"] == 40
        lines = [json.loads(x) for x in (tmp_path / f"{workers}.jsonl").read_text().splitlines()]
        for d in lines:
            d.pop("timings", None)
            d.pop("latency_ms", None)
        outputs.append(((tmp_path / f"{workers}.txt").read_text(), lines))
    assert outputs[0][0] and outputs[0] == outputs[1]


def test_short_dev_shm_sends_pictures_through_the_pipe(monkeypatch, caplog):
    """A container's small /dev/shm: no block is made (a full tmpfs would SIGBUS), frames still cross."""
    import pipeline.shared_arrays as shared

    monkeypatch.setattr(shared, "shm_free_bytes", lambda: 1 << 20)
    stage = ProcessStage(MarkStage, WorkerParams(), name="mark")
    with caplog.at_level(logging.WARNING, logger="vidpipe"):
        _, sink = run(stage, size=(640, 480))
    _, ref = run(MarkStage(WorkerParams(), name="mark"), size=(640, 480))
    for got, want in zip(sink.frames, ref.frames):
        np.testing.assert_array_equal(got.image, want.image)
    assert sink.indices == list(range(12)) and stage._arrays.inline and not stage._arrays.blocks
    assert not stage._arrays.shared
    assert sum("/dev/shm" in r.message for r in caplog.records) == 1


def test_large_arrays_cross_in_shared_memory_both_ways():
    """640x480: the picture, the mask and the flow (>= 64 KB each) go through shared-memory blocks,
    to the worker and back, with the same results as in threads; small frames go inline."""
    def chain(workers):
        stages = [MaskFlowStage(WorkerParams(), name="maker"), MaskFlowReader(WorkerParams(), name="reader")]
        return [ProcessStage(type(s), WorkerParams(), name=s.name) for s in stages] if workers else stages

    stages = chain(True)
    _, sink = run(stages, size=(640, 480))
    _, ref = run(chain(False), size=(640, 480))
    assert sink.indices == ref.indices == list(range(12))
    for got, want in zip(sink.frames, ref.frames):
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.mask, want.mask)
        np.testing.assert_array_equal(got.flow, want.flow)
        np.testing.assert_array_equal(got.detections.xyxy, want.detections.xyxy)
    maker, reader = (s._arrays.shared for s in stages)
    # each array goes inline the first time it comes back (its size is learnt), then in a block
    assert maker == {("in", "image"): 12, ("out", "mask"): 11, ("out", "flow"): 11}
    assert reader == {("in", "image"): 12, ("in", "mask"): 12, ("in", "flow"): 12, ("out", "image"): 11}
    small = ProcessStage(MarkStage, WorkerParams(), name="mark")
    run(small)
    assert not small._arrays.shared                                      # 32x24: pickled, no blocks


def test_dev_shm_short_part_way_sends_everything_inline(monkeypatch):
    """The picture's block fits, the mask's does not: the whole frame goes inline (the picture's
    block, just released, must not be named to the worker), with the same results."""
    import pipeline.shared_arrays as shared

    free = iter([1 << 40])                       # room for the first block only
    monkeypatch.setattr(shared, "shm_free_bytes", lambda: next(free, 1 << 20))
    stages = [MaskFlowStage(WorkerParams(), name="maker"), ProcessStage(MaskFlowReader, WorkerParams(), name="reader")]
    _, sink = run(stages, size=(640, 480))
    _, ref = run([MaskFlowStage(WorkerParams(), name="maker"), MaskFlowReader(WorkerParams(), name="reader")],
                 size=(640, 480))
    assert sink.indices == list(range(12)) and stages[1]._arrays.inline and not stages[1]._arrays.shared
    for got, want in zip(sink.frames, ref.frames):
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.mask, want.mask)


@pytest.mark.parametrize("cls, views", [("InputProbe", False), ("ViewProbe", True), ("ViewDrawer", True)])
def test_input_views_read_the_blocks_in_place(cls, views):
    """A stage with Stage.input_views reads the picture and the mask in the shared blocks, read-only
    (no copy: 6 MB less per 1080p picture); others, and arrays a stage writes, get their own copy.
    Same pixels either way."""
    import workerstages

    stage = ProcessStage(getattr(workerstages, cls), WorkerParams(), name="probe")
    _, sink = run([MaskFlowStage(WorkerParams(), name="maker"), stage], size=(640, 480))
    _, ref = run([MaskFlowStage(WorkerParams(), name="maker"), getattr(workerstages, cls)(WorkerParams())],
                 size=(640, 480))
    assert stage._arrays.shared[("in", "image")] == 12 and stage._arrays.shared[("in", "mask")] == 12
    for got, want in zip(sink.frames, ref.frames):
        assert got.meta["image_sum"] == want.meta["image_sum"]
        assert got.meta["mask_writeable"] is (not views) and got.meta["mask_owned"] is (not views)
        assert got.meta["image_writeable"] is (cls != "ViewProbe")
    if cls == "ViewDrawer":
        assert all(tuple(f.image[0, 0]) == (1, 2, 3) for f in sink.frames)


def test_input_views_stage_writing_an_input_is_a_clear_error():
    from workerstages import ViewProbe

    stage = ProcessStage(ViewProbe, WorkerParams(fail_at=4), name="probe")
    with pytest.raises(StageError) as err:
        run([MaskFlowStage(WorkerParams(), name="maker"), stage], size=(640, 480))
    message = str(err.value)
    assert "probe" in message and "read-only" in message and "frame 4" in message
