"""Generated video from an FFmpeg filter graph (PyAV's `lavfi` input), e.g.
`lavfi:testsrc2=size=640x360:rate=30`. Adding `,realtime` paces it at its frame rate, which makes
it a live stand-in (a camera that never waits for the pipeline); without it frames come as fast
as they are generated, which suits soak tests and benchmarks."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator

from ..errors import SourceError
from ..frame import Frame
from ..params import param
from ..stage import SourceInfo
from .avcommon import Decoder, nominal_fps, open_container, video_stream
from .base import Source

PREFIX = "lavfi:"


@dataclass
class LavfiParams:
    uri: str = param(doc="'lavfi:<filter graph>', e.g. 'lavfi:testsrc2=size=640x360:rate=30,realtime'")
    live: bool | None = param(None, doc="treat as a live source (drop_oldest); default: true when the graph has 'realtime'")
    max_pixels: int = param(8192 * 8192, gt=0, doc="reject generated frames with more pixels than this")


def graph_of(uri: str) -> str:
    return uri[len(PREFIX):] if uri.startswith(PREFIX) else uri


class LavfiSource(Source):
    type_name = "lavfi"
    Params = LavfiParams
    live = False

    def __init__(self, params: LavfiParams | None = None) -> None:
        super().__init__(params)
        graph = graph_of(self.params.uri)
        self.live = self.params.live if self.params.live is not None else "realtime" in graph
        self._container = None
        self._decoder: Decoder | None = None
        self._frames_out = 0

    def open(self) -> SourceInfo:
        graph = graph_of(self.params.uri)
        if not graph.strip():
            raise SourceError(f"empty filter graph: {self.params.uri!r} (expected e.g. 'lavfi:testsrc2=size=640x360:rate=30')")
        container = open_container(graph, self.params.uri, format="lavfi")
        try:
            stream = video_stream(container, self.params.uri, self.params.max_pixels)
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._decoder = Decoder(self.params.uri, "0", self.params.max_pixels)
        ctx = stream.codec_context
        return SourceInfo(uri=self.params.uri, width=ctx.width, height=ctx.height, fps=nominal_fps(stream),
                          live=self.live, frame_count=None, time_base=stream.time_base, codec=ctx.name)

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        decoder = self._decoder
        fps = nominal_fps(self._stream)
        for packet in decoder.packets(self._container, self._stream, stop_event):
            for av_frame in decoder.decode(packet):
                frame = decoder.to_frame(av_frame, self._frames_out, fps)
                self._frames_out += 1
                yield frame
                if stop_event.is_set():
                    return

    def stats(self) -> dict:
        return {"frames": self._frames_out}

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
