"""Sources: frame counts, timestamps from the container (variable frame rate kept), seeking,
damaged files, image folders (natural order, MOT layout), generated lavfi input, bad input."""
from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
from avgen import index_of, make_video, picture

from pipeline.errors import SourceError
from pipeline.sources import SOURCES, infer_type
from pipeline.sources.file import FileParams, FileSource
from pipeline.sources.folder import FolderParams, FolderSource, natural_key
from pipeline.sources.lavfi import LavfiParams, LavfiSource


def read(source, limit=None, stop=None):
    info = source.open()
    frames = []
    try:
        for frame in source.frames(stop or threading.Event()):
            frames.append(frame)
            if limit and len(frames) >= limit:
                break
    finally:
        source.close()
    return info, frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", n=45, fps=30)


# ---------------- file ----------------

def test_file_counts_times_and_info(clip):
    info, frames = read(FileSource(FileParams(uri=str(clip))))
    assert (info.width, info.height, info.frame_count, info.codec, info.live) == (160, 120, 45, "h264", False)
    assert info.fps == pytest.approx(30)
    assert [f.index for f in frames] == list(range(45))
    assert np.allclose([f.time for f in frames], np.arange(45) / 30, atol=1e-3)
    assert [index_of(f.image, 45) for f in frames] == list(range(45))
    f = frames[7]
    assert f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8
    assert float(f.pts * f.time_base) == pytest.approx(f.time, abs=1e-6)


def test_variable_frame_rate_kept(tmp_path):
    times = [0.0, 0.033, 0.066, 0.150, 0.183, 0.400, 0.433, 1.000]
    path = make_video(tmp_path / "vfr.mp4", times=times)
    _, frames = read(FileSource(FileParams(uri=str(path))))
    assert np.allclose([f.time for f in frames], times, atol=1e-3)


def test_times_start_at_zero_for_offset_pts(tmp_path):
    path = make_video(tmp_path / "offset.mkv", times=[5.0, 5.1, 5.2])
    _, frames = read(FileSource(FileParams(uri=str(path))))
    assert np.allclose([f.time for f in frames], [0.0, 0.1, 0.2], atol=1e-3)


def test_start_seeks(clip):
    info, frames = read(FileSource(FileParams(uri=str(clip), start=1.0)))
    assert len(frames) == 15 and info.frame_count == 15
    assert frames[0].index == 0
    assert frames[0].time == pytest.approx(1.0, abs=1e-3)
    assert index_of(frames[0].image, 45) == 30


def test_stop_event_ends_promptly(clip):
    stop = threading.Event()
    source = FileSource(FileParams(uri=str(clip)))
    source.open()
    got = []
    for frame in source.frames(stop):
        got.append(frame)
        if len(got) == 5:
            stop.set()
    source.close()
    assert len(got) == 5


def read_damaged(source):
    """(frames, error): every frame the source yields before it raises at the end."""
    source.open()
    frames, error = [], None
    try:
        for frame in source.frames(threading.Event()):
            frames.append(frame)
    except SourceError as exc:
        error = exc
    finally:
        source.close()
    return frames, error


# A cut MPEG-TS looks like a shorter stream (no index, no frame count): nothing to report.
@pytest.mark.parametrize("ext,damage", [("mp4", "cut short: "), ("mkv", "cut short at "), ("ts", None)])
def test_truncated_file_keeps_decodable_frames_warns_once_then_fails(tmp_path, caplog, ext, damage):
    path = make_video(tmp_path / f"full.{ext}", n=60, faststart=(ext == "mp4"))
    data = path.read_bytes()
    cut_path = tmp_path / f"cut.{ext}"
    cut_path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="vidpipe.sources"):
        frames, error = read_damaged(FileSource(FileParams(uri=str(cut_path))))
    assert 5 < len(frames) < 60
    assert [index_of(f.image) for f in frames] == list(range(len(frames)))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    if damage is None:
        assert error is None and not warnings
        return
    assert len(warnings) == 1 and str(cut_path) in warnings[0].getMessage()
    text = str(error)
    assert text.startswith(f"damaged video ({damage}") and text.endswith(f"the {len(frames)} frames that decoded "
                                                                          f"were processed: {cut_path}")
    frames_warn, error_warn = read_damaged(FileSource(FileParams(uri=str(cut_path), on_damage="warn")))
    assert error_warn is None and len(frames_warn) == len(frames)


@pytest.mark.parametrize("ext", ["mp4", "ts"])
def test_corrupt_middle_keeps_going(tmp_path, ext):
    path = make_video(tmp_path / f"full.{ext}", n=60, gop=10)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 3000] = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = tmp_path / f"corrupt.{ext}"
    bad.write_bytes(bytes(data))
    frames, error = read_damaged(FileSource(FileParams(uri=str(bad))))
    assert len(frames) >= 40
    assert index_of(frames[-1].image, 60) == 59  # frames after the damage are decoded too
    if ext == "mp4":  # the index knows what is missing; MPEG-TS concealment leaves no trace
        assert "damaged video (" in str(error)


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("huge") / "huge.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width = stream.height = 8200
        stream.pix_fmt = "yuv420p"
        for packet in [*stream.encode(av.VideoFrame(8200, 8200, "yuv420p")), *stream.encode()]:
            out.mux(packet)
    return path


def _bad_inputs(tmp_path, huge):
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "afolder.mp4").mkdir()
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return {
        "missing": (str(tmp_path / "nope.mp4"), {}, "file not found"),
        "folder": (str(tmp_path / "afolder.mp4"), {}, "is a folder"),
        "text": (str(tmp_path / "text.mp4"), {}, "not a readable video"),
        "zero": (str(tmp_path / "zero.mp4"), {}, "empty file (0 bytes)"),
        "noise": (str(tmp_path / "noise.mkv"), {}, "not a readable video"),
        "huge": (str(huge), {}, "frame size 8200x8200 exceeds max_pixels"),
        "max_pixels": (None, {"max_pixels": 100 * 100}, "frame size 160x120 exceeds max_pixels=10000"),
        "start_past_end": (None, {"start": 10.0}, "no frame could be decoded at or after start=10.0s"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "text", "zero", "noise", "huge", "max_pixels", "start_past_end"])
def test_bad_file_input_one_line_naming_the_file(tmp_path, huge, clip, case):
    uri, extra, message = _bad_inputs(tmp_path, huge)[case]
    uri = uri or str(clip)
    t0 = time.perf_counter()
    with pytest.raises(SourceError) as err:
        read(FileSource(FileParams(uri=uri, **extra)))
    text = str(err.value)
    assert message in text and uri in text and "\n" not in text
    assert time.perf_counter() - t0 < 2.0  # rejected early, nothing big decoded


def test_missing_relative_path_names_the_working_directory(tmp_path, monkeypatch):
    """Config paths are relative to where vidpipe runs, not to the YAML: the error says from where."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as err:
        read(FileSource(FileParams(uri="sample_videos/nope.mp4")))
    assert str(err.value) == f"file not found: sample_videos/nope.mp4 (relative to the working directory {tmp_path})"


# ---------------- folder ----------------

def _write_images(folder, names, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), picture(i, *size))


def test_natural_key_orders_numbers_by_value():
    names = ["f10.png", "f2.png", "f1.png", "F3.png", "f100.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "F3.png", "f10.png", "f100.png"]


def test_folder_natural_order_and_fps(tmp_path):
    names = [f"{i}.png" for i in range(12)] + ["notes.txt"]
    _write_images(tmp_path / "seq", [n for n in names if n.endswith(".png")])
    (tmp_path / "seq" / "notes.txt").write_text("ignored")
    info, frames = read(FolderSource(FolderParams(uri=str(tmp_path / "seq"), fps=10)))
    assert (info.width, info.height, info.frame_count, info.fps) == (40, 30, 12, 10)
    assert [index_of(f.image, 12) for f in frames] == list(range(12))
    assert np.allclose([f.time for f in frames], np.arange(12) / 10)
    assert frames[3].pts == 3 and frames[3].time_base == Fraction(1, 10)


def test_folder_mot_layout_reads_seqinfo_rate(tmp_path):
    seq = tmp_path / "TUD-Fake"
    _write_images(seq / "img1", [f"{i:06d}.jpg" for i in range(1, 9)])
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=TUD-Fake\nimDir=img1\nframeRate=25\nseqLength=8\n")
    info, frames = read(FolderSource(FolderParams(uri=str(seq), start=0.08)))
    assert info.fps == 25 and len(frames) == 6
    assert frames[0].time == pytest.approx(0.08) and index_of(frames[0].image, 8) == 2


def test_folder_bad_inputs(tmp_path, clip):
    (tmp_path / "empty").mkdir()
    cases = [(str(tmp_path / "none"), "folder not found"), (str(tmp_path / "empty"), "no images"),
             (str(clip), "not a folder")]
    for uri, message in cases:
        with pytest.raises(SourceError, match=message) as err:
            read(FolderSource(FolderParams(uri=uri)))
        assert uri in str(err.value)


# ---------------- lavfi ----------------

def test_lavfi_generated_frames():
    source = LavfiSource(LavfiParams(uri="lavfi:testsrc2=size=320x180:rate=25"))
    info, frames = read(source, limit=10)
    assert (info.width, info.height, info.fps, info.live) == (320, 180, 25, False)
    assert np.allclose([f.time for f in frames], np.arange(10) / 25)
    assert frames[0].image.std() > 10  # a real test pattern, not a blank frame


def test_lavfi_realtime_is_live_and_paced():
    source = LavfiSource(LavfiParams(uri="lavfi:testsrc2=size=64x36:rate=50,realtime"))
    assert source.live
    t0 = time.perf_counter()
    info, frames = read(source, limit=11)
    assert info.live and len(frames) == 11
    assert time.perf_counter() - t0 >= 0.15  # 10 intervals at 50 fps = 0.2 s


def test_lavfi_bad_graph():
    with pytest.raises(SourceError, match="lavfi:nosuchfilter"):
        read(LavfiSource(LavfiParams(uri="lavfi:nosuchfilter")))


# ---------------- registry ----------------

@pytest.mark.parametrize("uri,kind", [
    ("rtsp://cam/stream", "rtsp"), ("rtsps://u:p@cam:322/x", "rtsp"), ("/dev/video0", "webcam"), ("0", "webcam"),
    (2, "webcam"), ("lavfi:testsrc2", "lavfi"), ("clip.mp4", "file"), ("/definitely/missing/dir/", "file"),
])
def test_infer_type(uri, kind):
    assert infer_type(uri) == kind


def test_infer_type_folder_and_registered(tmp_path):
    assert infer_type(str(tmp_path)) == "folder"
    assert {"file", "folder", "lavfi"} <= set(SOURCES)
