"""MOTChallenge text files, read and written. The only place where MOT's conventions are converted:

    file:   frame (1-based), id, bb_left, bb_top, bb_width, bb_height, score, x, y, z   (comma separated)
    memory: frame index (0-based) -> Detections (xyxy pixels, track_id, score)

Box coordinates are kept as they are (pixels, top-left origin), as SORT and the MOT devkit do:
only the frame number shifts by one and xywh <-> xyxy. Ids of -1 (detection files) mean "no
track": a file whose ids are all -1 reads back with `track_id=None`. Columns after the 7th
(world x, y, z in MOT15; class and visibility in MOT16+ ground truth) are kept as
`Detections.data["extra"]` (N, k) float32 when present.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

from .frame import Detections

MOT_COLUMNS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "score", "x", "y", "z")


def parse_mot(text: str, name: str = "<text>") -> np.ndarray:
    """Rows of a MOT file as a float64 (N, k >= 7) array; ValueError naming the line if malformed."""
    rows, width = [], None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{name}:{number}: not numbers: {line!r}") from None
        if len(values) < 7:
            raise ValueError(f"{name}:{number}: expected at least 7 columns (frame,id,x,y,w,h,score), got {len(values)}")
        width = len(values) if width is None else min(width, len(values))
        rows.append(values)
    if not rows:
        return np.zeros((0, 7), np.float64)
    return np.array([r[:width] for r in rows], np.float64)


def rows_to_detections(rows: np.ndarray) -> dict[int, Detections]:
    """(N, k) MOT rows -> {0-based frame index: Detections}, frames in ascending order."""
    out: dict[int, Detections] = {}
    if len(rows) == 0:
        return out
    frames = rows[:, 0].astype(np.int64) - 1
    has_ids = bool(np.any(rows[:, 1] != -1))
    for f in np.unique(frames):
        r = rows[frames == f]
        xywh = r[:, 2:6].astype(np.float32)
        data = {"extra": r[:, 7:].astype(np.float32)} if r.shape[1] > 7 else {}
        out[int(f)] = Detections.from_xywh(xywh, r[:, 6], np.zeros(len(r), np.int32),
                                           track_id=r[:, 1].astype(np.int64) if has_ids else None, data=data)
    return out


def read_mot(path) -> dict[int, Detections]:
    """A MOT file as {0-based frame index: Detections}; frames without rows are absent
    (use `.get(i, Detections.empty())`)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        return rows_to_detections(parse_mot(f.read(), path))


def mot_lines(frame_index: int, detections: Detections | None) -> list[str]:
    """The MOT lines for one 0-based frame (id -1 when the detections carry no track ids)."""
    if detections is None or len(detections) == 0:
        return []
    xywh = detections.xywh
    ids = detections.track_id if detections.track_id is not None else np.full(len(detections), -1)
    frame = int(frame_index) + 1
    return [f"{frame},{int(i)},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{float(s):.6g},-1,-1,-1"
            for i, b, s in zip(ids, xywh, detections.score)]


def write_mot(path, rows: Mapping[int, Detections] | Iterable[tuple[int, Detections]]) -> int:
    """Write {0-based frame index: Detections} (or (index, Detections) pairs) as a MOT file,
    frames in ascending order. Returns the number of lines written."""
    items = rows.items() if isinstance(rows, Mapping) else rows
    lines = [line for index, dets in sorted(items, key=lambda kv: kv[0]) for line in mot_lines(index, dets)]
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return len(lines)
