"""What the annotated-video sink costs per frame: picture -> yuv420p conversion + H.264 encoding,
CPU of all threads (x264's included) and wall, file size and luma PSNR against the source, at
640x360 (the bundled street sample) and 1920x1080 (the Town Centre clip in ../shared, when there).

Variants, interleaved in one process: `swscale veryfast` (before: bgr24 frames converted by
FFmpeg's swscale inside PyAV, the fixed veryfast preset), `opencv veryfast` (the picture converted
by OpenCV's BGR -> I420), `opencv auto` (the default now: the preset picked by picture size).

    OMP_NUM_THREADS=1 python benchmarks/bench_video_sink.py [--frames 96] [--repeats 3]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.frame import Frame  # noqa: E402
from pipeline.sinks.video import VideoParams, VideoSink  # noqa: E402
from pipeline.stage import SourceInfo  # noqa: E402

SHARED = Path(os.environ.get("VIDPIPE_SHARED", ROOT.parent / "shared"))
CLIPS = {"640x360": ROOT / "sample_videos" / "street.mp4",
         "1920x1080": SHARED / "data" / "videos" / "pedestrians_towncentre_1080p.mp4"}


class SwscaleSink(VideoSink):
    """The sink as it was: bgr24 frames, converted by the encoder's swscale."""

    def _video_frame(self, picture):
        import av

        return av.VideoFrame.from_ndarray(picture, format="bgr24")


VARIANTS = {"swscale veryfast": (SwscaleSink, "veryfast"), "opencv veryfast": (VideoSink, "veryfast"),
            "opencv auto": (VideoSink, "auto")}


def decode(path: Path, n: int, fmt: str) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        return [f.to_ndarray(format=fmt) for _, f in zip(range(n), c.decode(stream))]


def run(cls, preset: str, pictures, out: Path) -> dict:
    h, w = pictures[0].shape[:2]
    sink = cls(VideoParams(path=str(out), preset=preset))
    sink.open(SourceInfo(uri="bench", width=w, height=h, fps=25.0, live=False), None)
    cpu, wall = time.process_time(), time.perf_counter()
    for i, picture in enumerate(pictures):
        sink.write(Frame(i, i / 25, picture))
    sink.close()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu": 1000 * cpu / len(pictures), "wall": 1000 * wall / len(pictures), "mb": out.stat().st_size / 1e6,
            "preset": sink.summary().get("preset")}


def psnr(path: Path, truth_y: list[np.ndarray]) -> float:
    got = decode(path, len(truth_y), "yuv420p")
    h = truth_y[0].shape[0] * 2 // 3
    mse = np.mean([np.mean((a[:h].astype(np.float64) - b[:h]) ** 2) for a, b in zip(truth_y, got)])
    return 10 * np.log10(255 ** 2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'size':<10} {'variant':<17} {'preset':<10} {'cpu ms':>7} {'wall ms':>8} {'MB':>6} {'Y PSNR':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size, clip in CLIPS.items():
            if not clip.exists():
                print(f"{size:<10} skipped: {clip} not found")
                continue
            pictures = decode(clip, args.frames, "bgr24")
            truth_y = decode(clip, args.frames, "yuv420p")
            results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
            for r in range(args.repeats):
                for name, (cls, preset) in VARIANTS.items():
                    results[name].append(run(cls, preset, pictures, Path(tmp) / f"{name.replace(' ', '_')}.mp4"))
            for name in VARIANTS:
                rows = results[name]
                quality = psnr(Path(tmp) / f"{name.replace(' ', '_')}.mp4", truth_y)
                print(f"{size:<10} {name:<17} {rows[0]['preset']:<10} {statistics.median(x['cpu'] for x in rows):>7.2f} "
                      f"{statistics.median(x['wall'] for x in rows):>8.2f} {rows[0]['mb']:>6.2f} {quality:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
