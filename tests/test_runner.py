"""The runner: order, bounded queues, exact drop counts, errors without hangs, stop, no leftover threads."""
from __future__ import annotations

import _thread
import threading
import time

import pytest

from fakes import BatchStage, DetectStage, FailSetupStage, FakeSink, FakeSource, NoopStage, TrackStage
from pipeline import ConfigError, Pipeline, SinkError, SourceError, StageError
from pipeline.stats import format_table


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - before == set()


def chain(n, **kw):
    return [NoopStage(name=f"s{i}", **kw) for i in range(n)]


class JitterStage(NoopStage):
    """Sleeps a pseudo-random 0-2 ms per frame so that threads interleave differently."""

    def process(self, frame):
        time.sleep(((frame.index * 7919 + hash(self.name)) % 3) / 1000.0)
        return super().process(frame)


def test_frame_order_and_timestamps_preserved():
    src = FakeSource(count=150)
    sink = FakeSink()
    stages = [JitterStage(name=f"j{i}") for i in range(3)]
    stats = Pipeline(src, stages, [sink], queue_size=2, device="cpu").run()
    assert sink.indices == list(range(150))
    assert sink.times == [i / 25.0 for i in range(150)]
    assert all(s.seen == list(range(150)) for s in stages)
    assert stats["frames_read"] == stats["frames_written"] == 150 and stats["drops"] == 0


def test_each_stage_runs_in_its_own_thread():
    stages = chain(3)
    Pipeline(FakeSource(count=5), stages, [FakeSink()], device="cpu").run()
    names = [next(iter(s.threads)) for s in stages]
    assert all(len(s.threads) == 1 for s in stages)
    assert len(set(names)) == 3 and threading.main_thread().name not in names


@pytest.mark.parametrize("policy", ["block", "drop_oldest"])
def test_queues_never_exceed_their_size(policy):
    src = FakeSource(count=120)
    sink = FakeSink(source=src, delay=0.002)   # the slowest part is at the end: every queue fills
    stages = chain(4)
    stats = Pipeline(src, stages, [sink], queue_size=3, drop_policy=policy, device="cpu").run()
    assert [q["high_water"] for q in stats["queues"]] == [3] * 5 if policy == "block" else \
        max(q["high_water"] for q in stats["queues"]) <= 3
    # frames alive at once: queued (5 edges x 3) + one in each of 4 stages + the sink's + the source's
    assert 3 <= sink.max_in_flight <= 5 * 3 + 4 + 2
    if policy == "block":
        assert sink.indices == list(range(120))


def test_drop_oldest_counts_exactly_the_frames_it_drops():
    src = FakeSource(count=200, live=True, interval=0.0005)
    sink = FakeSink()
    stages = [NoopStage(name="slow", sleep=0.004), NoopStage(name="fast")]
    stats = Pipeline(src, stages, [sink], queue_size=2, device="cpu").run()
    assert stats["drop_policy"] == "drop_oldest"
    assert stats["drops"] > 0
    assert stats["frames_read"] == 200
    assert stats["frames_written"] + stats["drops"] == 200
    assert len(set(range(200)) - set(sink.indices)) == stats["drops"]
    assert sink.indices == sorted(sink.indices)
    edge = {q["edge"]: q for q in stats["queues"]}
    assert edge["source->slow"]["drops"] == 200 - len(stages[0].seen)


@pytest.mark.parametrize("fail_stage", [0, 2, 4])
def test_stage_error_ends_run_fast_and_closes_everything(fail_stage):
    k = 9
    src = FakeSource(count=10_000)
    stages = [NoopStage(name=f"s{i}", fail_at=k if i == fail_stage else None, sleep=0.001) for i in range(5)]
    sinks = [FakeSink(), FakeSink()]
    t0 = time.perf_counter()
    with pytest.raises(StageError) as info:
        Pipeline(src, stages, sinks, queue_size=4, device="cpu").run()
    assert time.perf_counter() - t0 < 2.0
    err = info.value
    assert (err.stage, err.frame_index) == (f"s{fail_stage}", k)
    assert isinstance(err.__cause__, ValueError) and "boom at 9" in str(err)
    assert [s.closes for s in stages] == [1] * 5 and src.closes == 1
    assert [s.closes for s in sinks] == [1, 1]
    assert all(s.indices == list(range(k)) and s.closed_with == k for s in sinks)


def test_batched_stage_error_and_batches():
    src = FakeSource(count=40)
    stage = BatchStage(name="b", batch_size=4, max_wait=0.05)
    sink = FakeSink()
    Pipeline(src, [NoopStage(name="a", sleep=0.001), stage], [sink], device="cpu").run()
    assert sink.indices == list(range(40))
    assert max(stage.batches) <= 4 and max(stage.batches) > 1 and sum(stage.batches) == 40
    failing = BatchStage(name="b", batch_size=4, max_wait=0.0, fail_at=13)
    sink = FakeSink()
    with pytest.raises(StageError) as info:
        Pipeline(FakeSource(count=40), [failing], [sink], device="cpu").run()
    assert info.value.stage == "b" and info.value.frame_index <= 13
    assert sink.indices == list(range(info.value.frame_index)) and failing.closes == 1


class WrongReturnStage(NoopStage):
    def process(self, frame):
        return frame.image if frame.index == 4 else frame


def test_stage_returning_a_non_frame_is_its_error():
    sink = FakeSink()
    with pytest.raises(StageError, match=r"stage 'w' failed on frame 4: TypeError: process returned ndarray"):
        Pipeline(FakeSource(count=10), [WrongReturnStage(name="w")], [sink], device="cpu").run()
    assert sink.indices == [0, 1, 2, 3]


def test_source_error_keeps_frames_read_before_it():
    src = FakeSource(count=50, fail_at=12, uri="fake://cam")
    sink = FakeSink()
    with pytest.raises(SourceError, match=r"fake://cam: reading failed after 12 frames: OSError: fake read error"):
        Pipeline(src, chain(2), [sink], device="cpu").run()
    assert sink.indices == list(range(12)) and sink.closes == 1 and src.closes == 1


def test_sink_error_closes_every_sink():
    bad, good = FakeSink(fail_at=5), FakeSink()
    stages = chain(2)
    with pytest.raises(SinkError, match=r"sinks\[0\] \(memory\) failed on frame 5: OSError: disk full"):
        Pipeline(FakeSource(count=30), stages, [bad, good], device="cpu").run()
    assert bad.closes == good.closes == 1 and good.indices == list(range(5))
    assert [s.closes for s in stages] == [1, 1]


def test_setup_failure_closes_only_what_was_set_up():
    stages = [NoopStage(name="a"), NoopStage(name="b"), FailSetupStage(name="c"), NoopStage(name="d")]
    src, sink = FakeSource(count=5), FakeSink()
    with pytest.raises(StageError, match=r"stage 'c' failed during setup/close: RuntimeError: cannot load model"):
        Pipeline(src, stages, [sink], device="cpu").run()
    assert [s.closes for s in stages] == [1, 1, 0, 0] and src.closes == 1
    assert sink.opens == 0 and sink.closes == 0


def test_stop_from_another_thread_finalizes_sinks():
    src = FakeSource(count=1_000_000, interval=0.001)
    sink = FakeSink()
    pipe = Pipeline(src, chain(3), [sink], device="cpu")
    timer = threading.Timer(0.3, pipe.stop)
    timer.start()
    t0 = time.perf_counter()
    stats = pipe.run()
    timer.join()
    assert time.perf_counter() - t0 < 1.5
    assert stats["stopped"] == "stop" and sink.closes == 1 and src.closes == 1
    assert stats["frames_written"] == len(sink.indices) > 0
    assert sink.indices == list(range(len(sink.indices)))


def test_ctrl_c_stops_cleanly_and_reraises():
    src = FakeSource(count=1_000_000, interval=0.001)
    sink, stages = FakeSink(), chain(2)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        Pipeline(src, stages, [sink], device="cpu").run()
    timer.join()
    assert sink.closes == 1 and [s.closes for s in stages] == [1, 1] and src.closes == 1
    assert sink.indices == list(range(len(sink.indices)))


def test_max_frames_and_dropping_stage():
    src, sink = FakeSource(count=50), FakeSink()
    stage = NoopStage(name="d", drop_every=3)
    stats = Pipeline(src, [stage], [sink], max_frames=10, device="cpu").run()
    assert stats["frames_read"] == 10 and src.produced == 10
    assert sink.indices == [0, 1, 3, 4, 6, 7, 9]
    row = stats["stages"][0]
    assert (row["frames_in"], row["frames_out"], row["dropped"]) == (10, 7, 3)


def test_stats_dict_and_table():
    stats = Pipeline(FakeSource(count=30), chain(2, sleep=0.001), [FakeSink()], device="cpu").run()
    assert [s["name"] for s in stats["stages"]] == ["s0", "s1", "sinks"]
    assert [q["edge"] for q in stats["queues"]] == ["source->s0", "s0->s1", "s1->sinks"]
    s0 = stats["stages"][0]
    assert s0["frames_in"] == s0["frames_out"] == 30 and 1.0 <= s0["p50_ms"] <= s0["p95_ms"]
    assert s0["busy_s"] >= 0.03
    assert stats["latency_ms"]["p50"] <= stats["latency_ms"]["p95"] and stats["fps"] > 0
    assert stats["source"]["produced"] == 30 and stats["peak_rss_mb"] > 0
    table = format_table(stats)
    assert "source->s0" in table and "30 frames written of 30 read" in table


def test_frames_iteration_yields_processed_frames_and_writes_sinks():
    sink = FakeSink()
    with Pipeline(FakeSource(count=20), [DetectStage(name="det")], [sink], device="cpu") as pipe:
        got = [(f.index, f.detections is not None, "det" in f.timings) for f in pipe.frames()]
    assert got == [(i, True, True) for i in range(20)]
    assert sink.indices == list(range(20)) and pipe.stats["frames_written"] == 20


def test_leaving_frames_loop_early_stops_the_run():
    src, sink = FakeSource(count=100_000), FakeSink()
    pipe = Pipeline(src, chain(2), [sink], device="cpu", queue_size=2)
    for frame in pipe.frames():
        if frame.index == 5:
            break
    assert sink.closes == 1 and src.closes == 1
    assert sink.indices == list(range(len(sink.indices))) and len(sink.indices) < 1000


def test_frames_iteration_raises_stage_error_after_the_frames_before_it():
    got = []
    with pytest.raises(StageError, match="stage 'bad' failed on frame 6"):
        for frame in Pipeline(FakeSource(count=50), [NoopStage(name="bad", fail_at=6)], [], device="cpu").frames():
            got.append(frame.index)
    assert got == list(range(6))


def test_context_manager_stops_a_held_iterator():
    src, sink = FakeSource(count=100_000), FakeSink()
    with Pipeline(src, chain(2), [sink], device="cpu", queue_size=2) as pipe:
        frames = pipe.frames()
        assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    assert sink.closes == 1 and src.closes == 1 and pipe.stats["stopped"] == "stop"
    del frames  # closing the generator afterwards must not wait or raise


def test_graph_checked_for_objects_too():
    with pytest.raises(ConfigError, match=r"stages\[0\] \(track\): reads 'detections'"):
        Pipeline(FakeSource(), [TrackStage(name="track"), DetectStage(name="detect")])


def test_policy_auto_follows_the_source():
    assert Pipeline(FakeSource(count=3), [], [FakeSink()], device="cpu").run()["drop_policy"] == "block"
    assert Pipeline(FakeSource(count=3, live=True), [], [FakeSink()], device="cpu").run()["drop_policy"] == "drop_oldest"
