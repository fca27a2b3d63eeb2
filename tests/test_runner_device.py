"""The runner with device stages (`--device cuda` on a GPU machine; the same chain runs on the CPU
elsewhere): each stage thread on its own CUDA stream, so the hand-over between stages must be
ordered (the next stage reads finished tensors) and no replaced tensor may be reused while a kernel
still reads it. Slow, long kernel chains make a missing synchronization show as wrong pixels."""
from __future__ import annotations

import pytest
from fakes import FakeSource

from pipeline.api import Pipeline
from pipeline.stage import Stage

torch = pytest.importorskip("torch")


class Brighten(Stage):
    """image + 1 on the device, through `rounds` heavy no-op matrix products first (a slow kernel
    queue), then set_image(tensor): the old upload is dropped here, the new one handed on."""

    type_name = "brighten"

    def __init__(self, name: str, device: str, rounds: int = 8) -> None:
        super().__init__(None, name)
        self.device, self.rounds = device, rounds
        self.streams: set = set()

    def process(self, frame):
        img = frame.image_tensor(self.device)
        if self.device.startswith("cuda"):
            self.streams.add(torch.cuda.current_stream().cuda_stream)
            m = torch.randn(512, 512, device=self.device)
            for _ in range(self.rounds):
                m = (m @ m).clamp_(-1, 1)
            img = img + (m.sum() * 0).to(torch.uint8)  # depends on the slow chain
        frame.set_image((img.int() + 1).clamp_(0, 255).to(torch.uint8))
        return frame


class Record(Stage):
    type_name = "record"

    def __init__(self) -> None:
        super().__init__(None, "record")
        self.values: list[tuple[int, int, int]] = []

    def process(self, frame):
        host = frame.image  # one copy back
        self.values.append((frame.index, int(host.min()), int(host.max())))
        return frame


@pytest.mark.parametrize("streams", [True, False])
def test_device_chain_hands_over_finished_tensors(device, streams):
    stages = [Brighten("a", device), Brighten("b", device), Brighten("c", device), Record()]
    source = FakeSource(count=24, width=160, height=120)
    stats = Pipeline(source, stages, device=device, queue_size=2, cuda_streams=streams, print_stats=False).run()
    assert stats["frames_written"] == 24
    # frame i is grey level i everywhere; three stages added 1 each
    assert stages[-1].values == [(i, i + 3, i + 3) for i in range(24)]
    if device.startswith("cuda") and streams:
        used = [next(iter(s.streams)) for s in stages[:3]]
        assert len(set(used)) == 3 and all(len(s.streams) == 1 for s in stages[:3])
        default = torch.cuda.default_stream().cuda_stream
        assert default not in used


def test_stage_threads_and_streams_are_settings():
    from pipeline.config import from_dict

    cfg = from_dict({"source": "x.mp4", "pipeline": {"stage_threads": 2, "cuda_streams": False},
                     "stages": ["annotate"]})
    assert cfg.settings.stage_threads == 2 and cfg.settings.cuda_streams is False
    with pytest.raises(Exception, match="stage_threads"):
        from_dict({"source": "x.mp4", "pipeline": {"stage_threads": -1}, "stages": ["annotate"]})


def test_each_stage_thread_gets_stage_threads():
    seen = {}

    class Probe(Stage):
        type_name = "probe"

        def process(self, frame):
            seen[self.name] = torch.get_num_threads()
            return frame

    before = torch.get_num_threads()
    Pipeline(FakeSource(count=3), [Probe(None, "p1"), Probe(None, "p2")], stage_threads=1, print_stats=False).run()
    assert seen == {"p1": 1, "p2": 1}
    assert torch.get_num_threads() == before  # the caller's own count is untouched
