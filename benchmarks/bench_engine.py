"""Engine benchmarks (issue 2), measured side by side in one process, best of --repeats:

1. overhead: the same file through 6 no-op stages (threads + queues) vs a bare sequential
   decode + encode loop with the same source and sink objects; target throughput ratio >= 0.9.
   A raw PyAV loop (no Frame, no sink class) is printed for reference.
2. pipelining: 3 stages of roughly equal GIL-releasing OpenCV work on 720p frames, threaded chain
   vs the same calls in one sequential loop; target >= 1.6x on 2 cores.

    python benchmarks/bench_engine.py [--video sample_videos/street.mp4] [--frames 120] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import Frame, Pipeline, Stage  # noqa: E402
from pipeline.registry import sink_registry, source_registry  # noqa: E402
from pipeline.sinks.base import Sink  # noqa: E402
from pipeline.sources.base import Source  # noqa: E402
from pipeline.stage import SourceInfo  # noqa: E402


class NoopStage(Stage):
    type_name = "noop"

    def process(self, frame):
        return frame


def _file_source(path):
    cls = source_registry().get("file")
    return cls(cls.Params(uri=str(path)))


def _video_sink(path):
    cls = sink_registry().get("video")
    return cls(cls.Params(path=str(path), preset="ultrafast"))


def bare_loop(video, out) -> int:
    """Decode + encode with the same source and sink objects, sequentially, no threads."""
    src, sink = _file_source(video), _video_sink(out)
    info = src.open()
    sink.open(info, None)
    n = 0
    for frame in src.frames(threading.Event()):
        sink.write(frame)
        n += 1
    sink.close()
    src.close()
    return n


def raw_pyav_loop(video, out) -> int:
    import av

    n = 0
    with av.open(str(video)) as inp, av.open(str(out), "w") as outp:
        sin = inp.streams.video[0]
        sin.thread_type = "AUTO"
        sout = outp.add_stream("libx264", rate=sin.average_rate or 30)
        sout.width, sout.height, sout.pix_fmt = sin.codec_context.width, sin.codec_context.height, "yuv420p"
        sout.codec_context.options = {"preset": "ultrafast", "crf": "23"}
        for frame in inp.decode(sin):
            image = frame.to_ndarray(format="bgr24")
            vf = av.VideoFrame.from_ndarray(image, format="bgr24")
            outp.mux(sout.encode(vf))
            n += 1
        outp.mux(sout.encode(None))
    return n


def engine(video, out, n_stages=6) -> dict:
    stages = [NoopStage(name=f"noop{i}") for i in range(n_stages)]
    return Pipeline(_file_source(video), stages, [_video_sink(out)], device="cpu").run()


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def bench_overhead(video, repeats):
    rows = {"raw PyAV loop": [], "bare loop (same source/sink)": [], "engine, 6 no-op stages": []}
    frames = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):  # interleaved so that machine noise hits every variant alike
            dt, n = timed(raw_pyav_loop, video, Path(tmp) / "raw.mp4")
            rows["raw PyAV loop"].append(n / dt)
            dt, n = timed(bare_loop, video, Path(tmp) / "bare.mp4")
            rows["bare loop (same source/sink)"].append(n / dt)
            dt, stats = timed(engine, video, Path(tmp) / "engine.mp4")
            rows["engine, 6 no-op stages"].append(stats["frames_written"] / dt)
            frames = n
    return frames, {k: max(v) for k, v in rows.items()}


# ---- pipelining ----
class MemorySource(Source):
    """Pre-made 720p frames, so that the source costs nothing."""

    type_name = "memory"

    def __init__(self, images, count):
        super().__init__()
        self.images, self.count = images, count

    def open(self):
        h, w = self.images[0].shape[:2]
        return SourceInfo("memory", w, h, 30.0, False, self.count)

    def frames(self, stop_event):
        for i in range(self.count):
            if stop_event.is_set():
                return
            yield Frame(i, i / 30.0, self.images[i % len(self.images)])


class NullSink(Sink):
    type_name = "null"

    def open(self, info, context):
        self.checksum = 0

    def write(self, frame):
        self.checksum += int(frame.image[0, 0, 0])


def blur(image):
    return cv2.GaussianBlur(image, (0, 0), 3.0)


def box(image):
    return cv2.boxFilter(image, -1, (31, 31))


def erode(image):
    return cv2.erode(image, np.ones((5, 5), np.uint8))


class CvStage(Stage):
    """Applies one OpenCV filter `reps` times (OpenCV releases the GIL inside each call)."""

    type_name = "cv"

    def __init__(self, fn, reps):
        super().__init__(name=fn.__name__)
        self.fn, self.reps = fn, reps

    def process(self, frame):
        frame.set_image(repeat(self.fn, self.reps, frame.image))
        return frame


def repeat(fn, reps, image):
    for _ in range(reps):
        image = fn(image)
    return image


def bench_pipelining(frames, repeats):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(4)]
    fns = (blur, box, erode)
    def cost(fn, r):
        return min(timed(repeat, fn, r, images[0])[0] for _ in range(7))

    one = {fn: cost(fn, 1) for fn in fns}
    target = max(0.006, *one.values())  # roughly equal work: repeat each filter to ~6 ms
    reps = {fn: max(1, round(target / t)) for fn, t in one.items()}
    reps = {fn: max(1, round(r * target / cost(fn, r))) for fn, r in reps.items()}  # a second pass
    per_op = {f"{fn.__name__} x{reps[fn]}": cost(fn, reps[fn]) * 1000 for fn in fns}
    seq, thr = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        check_seq = 0
        for i in range(frames):
            image = images[i % len(images)]
            for fn in fns:
                image = repeat(fn, reps[fn], image)
            check_seq += int(image[0, 0, 0])
        seq.append(frames / (time.perf_counter() - t0))
        sink = NullSink()
        t0 = time.perf_counter()
        Pipeline(MemorySource(images, frames), [CvStage(fn, reps[fn]) for fn in fns], [sink], device="cpu").run()
        thr.append(frames / (time.perf_counter() - t0))
        assert sink.checksum == check_seq, "threaded and sequential results differ"
    return per_op, max(seq), max(thr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(ROOT / "sample_videos" / "street.mp4"))
    parser.add_argument("--frames", type=int, default=120, help="720p frames for the pipelining benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # one core per OpenCV call: the parallelism measured is the pipeline's own
    print(f"cpu cores: {os.cpu_count()}, OpenCV threads: {cv2.getNumThreads()}")

    n, fps = bench_overhead(args.video, args.repeats)
    base = fps["bare loop (same source/sink)"]
    print(f"\n1. engine overhead: {args.video} ({n} frames), best of {args.repeats}")
    print(f"{'variant':32s} {'fps':>8s} {'vs bare':>8s}")
    for name, value in fps.items():
        print(f"{name:32s} {value:8.1f} {value / base:8.2f}")
    ratio = fps["engine, 6 no-op stages"] / base
    print(f"ratio engine / bare loop: {ratio:.2f} (target >= 0.9)")

    per_op, seq, thr = bench_pipelining(args.frames, args.repeats)
    print(f"\n2. pipelining: 3 OpenCV stages on 1280x720, {args.frames} frames, best of {args.repeats}")
    print("per-stage ms: " + ", ".join(f"{k} {v:.1f}" for k, v in per_op.items()))
    print(f"{'variant':32s} {'fps':>8s}")
    print(f"{'sequential loop':32s} {seq:8.1f}")
    print(f"{'threaded chain':32s} {thr:8.1f}")
    print(f"speed-up threaded / sequential: {thr / seq:.2f}x (target >= 1.6x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
