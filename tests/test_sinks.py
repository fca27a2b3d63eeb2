"""Sinks: the video keeps the input's timestamps (variable frame rate included), is H.264 yuv420p
with its index first (fast start), fragmented output survives a cut tail; JSON lines and MOT
files round-trip; bad output paths and full disks give one line naming the path."""
from __future__ import annotations

import logging
import os
import threading
from fractions import Fraction

import numpy as np
import pytest
from avgen import decode_all, index_of, make_video, mp4_boxes, picture

from pipeline.errors import SinkError
from pipeline.frame import Detections, Frame, Plane
from pipeline.mot_format import parse_mot, read_mot, write_mot
from pipeline.sinks import SINKS
from pipeline.sinks.jsonl import JsonlParams, JsonlSink, read_jsonl
from pipeline.sinks.mot import MotParams, MotSink
from pipeline.sinks.video import VideoParams, VideoSink
from pipeline.sources.file import FileParams, FileSource
from pipeline.sources.lavfi import LavfiParams, LavfiSource
from pipeline.stage import SourceInfo


def info(w=160, h=120, fps=30.0, live=False):
    return SourceInfo(uri="test", width=w, height=h, fps=fps, live=live)


def transcode(src_path, out_path, **params):
    source = FileSource(FileParams(uri=str(src_path)))
    src_info = source.open()
    sink = VideoSink(VideoParams(path=str(out_path), **params))
    sink.open(src_info, None)
    frames = list(source.frames(threading.Event()))
    for f in frames:
        sink.write(f)
    sink.close()
    source.close()
    return frames, sink


# ---------------- video ----------------

def test_video_keeps_variable_frame_rate_timestamps(tmp_path):
    times = [0.0, 0.033, 0.066, 0.150, 0.183, 0.400, 0.433, 1.000, 1.033]
    src = make_video(tmp_path / "vfr.mp4", times=times)
    frames, sink = transcode(src, tmp_path / "out" / "vfr_out.mp4")
    images, out_times, facts = decode_all(tmp_path / "out" / "vfr_out.mp4")
    assert facts == {"codec": "h264", "width": 160, "height": 120, "pix_fmt": "yuv420p"}
    assert np.allclose(out_times, times, atol=1e-3)
    assert [index_of(im) for im in images] == list(range(len(times)))
    assert sink.summary()["frames"] == len(times) and not sink.fragmented


def test_video_is_fast_start(tmp_path):
    src = make_video(tmp_path / "in.mp4", n=20)
    transcode(src, tmp_path / "fs.mp4")
    data = (tmp_path / "fs.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_video_from_lavfi_time_base(tmp_path):
    source = LavfiSource(LavfiParams(uri="lavfi:testsrc2=size=128x72:rate=25"))
    sink = VideoSink(VideoParams(path=str(tmp_path / "l.mp4")))
    sink.open(source.open(), None)
    for i, f in zip(range(20), source.frames(threading.Event())):
        sink.write(f)
    sink.close()
    source.close()
    _, times, _ = decode_all(tmp_path / "l.mp4")
    assert np.allclose(times, np.arange(20) / 25, atol=1e-3)


def test_video_without_pts_uses_time_and_pads_odd_size(tmp_path):
    times = [0.0, 0.1, 0.25, 0.3]
    sink = VideoSink(VideoParams(path=str(tmp_path / "odd.mkv")))
    sink.open(info(161, 121), None)
    for i, t in enumerate(times):
        sink.write(Frame(i, t, picture(i, 161, 121)))
    sink.close()
    images, out_times, facts = decode_all(tmp_path / "odd.mkv")
    assert (facts["width"], facts["height"]) == (162, 122)
    assert np.allclose(out_times, times, atol=1e-3)
    assert [index_of(im) for im in images] == [0, 1, 2, 3]


def test_video_resizes_a_frame_of_another_size_and_warns(tmp_path, caplog):
    sink = VideoSink(VideoParams(path=str(tmp_path / "r.mp4")))
    sink.open(info(), None)
    with caplog.at_level(logging.WARNING, logger="vidpipe.sinks"):
        for i in range(4):
            size = (160, 120) if i < 2 else (320, 240)
            sink.write(Frame(i, i / 30, picture(i, *size)))
        sink.close()
    images, _, facts = decode_all(tmp_path / "r.mp4")
    assert (facts["width"], facts["height"]) == (160, 120) and [index_of(im) for im in images] == [0, 1, 2, 3]
    assert sum("resizing" in r.getMessage() for r in caplog.records) == 1


def test_fragmented_video_survives_a_cut_tail(tmp_path):
    path = tmp_path / "live.mp4"
    sink = VideoSink(VideoParams(path=str(path), keyframe_interval=0.5))
    sink.open(info(live=True), None)  # fragmented: auto -> on for a live source
    assert sink.fragmented
    for i in range(90):
        sink.write(Frame(i, i / 30, picture(i, 160, 120)))
    sink.close()
    data = path.read_bytes()
    boxes = mp4_boxes(data)
    kinds = [b[0] for b in boxes]
    assert kinds[:3] == [b"ftyp", b"moov", b"moof"] and kinds.count(b"moof") >= 5
    assert len(decode_all(path)[0]) == 90
    # A killed process leaves whole fragments plus, at worst, part of the next one's mdat (each
    # fragment reaches the OS in writes that start with its moof): cut there and decode.
    mdats = [b for b in boxes if b[0] == b"mdat"]
    for cut_at in (mdats[3][1] + mdats[3][2] // 2, mdats[5][1] + mdats[5][2]):
        cut = tmp_path / "cut.mp4"
        cut.write_bytes(data[:cut_at])
        images, times, _ = decode_all(cut, tolerant=True)
        assert 20 <= len(images) < 90
        assert [index_of(im) for im in images] == list(range(len(images)))
        assert np.allclose(times, np.arange(len(images)) / 30, atol=1e-3)


def test_plain_mp4_cut_is_unreadable_which_is_why_live_runs_fragment(tmp_path):
    import av

    src = make_video(tmp_path / "in.mp4", n=30)
    transcode(src, tmp_path / "plain.mp4", fragmented=False)
    data = (tmp_path / "plain.mp4").read_bytes()
    (tmp_path / "plain_cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(av.error.InvalidDataError):
        decode_all(tmp_path / "plain_cut.mp4")


def test_codec_fallback_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vidpipe.sinks"):
        frames, sink = transcode(make_video(tmp_path / "in.mp4", n=5), tmp_path / "fb.mp4", codec="no_such_encoder")
    assert sink.codec == "libx264" and "no_such_encoder" in caplog.text
    assert len(decode_all(tmp_path / "fb.mp4")[0]) == 5


def test_no_frame_no_file(tmp_path):
    sink = VideoSink(VideoParams(path=str(tmp_path / "none.mp4")))
    sink.open(info(), None)
    sink.close()
    assert not (tmp_path / "none.mp4").exists()


def _bad_paths(tmp_path):
    (tmp_path / "adir.mp4").mkdir()
    (tmp_path / "afile").write_text("x")
    return {
        "is_dir": (str(tmp_path / "adir.mp4"), "output path is a folder"),
        "parent_is_file": (str(tmp_path / "afile" / "sub" / "o.mp4"), "cannot create output folder"),
    }


@pytest.mark.parametrize("sink_cls,params_cls", [(VideoSink, VideoParams), (JsonlSink, JsonlParams), (MotSink, MotParams)])
@pytest.mark.parametrize("case", ["is_dir", "parent_is_file"])
def test_bad_output_path_fails_at_open_naming_it(tmp_path, sink_cls, params_cls, case):
    path, message = _bad_paths(tmp_path)[case]
    sink = sink_cls(params_cls(path=path))
    with pytest.raises(SinkError) as err:
        sink.open(info(), None)
    text = str(err.value)
    assert message in text and (path in text or os.path.dirname(path) in text) and "\n" not in text


def test_parent_folders_created(tmp_path):
    sink = JsonlSink(JsonlParams(path=str(tmp_path / "a" / "b" / "r.jsonl")))
    sink.open(info(), None)
    sink.close()
    assert (tmp_path / "a" / "b" / "r.jsonl").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
@pytest.mark.parametrize("kind", ["video", "jsonl"])
def test_disk_full_is_one_line_naming_the_path(tmp_path, kind):
    path = tmp_path / f"full.{'mp4' if kind == 'video' else 'jsonl'}"
    os.symlink("/dev/full", path)
    sink = VideoSink(VideoParams(path=str(path))) if kind == "video" else JsonlSink(JsonlParams(path=str(path), flush_every=1))
    sink.open(info(), None)
    with pytest.raises(SinkError) as err:
        for i in range(60):
            sink.write(Frame(i, i / 30, picture(i, 160, 120)))
        sink.close()
    assert "No space left on device" in str(err.value) and str(path) in str(err.value)
    try:
        sink.close()
    except SinkError:
        pass


# ---------------- jsonl ----------------

def test_jsonl_round_trip(tmp_path):
    dets = Detections(np.array([[10, 20, 50, 80], [1.5, 2.25, 3, 4]], np.float32), [0.9, 0.5], [0, 2],
                      track_id=np.array([7, 8]), names=("person", "bicycle", "car"))
    f0 = Frame(0, 0.0, picture(0, 32, 24))
    f0.detections = dets
    f0.activities = {7: "walking"}
    f0.events = [{"type": "line_cross", "track_id": np.int64(7), "pos": np.array([1.0, 2.0])}]
    f0.plane = Plane(np.eye(3), np.array([[0, 0], [10, 0], [10, 5], [0, 5]], np.float32), True, 0.8)
    f0.meta = {"motion": np.float32(0.25), "label": "a", "big": np.zeros((100, 100)), "obj": object()}
    f1 = Frame(1, 0.04, picture(1, 32, 24))
    sink = JsonlSink(JsonlParams(path=str(tmp_path / "r.jsonl"), flush_every=1))
    sink.open(info(32, 24), None)
    sink.write(f0)
    assert len(read_jsonl(tmp_path / "r.jsonl")) == 1  # flushed per frame when asked
    sink.write(f1)
    sink.close()
    r0, r1 = read_jsonl(tmp_path / "r.jsonl")
    assert r0["index"] == 0 and r1 == {"index": 1, "time": 0.04, "detections": [], "activities": {}, "events": [],
                                       "plane": None}
    assert r0["detections"] == [
        {"box": [10.0, 20.0, 50.0, 80.0], "score": 0.9, "class_id": 0, "class": "person", "track_id": 7},
        {"box": [1.5, 2.25, 3.0, 4.0], "score": 0.5, "class_id": 2, "class": "car", "track_id": 8}]
    assert r0["activities"] == {"7": "walking"}
    assert r0["events"] == [{"type": "line_cross", "track_id": 7, "pos": [1.0, 2.0]}]
    assert r0["plane"] == {"corners": [[0, 0], [10, 0], [10, 5], [0, 5]], "valid": True, "inlier_ratio": 0.8}
    assert r0["meta"] == {"motion": 0.25, "label": "a"}  # a 10,000-element array and an object are left out


# ---------------- mot ----------------

def test_mot_write_read_round_trip(tmp_path):
    rows = {
        0: Detections.from_xywh([[10, 20, 30, 40], [0.5, 1.25, 2, 3]], [1.0, 0.75], [0, 0], track_id=[1, 2]),
        4: Detections.from_xywh([[11, 21, 30, 40]], [0.5], [0], track_id=[1]),
        5: Detections.empty(),
    }
    assert write_mot(tmp_path / "t.txt", rows) == 3
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert lines[0] == "1,1,10.000,20.000,30.000,40.000,1,-1,-1,-1" and lines[2].startswith("5,1,11.000,21.000,")
    back = read_mot(tmp_path / "t.txt")
    assert sorted(back) == [0, 4]
    for k in back:
        assert np.allclose(back[k].xyxy, rows[k].xyxy) and np.array_equal(back[k].track_id, rows[k].track_id)
        assert np.allclose(back[k].score, rows[k].score)


def test_mot_reads_detection_and_gt_layouts():
    det = "1,-1,281.931,187.466,79.93,209.537,0.997784,-1,-1,-1\n1,-1,56.6878,144.225,93.5572,295.907,0.9976,-1,-1,-1\n"
    from pipeline.mot_format import rows_to_detections

    out = rows_to_detections(parse_mot(det))
    assert list(out) == [0] and out[0].track_id is None
    assert np.allclose(out[0].xyxy[0], [281.931, 187.466, 281.931 + 79.93, 187.466 + 209.537])
    gt16 = "3,5,100,50,20,40,1,1,0.8\n3,6,10,10,5,5,0,7,1.0\n"
    g = rows_to_detections(parse_mot(gt16))[2]
    assert list(g.track_id) == [5, 6] and list(g.score) == [1, 0] and np.allclose(g.data["extra"], [[1, 0.8], [7, 1.0]])
    with pytest.raises(ValueError, match="x.txt:2: expected at least 7 columns"):
        parse_mot("1,1,1,1,1,1,1\n1,2,3\n", "x.txt")


def test_mot_sink_writes_tracked_boxes_only(tmp_path):
    sink = MotSink(MotParams(path=str(tmp_path / "tracks.txt")))
    sink.open(info(), None)
    for i in range(3):
        f = Frame(i, i / 30, picture(i, 16, 16))
        if i == 1:
            f.detections = Detections.from_xywh([[1, 2, 3, 4], [5, 6, 7, 8]], [0.9, 0.8], [0, 0], track_id=[3, -1])
        if i == 2:
            f.detections = Detections.from_xywh([[1, 2, 3, 4]], [0.9], [0])  # untracked: not written
        sink.write(f)
    sink.close()
    assert (tmp_path / "tracks.txt").read_text() == "2,3,1.000,2.000,3.000,4.000,0.9,-1,-1,-1\n"
    assert MotSink.reads == {"tracks"}


def test_sinks_registered():
    assert {"video", "jsonl", "mot"} <= set(SINKS)


def test_time_base_kept_on_frames(tmp_path):
    src = make_video(tmp_path / "tb.mp4", n=3, time_base=Fraction(1, 90000))
    frames, _ = transcode(src, tmp_path / "tb_out.mp4")
    assert all(f.time_base is not None and f.pts is not None for f in frames)


# ---------------- video: colour conversion and presets ----------------

def _scene(w=320, h=180, seed=0):
    """Smooth gradients, flat patches and sharp edges: what a camera picture holds."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    for _ in range(12):
        x0, y0 = rng.integers(0, w - 40), rng.integers(0, h - 30)
        img[y0:y0 + rng.integers(8, 30), x0:x0 + rng.integers(8, 40)] = rng.integers(0, 256, 3)
    return img


def test_yuv_conversion_matches_ffmpeg_swscale():
    """OpenCV's I420 is FFmpeg's default bgr24 -> yuv420p (BT.601, limited range): the same luma
    to one level; chroma differs only in how 2x2 blocks are averaged at edges."""
    import av

    from pipeline.sinks.video import to_yuv420p

    img = _scene()
    ours = to_yuv420p(img).astype(int)
    ref = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p").to_ndarray().astype(int)
    assert ours.shape == ref.shape == (270, 320)
    assert np.abs(ours[:180] - ref[:180]).max() <= 1
    assert np.abs(ours[180:] - ref[180:]).mean() < 1.0
    # back to BGR, the way a player shows it: no further from the picture than swscale's
    back = [av.VideoFrame.from_ndarray(np.uint8(a), format="yuv420p").to_ndarray(format="bgr24").astype(int)
            for a in (ours, ref)]
    err_ours, err_ref = (np.abs(b - img).mean() for b in back)
    assert err_ours <= err_ref + 0.05 and err_ours < 3


def test_video_colours_survive_encoding(tmp_path):
    img = _scene(seed=3)
    sink = VideoSink(VideoParams(path=str(tmp_path / "c.mp4"), crf=12))
    sink.open(info(320, 180), None)
    for i in range(3):
        sink.write(Frame(i, i / 30, img.copy()))
    sink.close()
    images, _, _ = decode_all(tmp_path / "c.mp4")
    assert len(images) == 3
    err = np.abs(images[-1].astype(int) - img)
    assert err.mean() < 3 and np.percentile(err, 50) <= 2


@pytest.mark.parametrize("size, preset", [((640, 360), "veryfast"), ((1280, 720), "veryfast"),
                                          ((1920, 1080), "superfast"), ((3840, 2160), "ultrafast")])
def test_auto_preset_by_picture_size(size, preset):
    from pipeline.sinks.video import auto_preset

    assert auto_preset(*size) == preset


@pytest.mark.parametrize("preset, expected", [("auto", "veryfast"), ("medium", "medium")])
def test_video_summary_names_the_preset_in_use(tmp_path, preset, expected):
    sink = VideoSink(VideoParams(path=str(tmp_path / "p.mp4"), preset=preset))
    sink.open(info(), None)
    sink.write(Frame(0, 0.0, picture(0, 160, 120)))
    sink.close()
    assert sink.summary()["preset"] == expected
