"""The sink contract. Sinks run in the last thread, in the order the config lists them:
`open(info, context)` once (raises SinkError naming the path), `write(frame)` for every frame
that reached the end of the chain, `close()` whenever open() succeeded: it must finalize the file
(flush the encoder, write the index) so that every frame written so far is kept."""
from __future__ import annotations

from typing import Any, ClassVar

from ..frame import Frame
from ..params import NoParams
from ..stage import SourceInfo, StageContext


class Sink:
    type_name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    reads: ClassVar[frozenset[str]] = frozenset()  # frame fields it needs, checked like a stage's

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def open(self, info: SourceInfo, context: StageContext) -> None:
        raise NotImplementedError

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
