"""CPU detection throughput: YOLOX-Nano through the detect stage (torch via onnx2torch, traced (the
default) and eager, and onnxruntime) at batch 1, 4 and 8, side by side with OpenCV's dnn module on the
same frames, threads pinned; and the motion stage's blob step at 640x360.

    OMP_NUM_THREADS=1 python benchmarks/bench_detect.py [--threads 1] [--frames 16] [--rounds 5]

"stage" = the whole stage (device pre-processing, forward, decode, NMS, boxes to the host);
"net" = the forward pass alone on a prepared batch. OpenCV's row does its own letterbox (cv2), forward,
numpy decode and cv2.dnn.NMSBoxesBatched. Rounds are interleaved across contenders and the median
round is reported (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDPIPE_SHARED", ROOT.parent / "shared"))


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--model", default=str(SHARED / "models/yolox_nano/yolox_nano.onnx"))
    ap.add_argument("--video", default=str(SHARED / "data/videos/pedestrians_towncentre_1080p.mp4"))
    return ap.parse_args()


def read_frames(path: str, n: int):
    import av

    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


class OpenCVYolox:
    """The OpenCV dnn reference: cv2 letterbox, forward, numpy YOLOX decode, NMSBoxesBatched."""

    def __init__(self, model: str, size=416):
        import cv2

        self.cv2, self.size = cv2, size
        self.net = cv2.dnn.readNetFromONNX(model)
        self.batched = True

    def blob(self, images):
        import numpy as np

        cv2, s = self.cv2, self.size
        batch = np.full((len(images), 3, s, s), 114, np.float32)
        ratios = []
        for i, img in enumerate(images):
            r = min(s / img.shape[0], s / img.shape[1])
            nh, nw = int(round(img.shape[0] * r)), int(round(img.shape[1] * r))
            batch[i, :, :nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
            ratios.append(r)
        return batch, ratios

    def forward(self, blob):
        import numpy as np

        if self.batched:
            try:
                self.net.setInput(blob)
                out = self.net.forward()
                if out.shape[0] == blob.shape[0]:
                    return out
            except Exception:  # noqa: BLE001 - the file pins batch 1
                pass
            self.batched = False
        outs = []
        for i in range(blob.shape[0]):
            self.net.setInput(blob[i:i + 1])
            outs.append(self.net.forward())
        return np.concatenate(outs)

    def __call__(self, images, thr=0.3, iou=0.45):
        import numpy as np

        blob, ratios = self.blob(images)
        out = self.forward(blob)
        grids, strides = [], []
        for st in (8, 16, 32):
            ys, xs = np.mgrid[0:self.size // st, 0:self.size // st]
            grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full((xs.size, 1), st))
        grid, stride = np.concatenate(grids), np.concatenate(strides)
        results = []
        for o, r in zip(out, ratios):
            xy = (o[:, :2] + grid) * stride
            wh = np.exp(o[:, 2:4]) * stride
            scores = o[:, 5:] * o[:, 4:5]
            cls, conf = scores.argmax(1), scores.max(1)
            keep = conf >= thr
            boxes = np.concatenate([xy - wh / 2, wh], 1)[keep] / r
            idx = self.cv2.dnn.NMSBoxesBatched(boxes.tolist(), conf[keep].tolist(), cls[keep].tolist(), thr, iou)
            results.append(len(idx))
        return results


def median_fps(times: list[float], n_frames: int) -> float:
    return n_frames / statistics.median(times)


def bench_detect(args, frames) -> list[tuple]:
    import logging
    import threading

    import torch

    from pipeline.frame import Frame
    from pipeline.stage import SourceInfo, StageContext
    from stages.detect import DetectParams, DetectStage
    from stages.detection.preprocess import make_batch

    ctx = StageContext("cpu", SourceInfo("bench", frames[0].shape[1], frames[0].shape[0], 25, False),
                       threading.Event(), logging.getLogger("bench"))
    batches = [int(b) for b in args.batches.split(",")]
    contenders = {}
    for b in batches:
        for name, backend, trace in (("torch eager", "torch", False), ("torch", "torch", True),
                                     ("onnxruntime", "onnxruntime", True)):
            stage = DetectStage(DetectParams(model=args.model, backend=backend, batch=b, trace=trace))
            stage.setup(ctx)
            contenders[(name, b)] = stage
        contenders[("opencv-dnn", b)] = OpenCVYolox(args.model)
    images = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
    stage_t = {k: [] for k in contenders}
    net_t = {k: [] for k in contenders if k[0] != "opencv-dnn"}
    counts = {}
    for _ in range(args.rounds):
        for (name, b), c in contenders.items():
            chunks = [list(range(i, min(i + b, len(frames)))) for i in range(0, len(frames), b)]
            t0 = time.perf_counter()
            n = []
            for idx in chunks:
                if name == "opencv-dnn":
                    n += c([frames[i] for i in idx])
                else:
                    fs = [Frame(i, i / 25, frames[i]) for i in idx]
                    c.process_batch(fs)
                    n += [len(f.detections) for f in fs]
            stage_t[(name, b)].append(time.perf_counter() - t0)
            counts[(name, b)] = sum(n)
            if name != "opencv-dnn":
                xs = [make_batch([images[i] for i in idx], c.input_hw, c.resize, c.rgb, c.scale)[0] for idx in chunks]
                t0 = time.perf_counter()
                for x in xs:
                    c.model(x)
                net_t[(name, b)].append(time.perf_counter() - t0)
    rows = []
    for (name, b) in contenders:
        net = f"{median_fps(net_t[(name, b)], len(frames)):.1f}" if (name, b) in net_t else "-"
        rows.append((name, b, f"{median_fps(stage_t[(name, b)], len(frames)):.1f}", net, counts[(name, b)]))
    return rows


def bench_motion(args) -> tuple[float, float, int]:
    """ms per 640x360 mask for motion_boxes (numpy mask, and a torch CPU mask), on MOG2 masks of the
    street video, and the mean number of boxes."""
    import cv2
    import numpy as np
    import torch

    from stages.detection.blobs import motion_boxes

    masks = []
    mog = cv2.createBackgroundSubtractorMOG2(detectShadows=True)
    for img in read_frames(args.video, 40):
        fg = mog.apply(cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA))
        masks.append(np.where(fg == 255, 255, 0).astype(np.uint8))  # shadows (127) out
    masks = masks[10:]
    n_boxes = [len(motion_boxes(m)[0]) for m in masks]
    out = []
    for ms in (masks, [torch.from_numpy(m) for m in masks]):
        t0 = time.perf_counter()
        for _ in range(5):
            for m in ms:
                motion_boxes(m)
        out.append((time.perf_counter() - t0) / (5 * len(ms)) * 1000)
    return out[0], out[1], round(float(np.mean(n_boxes)))


def main() -> int:
    args = parse()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(ROOT))
    import cv2
    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if not Path(args.model).is_file() or not Path(args.video).is_file():
        print(f"shared data missing ({args.model}, {args.video}); nothing to measure")
        return 0
    frames = read_frames(args.video, args.frames)
    h, w = frames[0].shape[:2]
    print(f"YOLOX-Nano 416, {len(frames)} frames {w}x{h}, {args.threads} thread(s), torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, opencv {cv2.__version__}, median of {args.rounds} rounds")
    print(f"{'backend':<12} {'batch':>5} {'stage fps':>10} {'net fps':>8} {'boxes':>6}")
    for name, b, fps, net, n in bench_detect(args, frames):
        print(f"{name:<12} {b:>5} {fps:>10} {net:>8} {n:>6}")
    host, tensor, boxes = bench_motion(args)
    print(f"motion_boxes 640x360 (MOG2 masks, ~{boxes} boxes): {host:.2f} ms numpy mask, {tensor:.2f} ms torch CPU mask")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
