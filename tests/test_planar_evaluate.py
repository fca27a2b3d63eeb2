"""`vidpipe eval planar`: corner parsing, metrics with known answers, the CSV, the command on a
small synthetic video, the generated billboard against exact ground truth, and the postcard clip."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, shared_path
from stages.planar import evaluate as ev
from stages.planar.synthetic import make_sequence

POSTCARD_CORNERS = "64,116,252,84,311,284,69,329"


def test_parse_corners_and_settings():
    assert ev.parse_corners(POSTCARD_CORNERS).tolist() == [[64, 116], [252, 84], [311, 284], [69, 329]]
    with pytest.raises(ValueError, match="expected 8 numbers"):
        ev.parse_corners("1,2,3")
    cfg = ev.parse_settings(["detector=sift", "ransac_threshold=3", "smoothing=none"])
    assert (cfg.detector, cfg.ransac_threshold, cfg.smoothing) == ("sift", 3.0, "none")
    for bad in (["nope=1"], ["ratio=high"], ["detector"]):
        with pytest.raises(ValueError, match="--set"):
            ev.parse_settings(bad)


def test_score_known_answers():
    truth = np.tile(np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float), (6, 1, 1)) + np.arange(6)[:, None, None]
    tracked = truth + np.array([3.0, 4.0])             # every corner 5 px off, constant
    valid = np.array([True, True, True, False, True, True])
    truth_gaps = truth.copy()
    truth_gaps[5] = np.nan
    s = ev.score(tracked, valid, truth_gaps, start=1)
    assert (s["frames"], s["scored"], s["lost"], s["no_truth"]) == (5, 3, 1, 1)
    assert s["mean"] == pytest.approx(5) and s["max"] == pytest.approx(5) and s["jitter"] == pytest.approx(0)
    wobble = tracked.copy()
    wobble[2] += 1.0                                   # frame 2 off by (1, 1) more: jitter sqrt(2) per step
    assert ev.score(wobble, np.ones(6, bool), truth)["jitter"] == pytest.approx(np.sqrt(2) * 2 / 5)
    line = ev._line("vs GT", ev.score(tracked, np.ones(6, bool), truth))  # every number says what it is
    assert "error px: mean 5.000" in line and "jitter 0.000 px/frame" in line
    assert "accel 0.000 px/frame^2 (the reference's own 0.000)" in line


def _write_video(path, frames, fps=25):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "12"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_command_writes_csv_and_scores_against_sift(tmp_path, capsys):
    seq = make_sequence(n=16, size=(320, 240), amplitude=0.4, seed=12)
    video, csv = tmp_path / "clip.mp4", tmp_path / "corners.csv"
    _write_video(video, seq.frames)
    corners = ",".join(f"{v:.4f}" for v in seq.corners[0].ravel())
    assert ev.main([str(video), "--corners", corners, "--out", str(csv), "--reference-out", str(tmp_path / "ref.csv")]) == 0
    printed = capsys.readouterr().out
    assert "vs SIFT ref" in printed and "lost 0" in printed
    rows = csv.read_text().splitlines()
    assert rows[0] == "frame,x1,y1,x2,y2,x3,y3,x4,y4,valid" and len(rows) == 17
    got = np.array([[float(v) for v in r.split(",")[1:9]] for r in rows[1:]]).reshape(-1, 4, 2)
    assert [r.split(",")[0] for r in rows[1:]] == [str(i) for i in range(16)]
    assert all(r.endswith(",1") for r in rows[1:])
    assert np.linalg.norm(got - seq.corners, axis=-1).max() < 0.5
    assert ev.main([str(video), "--corners", "1,2,3", "--no-sift"]) == 2
    assert ev.main([str(tmp_path / "missing.mp4"), "--corners", corners]) == 2
    capsys.readouterr()
    # mistakes that used to print NaN scores with exit 0, or a traceback: one error line, exit 2
    for flags, message in ((["--max-frames", "0"], "--max-frames: expected >= 1"),
                           (["--reference-frame", "-1"], "--reference-frame: expected >= 0"),
                           (["--reference-frame", "16"], "--reference-frame 16: the video has only 16 frames"),
                           (["--gt", str(tmp_path / "nope")], "no billboard ground truth there")):
        assert ev.main([str(video), "--corners", corners, "--no-sift", *flags]) == 2, flags
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_generated_billboard_against_exact_ground_truth():
    stem = ROOT / "sample_videos" / "billboard"
    if not (stem.with_suffix(".mp4").exists() and (stem.parent / "billboard.corners.npz").exists()):
        pytest.skip("sample_videos/billboard not generated")
    corners, masks = ev.load_gt(str(stem))
    res = ev.evaluate(ev.read_frames(stem.with_suffix(".mp4")), corners[0], masks=masks, sift_reference=False)
    s = ev.score(res["tracked"], res["valid"], corners)
    assert s["lost"] == 0 and s["scored"] == len(corners)
    assert s["mean"] <= 1.0 and s["max"] <= 3.0, s            # the bar; measured 0.10 / 0.39
    assert s["mean"] <= 0.3 and s["max"] <= 1.0, s            # regression guard
    res = ev.evaluate(ev.read_frames(stem.with_suffix(".mp4")), corners[0], sift_reference=False)
    s = ev.score(res["tracked"], res["valid"], corners)          # no mask: figures rejected as outliers
    assert s["lost"] == 0 and s["mean"] <= 1.0 and s["max"] <= 3.0, s


def test_postcard_tracked_through_the_clip():
    video = shared_path("data", "videos", "planar_postcard_moving_cam.mp4")
    corners = ev.parse_corners(POSTCARD_CORNERS)
    res = ev.evaluate(ev.read_frames(video), corners, sift_every=8)
    assert len(res["valid"]) == 161 and res["valid"].all()
    s = ev.score(res["tracked"], res["valid"], res["reference"])
    assert s["scored"] == 21 and s["lost"] == 0
    assert s["median"] <= 2.0, s                               # the bar; measured 0.6
    assert s["median"] <= 1.0 and s["p95"] <= 3.0, s           # regression guard
