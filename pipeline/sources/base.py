"""The source contract. A source is built from its typed params, then (from the source thread):
`open()` -> SourceInfo (raises SourceError with a one-line message naming the file or stream),
`frames(stop_event)` yields Frames in order with `time` from the container's timestamps and
returns promptly once stop_event is set, and `close()` runs whenever open() succeeded."""
from __future__ import annotations

import threading
from typing import Any, ClassVar, Iterator

from ..frame import Frame
from ..params import NoParams
from ..stage import SourceInfo


class Source:
    type_name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    live: ClassVar[bool] = False  # live sources default to the drop_oldest policy

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def open(self) -> SourceInfo:
        raise NotImplementedError

    def frames(self, stop_event: threading.Event) -> Iterator[Frame]:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters for the stats table (decode errors, reconnects, drops at the source)."""
        return {}

    def close(self) -> None:
        pass
