"""GPU detection throughput for a lent CUDA machine: YOLOX-Nano through the detect stage (torch
backend via onnx2torch) on 1080p frames, fp16 and fp32, batch 1..64; decode excluded (frames already
on the GPU) and included (PyAV decoding in a thread feeding the stage, as the runner does). Prints
one compact table; finishes in well under 3 minutes.

    VIDPIPE_SHARED=/path/to/shared VIDPIPE_ONNX2TORCH=/path/to/onnx2torch-1.5.15-py3-none-any.whl \\
        python3 benchmarks/gpu_detect.py [--batches 1,2,4,8,16,32,64] [--seconds 1.0]

VIDPIPE_ONNX2TORCH may name a wheel (pure Python, imported from the zip), a folder holding one, or a
site folder; without onnx2torch the torch rows are skipped (onnxruntime rows still run when it has CUDA).
Without PyAV the decode-included rows are skipped and frames are read with OpenCV.
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDPIPE_SHARED", ROOT.parent / "shared"))


def add_onnx2torch_path() -> str:
    """Put VIDPIPE_ONNX2TORCH on sys.path; return where onnx2torch comes from, or why it cannot."""
    spec = os.environ.get("VIDPIPE_ONNX2TORCH")
    if spec:
        p = Path(spec)
        if p.is_dir() and not (p / "onnx2torch").is_dir():
            wheels = sorted(p.glob("onnx2torch-*.whl"))
            p = wheels[-1] if wheels else p
        sys.path.insert(0, str(p))
    try:
        from stages.detection.backends import import_onnx2torch

        return str(Path(import_onnx2torch().__file__).parent)
    except ImportError as exc:
        return f"unavailable ({exc})"


def read_frames(path: str, n: int):
    try:
        import av

        with av.open(path) as container:
            container.streams.video[0].thread_type = "AUTO"
            out = []
            for frame in container.decode(video=0):
                out.append(frame.to_ndarray(format="bgr24"))
                if len(out) == n:
                    return out
            return out
    except ImportError:
        import cv2

        cap, out = cv2.VideoCapture(path), []
        while len(out) < n:
            ok, img = cap.read()
            if not ok:
                break
            out.append(img)
        cap.release()
        return out


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_stage(model: str, backend: str, half: bool, device: str = "cuda", graphs: bool = False,
               trace: bool = True):
    import logging

    from pipeline.stage import SourceInfo, StageContext
    from stages.detect import DetectParams, DetectStage

    stage = DetectStage(DetectParams(model=model, backend=backend, half=half, device=device, batch=1,
                                     cuda_graphs=graphs, trace=trace))
    stage.setup(StageContext(device, SourceInfo("bench", 1920, 1080, 25, False), threading.Event(),
                             logging.getLogger("bench")))
    return stage


def timed(fn, seconds: float, min_iters: int = 3) -> float:
    """Seconds per call (synchronized), after two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    sync()
    return (time.perf_counter() - t0) / n


def stage_fps(stage, tensors, b: int, seconds: float) -> tuple[float, float, int]:
    """(stage fps, net-only fps, boxes in the first frame) with frames already on the GPU."""
    from pipeline.frame import Frame
    from stages.detection.preprocess import make_batch

    picks = [tensors[i % len(tensors)] for i in range(b)]

    def run():
        frames = [Frame(i, i / 25, t) for i, t in enumerate(picks)]
        stage.process_batch(frames)
        return frames

    n_boxes = len(run()[0].detections)
    per = timed(run, seconds)
    x, _ = make_batch(picks, stage.input_hw, stage.resize, stage.rgb, stage.scale, dtype=stage.model.dtype)
    net = timed(lambda: stage.model(x), seconds)
    return b / per, b / net, n_boxes


def decode_included_fps(stage, video: str, b: int, n_frames: int) -> float:
    """Frames/s of PyAV decoding (a thread, bounded queue) feeding the stage in batches of b."""
    import av

    from pipeline.frame import Frame

    q: queue.Queue = queue.Queue(maxsize=2 * b + 8)

    def decode():
        i = 0
        while i < n_frames:
            with av.open(video) as container:
                container.streams.video[0].thread_type = "AUTO"
                for frame in container.decode(video=0):
                    q.put(Frame(i, i / 25, frame.to_ndarray(format="bgr24")))
                    i += 1
                    if i == n_frames:
                        break
        q.put(None)

    worker = threading.Thread(target=decode, daemon=True)
    t0 = time.perf_counter()
    worker.start()
    done, batch = 0, []
    while True:
        item = q.get()
        if item is not None:
            batch.append(item)
        if batch and (len(batch) == b or item is None):
            stage.process_batch(batch)
            done += len(batch)
            batch = []
        if item is None:
            break
    worker.join()
    return done / (time.perf_counter() - t0)


def decode_only_fps(video: str, n_frames: int) -> float:
    import av

    t0, i = time.perf_counter(), 0
    while i < n_frames:
        with av.open(video) as container:
            container.streams.video[0].thread_type = "AUTO"
            for frame in container.decode(video=0):
                frame.to_ndarray(format="bgr24")
                i += 1
                if i == n_frames:
                    break
    return i / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models/yolox_nano/yolox_nano.onnx"))
    ap.add_argument("--video", default=str(SHARED / "data/videos/pedestrians_towncentre_1080p.mp4"))
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per cell (after warm-up)")
    ap.add_argument("--decode-frames", type=int, default=256, help="frames per decode-included cell")
    ap.add_argument("--device", default="cuda", help="cuda (cpu only to check the script itself)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    if not Path(args.model).is_file() or not Path(args.video).is_file():
        print(f"missing {args.model} or {args.video} (set VIDPIPE_SHARED)")
        return 0
    torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    origin = add_onnx2torch_path()
    try:
        import av  # noqa: F401
        has_av = True
    except ImportError:
        has_av = False
    batches = [int(b) for b in args.batches.split(",")]
    frames = read_frames(args.video, 64)
    tensors = [torch.from_numpy(f).permute(2, 0, 1).contiguous().to(args.device) for f in frames]
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU (script check)"
    print(f"{name}, torch {torch.__version__}, onnx2torch: {origin}, "
          f"PyAV: {'yes' if has_av else 'no (decode rows skipped)'}; YOLOX-Nano 416, {len(frames)} distinct "
          f"{frames[0].shape[1]}x{frames[0].shape[0]} frames")
    rows = []
    contenders = []
    if not origin.startswith("unavailable"):
        contenders += [("torch fp16", "torch", True, False, True), ("torch fp16 eager", "torch", True, False, False),
                       ("torch fp32", "torch", False, False, True)]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() or not args.device.startswith("cuda"):
        contenders.append(("ort cuda fp32", "onnxruntime", False, False, True))
    for label, backend, half, graphs, trace in contenders:   # torch rows traced (detect.trace) unless "eager"
        stage = make_stage(args.model, backend, half, args.device, graphs, trace)
        if graphs and not stage.info["cuda_graphs"]:
            why = stage.model.graphed.failure if stage.model.graphed else "not on CUDA"
            print(f"  {label}: no CUDA graph ({why})")
        elif graphs:
            stage.model.graphed.max_shapes = 16  # one graph per batch size measured
        for b in batches:
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            fps, net, n_boxes = stage_fps(stage, tensors, b, args.seconds)
            mem = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
            dec = decode_included_fps(stage, args.video, b, args.decode_frames) if has_av and label in (
                "torch fp16", "ort cuda fp32") else None
            rows.append((label, b, fps, net, dec, mem, n_boxes))
            print(f"  {label:<16} b={b:<3} stage {fps:8.1f} fps  net {net:8.1f} fps"
                  + (f"  decode+stage {dec:6.1f} fps" if dec else "") + f"  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    dec_only = decode_only_fps(args.video, args.decode_frames) if has_av else None
    print()
    print("| backend | batch | stage fps (decode excluded) | net-only fps | decode+stage fps | peak MiB | boxes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, b, fps, net, dec, mem, n in rows:
        print(f"| {label} | {b} | {fps:.0f} | {net:.0f} | {f'{dec:.0f}' if dec else '-'} | {mem:.0f} | {n} |")
    if dec_only:
        print(f"\nPyAV decode alone (1080p H.264, thread_type AUTO, to BGR): {dec_only:.0f} fps")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
