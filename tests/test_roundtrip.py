"""End to end through the real file source and video sink: a video generated here goes through a
no-op chain and comes out with the same frames and timestamps; an error or a stop leaves a
finalized, decodable mp4 holding exactly the frames written."""
from __future__ import annotations

import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline import Pipeline, StageError
from pipeline.registry import sink_registry, source_registry

from fakes import NoopStage

# variable frame rate on purpose: gaps of 40, 40, 80, 33, ... ms
PTS_MS = [0, 40, 80, 160, 193, 233, 300, 340, 380, 420, 500, 533, 566, 600, 700, 740, 780, 820, 860, 900]


def make_video(path, pts_ms=PTS_MS, size=(96, 64)):
    """An H.264 mp4 whose frame i is a flat grey of level 24 + 10 * i (easy to recognize after coding)."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.options = {"preset": "ultrafast", "crf": "10"}
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 24 + 10 * i, np.uint8), format="bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def decode(path):
    """(times in seconds, mean grey level) of every frame of a video."""
    times, levels = [], []
    with av.open(str(path)) as inp:
        for frame in inp.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            levels.append(float(frame.to_ndarray(format="bgr24").mean()))
    return np.array(times), np.array(levels)


def components(src_path, out_path):
    source_cls, sink_cls = source_registry().get("file"), sink_registry().get("video")
    return source_cls(source_cls.Params(uri=str(src_path))), sink_cls(sink_cls.Params(path=str(out_path)))


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "in.mp4"
    make_video(path)
    return path


def test_round_trip_keeps_frame_count_and_timestamps(video, tmp_path):
    in_times, in_levels = decode(video)
    assert len(in_times) == len(PTS_MS)
    source, sink = components(video, tmp_path / "out.mp4")
    stats = Pipeline(source, [NoopStage(name=f"n{i}") for i in range(3)], [sink], device="cpu").run()
    out_times, out_levels = decode(tmp_path / "out.mp4")
    assert stats["frames_written"] == len(PTS_MS) == len(out_times)
    np.testing.assert_allclose(out_times - out_times[0], np.array(PTS_MS) / 1000.0, atol=1e-3)
    np.testing.assert_allclose(out_levels, in_levels, atol=4.0)  # frame i is still frame i (levels 10 apart)


def test_stage_error_leaves_decodable_video_with_k_frames(video, tmp_path):
    k = 7
    _, in_levels = decode(video)
    source, sink = components(video, tmp_path / "out.mp4")
    with pytest.raises(StageError) as info:
        Pipeline(source, [NoopStage(name="a"), NoopStage(name="bad", fail_at=k)], [sink], device="cpu").run()
    assert (info.value.stage, info.value.frame_index) == ("bad", k)
    times, levels = decode(tmp_path / "out.mp4")
    assert len(times) == k
    np.testing.assert_allclose(levels, in_levels[:k], atol=4.0)


def test_stop_finalizes_video_with_the_frames_written(tmp_path):
    source_cls, sink_cls = source_registry().get("lavfi"), sink_registry().get("video")
    source = source_cls(source_cls.Params(uri="lavfi:testsrc2=size=96x64:rate=25,realtime"))
    sink = sink_cls(sink_cls.Params(path=str(tmp_path / "live.mp4")))
    pipe = Pipeline(source, [NoopStage(name="a")], [sink], device="cpu")
    timer = threading.Timer(0.6, pipe.stop)
    timer.start()
    t0 = time.perf_counter()
    stats = pipe.run()
    timer.join()
    assert time.perf_counter() - t0 < 3.0 and stats["stopped"] == "stop"
    times, _ = decode(tmp_path / "live.mp4")
    assert len(times) == stats["frames_written"] > 0
