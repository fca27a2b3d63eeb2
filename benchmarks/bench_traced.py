"""Eager vs traced (pipeline.traced): the flow stage's Horn-Schunck at its working size and the
background stage's torch model, per frame, alone and next to a thread that runs Python (the GIL).

    OMP_NUM_THREADS=1 python benchmarks/bench_traced.py [--frames 150]

Prints ms per frame (wall; the stage's thread). 'next to Python' runs a thread that alternates short
Python bursts with GIL-releasing sleeps, as the other stage threads of a pipeline do: every small op
of an eager stage waits for the GIL behind it, a traced step waits once.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def python_neighbour(stop: threading.Event) -> None:
    while not stop.is_set():
        x = 0
        for i in range(300):
            x += i
        time.sleep(0)


def timed(fn, frames: int, neighbour: bool) -> float:
    stop = threading.Event()
    other = threading.Thread(target=python_neighbour, args=(stop,)) if neighbour else None
    if other:
        other.start()
    t = time.perf_counter()
    for i in range(frames):
        fn(i)
    dt = (time.perf_counter() - t) / frames * 1e3
    stop.set()
    if other:
        other.join()
    return dt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import av
    import numpy as np
    import torch

    from pipeline.frame import Frame
    from pipeline.params import build_or_raise
    from pipeline.stage import SourceInfo, StageContext
    from pipeline.traced import TracedCall
    from stages.background import BackgroundStage
    from stages.flow import HornSchunckParams
    from stages.opticalflow.methods import torch_flow

    torch.set_num_threads(1)
    with av.open(str(ROOT / "sample_videos" / "street.mp4")) as c:
        images = [f.to_ndarray(format="bgr24") for _, f in zip(range(args.frames + 20), c.decode(video=0))]
    import cv2

    greys = [torch.from_numpy(cv2.resize(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), (160, 90),
                                         interpolation=cv2.INTER_AREA)).float()[None, None] for im in images]
    params = vars(HornSchunckParams())

    def flow_runner(trace: bool):
        call = TracedCall(lambda a, b, f0: torch_flow("horn_schunck", a, b, f0, **params), "flow", enabled=trace)
        state = {"flow": None}

        def step(i):
            with torch.inference_mode():
                state["flow"] = call(greys[i], greys[i + 1], state["flow"])
        for i in range(5):
            step(i)
        return step

    def background_runner(trace: bool):
        stage = BackgroundStage(build_or_raise(BackgroundStage.Params, {"trace": trace}, "background"))
        stage.setup(StageContext("cpu", SourceInfo("street", 640, 360, 30.0, False), threading.Event(),
                                 logging.getLogger("bench")))
        for i in range(5):
            stage.process(Frame(i, 0.0, images[i]))
        return lambda i: stage.process(Frame(i, 0.0, images[i]))

    rows = []
    for name, make in (("flow horn_schunck 160x90", flow_runner), ("background torch 640x360", background_runner)):
        for neighbour in (False, True):
            best = {}
            for _ in range(args.repeats):
                for trace in (False, True):
                    fn = make(trace)
                    ms = timed(fn, args.frames, neighbour)
                    best[trace] = min(best.get(trace, np.inf), ms)
            rows.append((name, "next to Python" if neighbour else "alone", best[False], best[True]))
    print(f"{'kernel':<26}{'setting':<16}{'eager ms':>10}{'traced ms':>11}{'eager/traced':>14}")
    for name, setting, eager, traced in rows:
        print(f"{name:<26}{setting:<16}{eager:>10.2f}{traced:>11.2f}{eager / traced:>13.2f}x")
    print(f"(best of {args.repeats}, {args.frames} frames each; load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
