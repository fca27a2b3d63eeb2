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
    for kind, key in (("ground", "counts"), ("box", "counts_box")):
        tracks = foot_tracks(truth.frames, kind)
        for ln in metas[0]["lines"]:
            raw = count_crossings(tracks, ln["p1"], ln["p2"])
            assert {ln["dirs"][k]: v for k, v in raw.items()} == ln[key]
    # the ground contact point is at the bottom of the box, near its centre
    for fr in truth.frames:
        assert np.all(np.abs(fr.feet[:, 1] - fr.boxes[:, 3]) < 0.12 * (fr.boxes[:, 3] - fr.boxes[:, 1]) + 2)
        assert np.all((fr.feet[:, 0] > fr.boxes[:, 0]) & (fr.feet[:, 0] < fr.boxes[:, 2]))
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


# ---------------------------------------------------------------- billboard
@pytest.fixture(scope="module")
def billboard_small():
    return list(scenes.render_billboard(seed=2, size=(320, 180), n_frames=30, n_figures=3))


def _warp_error(img, H, poster, quad, exclude):
    import cv2

    h, w = img.shape[:2]
    warped = cv2.warpPerspective(poster, H, (w, h), flags=cv2.INTER_LINEAR)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(quad * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0
    inside &= ~exclude
    return float(np.abs(warped.astype(np.float32) - img)[inside].mean()), int(inside.sum())


def test_billboard_poster_lies_where_the_truth_says(billboard_small):
    import cv2
    from scenes.billboard import BillboardScene

    scene = BillboardScene(2, (320, 180), 30, n_figures=3)
    poster = cv2.GaussianBlur(scene.poster, (0, 0), 0.6)
    shift = np.array([[1, 0, 2.0], [0, 1, 1.5], [0, 0, 1]])
    for t, (img, truth) in enumerate(billboard_small):
        exclude = cv2.dilate(truth["mask"].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        err, n = _warp_error(img, truth["frame_from_poster"], poster, truth["corners"], exclude)
        bad, _ = _warp_error(img, shift @ truth["frame_from_poster"], poster, truth["corners"], exclude)
        assert n > 2000
        assert err < 6.0, (t, err)
        assert bad > 2 * err, (t, err, bad)


def test_billboard_homographies_and_corners_agree(billboard_small):
    c0 = billboard_small[0][1]["corners"].astype(np.float64)
    np.testing.assert_allclose(billboard_small[0][1]["frame_from_ref"], np.eye(3), atol=1e-9)
    moved = 0.0
    for _, truth in billboard_small:
        H = truth["frame_from_ref"]
        q = np.column_stack([c0, np.ones(4)]) @ H.T
        np.testing.assert_allclose(q[:, :2] / q[:, 2:], truth["corners"], atol=1e-3)
        c = truth["corners"]
        assert c[0, 0] < c[1, 0] and c[3, 0] < c[2, 0] and c[0, 1] < c[3, 1]  # clockwise from top-left
        moved = max(moved, float(np.abs(c - c0).max()))
    assert moved > 5.0, "the camera should move"


def test_billboard_mask_is_exactly_the_changed_pixels(billboard_small):
    """Outside the mask the frame equals the warped wall; inside, figures changed the pixels."""
    import cv2
    from scenes.billboard import BillboardScene

    scene = BillboardScene(2, (320, 180), 30, n_figures=3)
    covered = 0
    for t, (img, truth) in enumerate(billboard_small):
        wall = cv2.warpPerspective(scene.canvas, scene.frame_from_canvas(t), (320, 180), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        m = truth["mask"]
        assert np.array_equal(img[~m], wall[~m])
        covered += int(m.sum())
        if m.any():
            assert np.any(img[m] != wall[m])
    assert covered > 1000


def test_billboard_files_roundtrip(tmp_path):
    from scenes.billboard import write_billboard

    write_billboard(tmp_path, "bb", seed=2, size=(160, 96), n_frames=12, noise=2.0)
    truth = scenes.load_billboard(tmp_path / "bb")
    mem = list(scenes.render_billboard(seed=2, size=(160, 96), n_frames=12, noise=2.0))
    assert truth.corners.shape == (12, 4, 2) and truth.homographies.shape == (12, 3, 3)
    for t, (_, m) in enumerate(mem):
        np.testing.assert_allclose(truth.corners[t], m["corners"])
        np.testing.assert_allclose(truth.homographies[t], m["frame_from_ref"])
        np.testing.assert_array_equal(truth.mask(t), m["mask"])
    assert truth.video_path.exists() and truth.poster_path.exists()
    assert len(scenes.read_video(truth.video_path)) == 12


# ---------------------------------------------------------------- flow
def _photometric(img1, img2, flow, valid):
    import cv2

    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    warped = cv2.remap(img2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
    return float(np.abs(warped.astype(np.float32) - img1)[valid].mean())


@pytest.mark.parametrize("kind", ["translate", "translate_large", "rotate", "zoom", "similarity", "object"])
def test_flow_truth_warps_frame2_onto_frame1(kind):
    from scenes.flow import render_flow_pair

    img1, img2, flow, valid = render_flow_pair(seed=5, size=(160, 120), kind=kind)
    assert flow.dtype == np.float32 and flow.shape == (120, 160, 2)
    assert valid.mean() > 0.75
    err = _photometric(img1, img2, flow, valid)
    zero = _photometric(img1, img2, np.zeros_like(flow), valid)
    assert err < 2.0 and zero > 4 * err, (err, zero)


def test_flow_object_moves_independently():
    from scenes.flow import render_flow_pair

    _, _, flow, valid = render_flow_pair(seed=5, size=(160, 120), kind="object")
    mags = np.round(flow[valid].reshape(-1, 2), 1)
    # background is one translation, the object another motion: at least two distinct groups
    bg = np.median(flow[..., 0]), np.median(flow[..., 1])
    far = np.hypot(flow[..., 0] - bg[0], flow[..., 1] - bg[1]) > 1.0
    assert 0.02 < far.mean() < 0.5 and len(mags) > 1000


def test_flow_clip_and_middlebury_files(tmp_path):
    from scenes.flow import render_flow_clip, write_flow_set

    frames, flows, valids = render_flow_clip(seed=4, size=(128, 96), n_frames=5)
    assert len(frames) == 5 and len(flows) == 4
    for t in range(4):
        err = _photometric(frames[t], frames[t + 1], flows[t], valids[t])
        assert err < 2.5 and _photometric(frames[t], frames[t + 1], 0 * flows[t], valids[t]) > 4 * err
    names = write_flow_set(tmp_path / "f", seed=4, size=(96, 64), noise=1.0, kinds=("translate", "object"), clip_frames=3)
    assert names == ["translate", "object", "clip"]
    img1, img2, flow = scenes.load_flow_pair(tmp_path / "f" / "object")
    m1, m2, mflow, _ = scenes.render_flow_pair(seed=4, size=(96, 64), kind="object", noise=1.0)
    np.testing.assert_array_equal(img1, m1)
    np.testing.assert_array_equal(img2, m2)
    np.testing.assert_array_equal(flow, mflow)
    assert (tmp_path / "f" / "clip" / "flow11.flo").exists() and (tmp_path / "f" / "clip" / "frame12.png").exists()


def test_flow_determinism():
    from scenes.flow import render_flow_pair

    a = render_flow_pair(seed=9, size=(96, 64), kind="similarity", noise=2.0)
    b = render_flow_pair(seed=9, size=(96, 64), kind="similarity", noise=2.0)
    c = render_flow_pair(seed=10, size=(96, 64), kind="similarity", noise=2.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])


# ---------------------------------------------------------------- committed samples, all of them
def test_committed_billboard_and_flow_samples_load():
    if not (SAMPLES / "billboard.json").exists() or not (SAMPLES / "flow").is_dir():
        pytest.skip("sample_videos/billboard.* or flow/ not present")
    truth = scenes.load_billboard("billboard")
    assert truth.n_frames == 150 and truth.corners.shape == (150, 4, 2) and truth.mask(0).shape == (360, 640)
    for name in ("translate", "similarity", "object"):
        img1, img2, flow = scenes.load_flow_pair(scenes.sample_path("flow") / name)
        assert img1.shape == (240, 320, 3) and flow.shape == (240, 320, 2)


@pytest.mark.slow
def test_regenerating_samples_reproduces_committed_truth(tmp_path, capsys):
    """`vidpipe generate samples` into a temporary folder gives the committed ground truth
    (the .mp4 bytes may differ between libx264 builds, so videos are not compared)."""
    if not (SAMPLES / "street.json").exists():
        pytest.skip("sample_videos not present")
    from scenes import cli

    t0 = time.perf_counter()
    assert cli.main(["samples", "--out", str(tmp_path)]) == 0
    took = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[scenes] regenerating all samples took {took:.1f} s")
    for rel in ("street.gt.txt", "street.activity.csv", "street.json", "billboard.json",
                "flow/translate/flow10.flo", "flow/object/frame11.png", "flow/similarity/valid10.png"):
        assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
    for rel in ("billboard.corners.npz", "billboard.masks.npz"):
        with np.load(tmp_path / rel) as a, np.load(SAMPLES / rel) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])


def test_unwritable_output_is_one_line(tmp_path, capsys):
    from scenes import cli

    (tmp_path / "file").write_text("x")  # a file where the output folder should be
    assert cli.main(["street", "--frames", "2", "--out", str(tmp_path / "file" / "sub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: street: cannot write (") and str(tmp_path / "file") in err and "Traceback" not in err
