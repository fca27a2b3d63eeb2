"""Writers and loaders for the generated scenes (numpy only at import; PyAV and OpenCV on use).

File formats (see sample_videos/README.md):
- `<name>.mp4`: H.264 yuv420p, constant frame rate, pts = frame index in a 1/fps time base.
- `<name>.gt.txt` (street): MOT16-like rows `frame,id,x,y,w,h,1,1,visibility`, frames 1-based,
  box = the figure's full (unclipped) pixel extent, x/y top-left, 3 decimals.
- `<name>.activity.csv` (street): header `frame,id,label`, frames 1-based (as gt.txt).
- `<name>.json`: scene meta (seed, size, fps, n_frames, version, camera, figure paths, lines).
- `<name>.corners.npz` (billboard): corners (T,4,2) float32 clockwise from top-left,
  frame_from_ref (T,3,3) float64, reference = frame 0. `<name>.masks.npz`: packed bool masks.
- Middlebury flow pairs: `<dir>/frame10.png`, `frame11.png`, `flow10.flo`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_videos"
FLO_TAG = 202021.25


def sample_path(name: str) -> Path:
    """Path of a committed sample in sample_videos/ (e.g. "street" -> sample_videos/street.mp4;
    "flow" -> the sample_videos/flow folder; a name with a suffix is taken as a file name)."""
    p = SAMPLES / name
    if p.suffix or p.is_dir():
        return p
    return p.with_suffix(".mp4")


def _stem(path_or_name) -> Path:
    """`street`, `street.mp4`, `/x/street.json`, `/x/street` -> /x/street (no suffix)."""
    p = Path(path_or_name)
    if len(p.parts) == 1 and not p.exists():
        p = SAMPLES / p
    name = p.name
    for suffix in (".gt.txt", ".activity.csv", ".corners.npz", ".masks.npz", ".mp4", ".json"):
        if name.endswith(suffix):
            return p.with_name(name[: -len(suffix)])
    return p


# ---------------------------------------------------------------- video
class VideoWriter:
    """H.264 writer through PyAV: `with VideoWriter(path, w, h, fps) as vw: vw.write(bgr)`.
    Constant frame rate; frame i has pts i in time base 1/fps."""

    def __init__(self, path, width: int, height: int, fps: int = 30, crf: int = 18, preset: str = "medium"):
        import av

        self._av = av
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=int(fps))
        self.stream.width, self.stream.height = int(width), int(height)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": preset}
        self.stream.codec_context.time_base = __import__("fractions").Fraction(1, int(fps))
        self.stream.thread_type = "AUTO"
        self.count = 0

    def write(self, bgr: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = self.count
        self.count += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            self.container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_video(path) -> list[np.ndarray]:
    """All frames of a video as BGR uint8 arrays (for tests and small samples)."""
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


# ---------------------------------------------------------------- flow (.flo, Middlebury)
def write_flo(path, flow: np.ndarray) -> None:
    """Middlebury .flo. Convention: flow (H,W,2) float32, channel 0 = u = dx, 1 = v = dy."""
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow: expected (H,W,2), got {flow.shape}")
    h, w = flow.shape[:2]
    with open(path, "wb") as f:
        np.asarray([FLO_TAG], "<f4").tofile(f)
        np.asarray([w, h], "<i4").tofile(f)
        flow.astype("<f4").tofile(f)


def read_flo(path) -> np.ndarray:
    """Read a Middlebury .flo -> (H,W,2) float32 (u=dx, v=dy); unknown flow stays > 1e9."""
    with open(path, "rb") as f:
        tag = np.fromfile(f, "<f4", 1)
        if tag.size != 1 or tag[0] != np.float32(FLO_TAG):
            raise ValueError(f"{path}: not a .flo file (bad tag)")
        w, h = (int(v) for v in np.fromfile(f, "<i4", 2))
        data = np.fromfile(f, "<f4", 2 * w * h)
    if data.size != 2 * w * h:
        raise ValueError(f"{path}: truncated .flo ({data.size} of {2 * w * h} floats)")
    return data.reshape(h, w, 2).astype(np.float32)


def load_flow_pair(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(img1 BGR, img2 BGR, flow (H,W,2) float32) from a Middlebury-layout folder."""
    import cv2

    d = Path(path)
    img1 = cv2.imread(str(d / "frame10.png"), cv2.IMREAD_COLOR)
    img2 = cv2.imread(str(d / "frame11.png"), cv2.IMREAD_COLOR)
    if img1 is None or img2 is None:
        raise FileNotFoundError(f"{d}: frame10.png / frame11.png missing")
    return img1, img2, read_flo(d / "flow10.flo")


# ---------------------------------------------------------------- street truth
@dataclass
class FrameTruth:
    """Ground truth of one frame. Convention: ids (N,) int64 (1-based figure ids); boxes (N,4)
    float32 xyxy of the full figure extent (may extend beyond the image); boxes_clipped the same
    clipped to the image; visibility (N,) float32 = visible / full pixels (nearer figures and the
    image border hide pixels); labels: activity per row. Box edges are pixel edges: a box
    (x1,y1,x2,y2) covers pixel columns x1..x2-1. masks (in-memory only): per row (x0, y0, bool
    patch) of the figure's full pixel mask, patch top-left at image pixel (x0, y0)."""

    ids: np.ndarray
    boxes: np.ndarray
    boxes_clipped: np.ndarray
    visibility: np.ndarray
    labels: list
    masks: list | None = None
    feet: np.ndarray | None = None  # (N,2) float32 ground contact points (from the path)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class StreetTruth:
    """Ground truth of a street clip: `frames[t]` (0-based) is a FrameTruth."""

    frames: list
    n_frames: int
    fps: float
    size: tuple  # (width, height)
    video_path: Path | None
    lines: list
    meta: dict = field(default_factory=dict)

    def track(self, fid: int) -> dict[int, np.ndarray]:
        """{frame index: box xyxy} of one figure."""
        out = {}
        for t, fr in enumerate(self.frames):
            hit = np.nonzero(fr.ids == fid)[0]
            if hit.size:
                out[t] = fr.boxes[hit[0]]
        return out


def format_mot_rows(rows) -> str:
    """rows: (frame0, id, x1, y1, x2, y2, visibility) -> MOT16-like text, frames 1-based."""
    return "".join(f"{t + 1},{i},{x1:.3f},{y1:.3f},{x2 - x1:.3f},{y2 - y1:.3f},1,1,{v:.3f}\n"
                   for t, i, x1, y1, x2, y2, v in rows)


def load_street(path_or_name="street") -> StreetTruth:
    """Load a street scene's ground truth (`street`, `x/street.mp4`, `x/street.json`, ...)."""
    stem = _stem(path_or_name)
    meta = json.loads(stem.with_suffix(".json").read_text())
    n, (w, h) = int(meta["n_frames"]), meta["size"]
    gt = np.loadtxt(f"{stem}.gt.txt", delimiter=",", ndmin=2) if Path(f"{stem}.gt.txt").stat().st_size else np.zeros((0, 9))
    labels = {}
    for line in Path(f"{stem}.activity.csv").read_text().splitlines()[1:]:
        t, i, lab = line.split(",")
        labels[(int(t) - 1, int(i))] = lab
    frames = []
    for t in range(n):
        rows = gt[gt[:, 0] == t + 1]
        ids = rows[:, 1].astype(np.int64)
        boxes = np.stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]], 1).astype(np.float32)
        clipped = np.clip(boxes, 0, np.asarray([w, h, w, h], np.float32))
        frames.append(FrameTruth(ids, boxes.reshape(-1, 4), clipped.reshape(-1, 4), rows[:, 8].astype(np.float32),
                                 [labels.get((t, int(i)), "") for i in ids], feet=path_feet(meta, t, ids)))
    video = stem.with_suffix(".mp4")
    return StreetTruth(frames, n, float(meta["fps"]), (int(w), int(h)), video if video.exists() else None,
                       meta.get("lines", []), meta)


# ---------------------------------------------------------------- line crossings
def line_side(p1, p2, pts: np.ndarray) -> np.ndarray:
    """Sign side of points w.r.t. the directed line p1->p2: cross(p2-p1, p-p1) > 0 (y down: the
    right-hand side when looking from p1 to p2 on screen)."""
    p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    d = p2 - p1
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return d[0] * (pts[:, 1] - p1[1]) - d[1] * (pts[:, 0] - p1[0]) > 0


def count_crossings(tracks: dict, p1, p2) -> dict[str, int]:
    """Crossings of the segment p1-p2 by foot-point tracks ({id: (T_i,2) points of consecutive
    frames}): a step p(t)->p(t+1) counts when the side changes and the step meets the segment.
    Returns {"neg_to_pos": n, "pos_to_neg": m} (pos = line_side True)."""
    out = {"neg_to_pos": 0, "pos_to_neg": 0}
    a, b = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    for pts in tracks.values():
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        if len(pts) < 2:
            continue
        side = line_side(a, b, pts)
        for k in np.nonzero(side[1:] != side[:-1])[0]:
            p, q = pts[k], pts[k + 1]
            # the step's line must separate a and b (or touch), so the crossing lies on the segment
            sa = (q[0] - p[0]) * (a[1] - p[1]) - (q[1] - p[1]) * (a[0] - p[0])
            sb = (q[0] - p[0]) * (b[1] - p[1]) - (q[1] - p[1]) * (b[0] - p[0])
            if sa * sb <= 0:
                out["pos_to_neg" if side[k] else "neg_to_pos"] += 1
    return out


def foot_tracks(frames: list, kind: str = "ground") -> dict:
    """Foot-point tracks for line counting, {(id, run): (n,2) float64} over runs of consecutive
    frames where the figure has a row. kind "ground": the exact ground contact point of the
    figure's path (FrameTruth.feet, no gait jitter); "box": the bottom centre of the full box."""
    if kind not in ("ground", "box"):
        raise ValueError(f"kind: expected 'ground' or 'box', got {kind!r}")
    per = {}
    for t, fr in enumerate(frames):
        pts = fr.feet if kind == "ground" else np.stack([(fr.boxes[:, 0] + fr.boxes[:, 2]) / 2.0, fr.boxes[:, 3]], 1)
        for i, p in zip(fr.ids, pts):
            per.setdefault(int(i), []).append((t, p))
    out = {}
    for i, seq in per.items():
        run, prev = 0, None
        for t, p in seq:
            if prev is not None and t != prev + 1:
                run += 1
            out.setdefault((i, run), []).append(p)
            prev = t
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def path_feet(meta: dict, frame: int, ids) -> np.ndarray:
    """Ground contact points (N,2) float32 in the image of figures `ids` at `frame` (0-based),
    from the scene meta's paths (piecewise linear on the ground, perspective camera)."""
    cam, fps = meta["camera"], float(meta["fps"])
    figs = {f["id"]: f["path"] for f in meta["figures"]}
    out = np.full((len(ids), 2), np.nan, np.float64)
    t = frame / fps
    for k, fid in enumerate(ids):
        path = figs[int(fid)]
        tc = min(max(t, path[0]["t0"]), path[-1]["t1"])
        seg = next(s for s in path if tc <= s["t1"])
        u = 0.0 if seg["t1"] <= seg["t0"] else (tc - seg["t0"]) / (seg["t1"] - seg["t0"])
        X = seg["start"][0] + u * (seg["end"][0] - seg["start"][0])
        Z = seg["start"][1] + u * (seg["end"][1] - seg["start"][1])
        out[k] = cam["cx"] + cam["f"] * X / Z, cam["y_horizon"] + cam["f"] * cam["height_m"] / Z
    return out.astype(np.float32)


# ---------------------------------------------------------------- billboard truth
@dataclass
class BillboardTruth:
    """Ground truth of a billboard clip. Convention: corners (T,4,2) float32 poster corners in each
    frame, clockwise from top-left, pixel-centre coordinates; homographies (T,3,3) float64
    frame_from_ref (reference = frame 0, so homographies[0] = I); frame_from_poster (T,3,3)
    float64 maps poster-image pixels (`poster_path`) into each frame; mask(t) -> (H,W) bool of
    the figures in front of the wall."""

    corners: np.ndarray
    homographies: np.ndarray
    frame_from_poster: np.ndarray
    n_frames: int
    fps: float
    size: tuple
    video_path: Path | None
    poster_path: Path | None
    packed_masks: np.ndarray
    meta: dict = field(default_factory=dict)

    def mask(self, t: int) -> np.ndarray:
        w = self.size[0]
        return np.unpackbits(self.packed_masks[t], axis=-1, count=w).astype(bool)


def load_billboard(path_or_name="billboard") -> BillboardTruth:
    """Load a billboard scene's ground truth (`billboard`, `x/billboard.mp4`, ...)."""
    stem = _stem(path_or_name)
    meta = json.loads(stem.with_suffix(".json").read_text())
    with np.load(f"{stem}.corners.npz") as z:
        corners, homs, posters = z["corners"], z["frame_from_ref"], z["frame_from_poster"]
    with np.load(f"{stem}.masks.npz") as z:
        packed = z["packed"]
    video, poster = stem.with_suffix(".mp4"), Path(f"{stem}.poster.png")
    return BillboardTruth(corners.astype(np.float32), homs, posters, int(meta["n_frames"]), float(meta["fps"]),
                          tuple(meta["size"]), video if video.exists() else None,
                          poster if poster.exists() else None, packed, meta)
