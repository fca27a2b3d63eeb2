"""Generated scenes: ground truth agrees with the pixels, generation is deterministic, samples load."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

import scenes
from scenes.io import count_crossings, foot_tracks, load_street, read_flo, write_flo

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_videos"


# ---------------------------------------------------------------- street
@pytest.fixture(scope="module")
def street_small():
    return list(scenes.render_street(seed=3, size=(320, 180), n_frames=45, fps=15, masks=True, n_figures=8))


def test_street_boxes_contain_every_figure_pixel_and_are_tight(street_small):
    n_rows = 0
    for img, truth in street_small:
        assert img.shape == (180, 320, 3) and img.dtype == np.uint8
        for box, (x0, y0, mask) in zip(truth.boxes, truth.masks):
            ys, xs = np.nonzero(mask)
            assert xs.size
            # every figure pixel lies inside the box (pixel edges), and the box touches the mask
            assert (xs + x0).min() == box[0] and (xs + x0).max() + 1 == box[2]
            assert (ys + y0).min() == box[1] and (ys + y0).max() + 1 == box[3]
            n_rows += 1
        assert np.all(truth.boxes_clipped[:, :2] >= 0) and np.all(truth.boxes_clipped[:, 2] <= 320)
    assert n_rows > 100


def test_street_visibility_matches_recount(street_small):
    """Recount: a pixel of figure i is visible if it is in the image and no nearer figure
    (larger foot y = nearer) covers it."""
    checked_partial = 0
    for img, truth in street_small:
        h, w = img.shape[:2]
        full = []
        for x0, y0, mask in truth.masks:
            canvas = np.zeros((h, w), bool)
            ys, xs = np.nonzero(mask)
            ys, xs = ys + y0, xs + x0
            keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
            canvas[ys[keep], xs[keep]] = True
            full.append((canvas, mask.sum()))
        order = np.argsort(-truth.boxes[:, 3], kind="stable")  # nearest first (box bottom = feet)
        for k, i in enumerate(order):
            canvas, total = full[i]
            nearer = np.zeros((h, w), bool)
            for j in order[:k]:
                nearer |= full[j][0]
            vis = (canvas & ~nearer).sum() / total
            assert truth.visibility[i] == pytest.approx(vis, abs=0.02)
            checked_partial += vis < 0.99
    assert checked_partial > 0, "the scene should contain occlusions or border clipping"


def test_street_pixels_changed_only_inside_boxes():
    """Without noise, the frame differs from the empty background only inside the boxes."""
    from scenes.street import Camera, render_background

    bg = render_background(5, Camera.for_size(256, 144))
    for img, truth in scenes.render_street(seed=5, size=(256, 144), n_frames=20, n_figures=8):
        inside = np.zeros(img.shape[:2], bool)
        for x1, y1, x2, y2 in truth.boxes_clipped.astype(int):
            inside[y1:y2, x1:x2] = True
        changed = np.any(img != bg, axis=2)
        assert not np.any(changed & ~inside)


def test_street_activities_and_ids(street_small):
    labels = {lab for _, t in street_small for lab in t.labels}
    assert labels <= {"standing", "walking", "running", "waving", "loitering"}
    long = list(scenes.render_street(seed=8, size=(160, 90), n_frames=300, n_figures=10))
    labels = {lab for _, t in long for lab in t.labels}
    assert labels == {"standing", "walking", "running", "waving", "loitering"}
    for _, t in long:
        assert len(set(t.ids.tolist())) == len(t.ids)


@pytest.mark.parametrize("pts, expected", [
    ([(0, 5), (10, 5)], {"pos_to_neg": 1, "neg_to_pos": 0}),   # left to right across x=5 (pos = left)
    ([(10, 5), (0, 5)], {"pos_to_neg": 0, "neg_to_pos": 1}),
    ([(0, 20), (10, 20)], {"pos_to_neg": 0, "neg_to_pos": 0}),  # passes below the segment's end
    ([(0, 5), (4, 5), (6, 5), (4, 5)], {"pos_to_neg": 1, "neg_to_pos": 1}),
])
def test_count_crossings(pts, expected):
    assert count_crossings({1: np.asarray(pts, float)}, (5, 0), (5, 10)) == expected


def test_street_files_roundtrip_and_determinism(tmp_path):
    from scenes.street import write_street

    digests, metas = [], []
    for sub, seed in (("a", 4), ("b", 4), ("c", 5)):
        metas.append(write_street(tmp_path / sub, "s", seed=seed, size=(160, 96), n_frames=20, noise=2.0))
        digests.append([hashlib.sha256((tmp_path / sub / f"s{ext}").read_bytes()).hexdigest()
                        for ext in (".gt.txt", ".activity.csv", ".json")])
    assert digests[0] == digests[1]
    assert digests[0][0] != digests[2][0]
    truth = load_street(tmp_path / "a" / "s.mp4")
    assert truth.n_frames == 20 and truth.size == (160, 96) and truth.video_path.exists()
    mem = [t for _, t in scenes.render_street(seed=4, size=(160, 96), n_frames=20, noise=2.0)]
    for a, b in zip(truth.frames, mem):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.visibility, b.visibility, atol=1e-3)
        assert a.labels == b.labels
    # line counts in the meta are those recomputed from the file's boxes
    tracks = foot_tracks(truth.frames)
    for ln in metas[0]["lines"]:
        raw = count_crossings(tracks, ln["p1"], ln["p2"])
        assert {ln["dirs"][k]: v for k, v in raw.items()} == ln["counts"]
    frames = scenes.read_video(truth.video_path)
    assert len(frames) == 20 and frames[0].shape == (96, 160, 3)


# ---------------------------------------------------------------- committed samples
def test_committed_street_sample_loads():
    if not (SAMPLES / "street.json").exists():
        pytest.skip("sample_videos/street.* not present")
    truth = scenes.load_street("street")
    assert truth.n_frames == 300 and truth.size == (640, 360) and truth.fps == 30
    assert sum(len(f) for f in truth.frames) > 1000
    assert {"standing", "walking", "running", "waving", "loitering"} <= {l for f in truth.frames for l in f.labels}
    assert truth.video_path == scenes.sample_path("street")


# ---------------------------------------------------------------- flow files
def test_flo_roundtrip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(7, 9, 2)).astype(np.float32)
    write_flo(tmp_path / "f.flo", flow)
    np.testing.assert_array_equal(read_flo(tmp_path / "f.flo"), flow)
    raw = (tmp_path / "f.flo").read_bytes()
    assert np.frombuffer(raw[:4], "<f4")[0] == np.float32(202021.25)
    assert tuple(np.frombuffer(raw[4:12], "<i4")) == (9, 7)
