"""annotate: boxes in the track's colour at the right pixels, trails, HUD, layer selection and
extension, colours stable per id, the input picture left untouched."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages import STAGES
from stages.annotate import LAYERS, AnnotateParams, AnnotateStage, class_color, color_for_id

GREY = 90


def make_stage(**params) -> AnnotateStage:
    stage = AnnotateStage(build_or_raise(AnnotateParams, params, "stages[0]"))
    stage.setup(StageContext("cpu", SourceInfo("t", 200, 120, 30.0, False), threading.Event(),
                             logging.getLogger("test")))
    return stage


def frame_with(boxes, track_ids=None, class_ids=None, index=0, size=(200, 120)) -> Frame:
    f = Frame(index, index / 30, np.full((size[1], size[0], 3), GREY, np.uint8))
    n = len(boxes)
    f.detections = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.87),
                              class_ids if class_ids is not None else np.zeros(n),
                              track_id=None if track_ids is None else np.array(track_ids), names=("person",))
    return f


def test_registered():
    assert STAGES["annotate"] == "stages.annotate:AnnotateStage"
    assert {"boxes", "trails", "hud"} <= set(LAYERS)


def test_box_drawn_in_track_colour_at_its_place():
    stage = make_stage(layers=["boxes"], thickness=2)
    f = frame_with([[40, 50, 120, 110]], track_ids=[5])
    original = f.image
    out = stage.process(f).image
    color = np.array(color_for_id(5))
    assert np.array_equal(out[80, 40], color) and np.array_equal(out[80, 120], color)   # left and right edges
    assert np.array_equal(out[110, 80], color)                                          # bottom edge
    assert np.array_equal(out[80, 80], [GREY] * 3) and np.array_equal(out[80, 30], [GREY] * 3)  # inside / outside
    label = out[28:50, 40:120]
    assert (label.sum(axis=2) < 100).mean() > 0.3 and (label.min(axis=2) > 200).sum() > 20  # dark box, white text
    assert (label == color).all(axis=2).sum() > 30  # outlined in the track colour
    assert np.all(original == GREY)  # drawn on a copy


# (case id, boxes): neighbours whose labels above the box would cover each other
CROWDS = [
    ("side by side", [[40, 50, 120, 110], [70, 52, 150, 110]]),
    ("three in a row", [[20, 60, 90, 110], [50, 61, 120, 110], [80, 62, 150, 110]]),
    ("at the top edge", [[40, 2, 120, 60], [60, 3, 140, 60]]),
]


@pytest.mark.parametrize("boxes", [c[1] for c in CROWDS], ids=[c[0] for c in CROWDS])
def test_box_labels_never_cover_each_other(monkeypatch, boxes):
    import stages.annotate as annotate

    drawn = []
    real = annotate.put_label

    def record(*args, **kwargs):
        drawn.append(real(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(annotate, "put_label", record)
    make_stage(layers=["boxes"]).process(frame_with(boxes, track_ids=list(range(1, len(boxes) + 1))))
    assert len(drawn) == len(boxes)
    for i, a in enumerate(drawn):
        for b in drawn[:i]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_hud_names_its_numbers():
    from stages.annotate import hud_text

    text = hud_text(Frame(60, 2.0, np.zeros((8, 8, 3), np.uint8)), {"fps": 44.44, "latency_ms": 618.2})
    assert text == "frame 60  2.00s  44.4 fps  latency 618 ms"


def test_untracked_box_uses_its_class_colour():
    stage = make_stage(layers=["boxes"])
    out = stage.process(frame_with([[40, 50, 120, 110]], class_ids=[0])).image
    assert np.array_equal(out[80, 40], class_color(0))


def test_colours_stable_and_distinct():
    assert color_for_id(17) == color_for_id(17)
    colors = np.array([color_for_id(i) for i in range(1, 21)], float)
    d = np.linalg.norm(colors[:, None] - colors[None], axis=2)
    assert d[np.triu_indices(20, 1)].min() > 20


def near(image, y, x, color, tol=40) -> bool:
    """Some pixel of the 3x3 neighbourhood has (about) this colour (lines are anti-aliased)."""
    patch = image[y - 1:y + 2, x - 1:x + 2].astype(int)
    return bool((np.abs(patch - np.array(color)).max(axis=2) < tol).any())


def test_trails_follow_the_track_and_are_pruned():
    stage = make_stage(layers=["trails"], trail_length=5, thickness=2)
    color = color_for_id(3)
    for i in range(4):  # box moving right by 20 px per frame; trail at its bottom centre y=100
        out = stage.process(frame_with([[20 + 20 * i, 60, 40 + 20 * i, 100]], track_ids=[3], index=i)).image
    assert near(out, 100, 50, color) and near(out, 100, 80, color)
    assert not near(out, 100, 20, color) and not near(out, 80, 50, color)  # before the first centre (x=30), above
    for i in range(4, 11):  # the track disappears for longer than the trail
        out = stage.process(frame_with([], track_ids=[], index=i)).image
    assert np.all(out == GREY)


def test_hud_and_layer_selection():
    f = frame_with([[40, 50, 120, 110]], track_ids=[1])
    hud = make_stage(layers=["hud"]).process(f).image
    assert (hud[4:20, 4:150].sum(axis=2) < 100).mean() > 0.3          # dark HUD box, top left
    assert np.array_equal(hud[80, 40], [GREY] * 3)                      # no box layer
    boxes_only = make_stage(layers=["boxes"]).process(frame_with([[40, 50, 120, 110]], track_ids=[1])).image
    assert np.all(boxes_only[4:20, 150:] == GREY)
    everything = make_stage().process(frame_with([[40, 50, 120, 110]], track_ids=[1])).image
    assert not np.array_equal(everything[80, 40], [GREY] * 3) and (everything[4:20, 4:150].sum(axis=2) < 100).mean() > 0.3


def test_frame_without_detections_only_gets_the_hud():
    f = Frame(0, 0.0, np.full((120, 200, 3), GREY, np.uint8))
    out = make_stage().process(f).image
    assert np.all(out[40:, :] == GREY)


def probe_layer(canvas, frame, params):
    """A layer from 'another area': returns a new canvas and reads its own options."""
    params["state"]["calls"] = params["state"].get("calls", 0) + 1
    out = canvas.copy()
    out[:, :, 2] = params["red"]
    return out


def test_extension_layer_gets_options_and_state(monkeypatch):
    monkeypatch.setitem(LAYERS, "probe", "test_annotate:probe_layer")
    stage = make_stage(layers=["probe"], options={"probe": {"red": 200}})
    for i in range(3):
        out = stage.process(frame_with([], index=i)).image
    assert np.all(out[:, :, 2] == 200) and stage._params["probe"]["state"]["calls"] == 3


@pytest.mark.parametrize("params,message", [
    ({"layers": ["boxes", "trials"]}, "stages[0].layers[1]: unknown layer 'trials' (did you mean 'trails'?)"),
    ({"options": {"hdu": {}}}, "stages[0].options.hdu: unknown layer (did you mean 'hud'?)"),
    ({"thickness": 0}, "stages[0].thickness: expected 1 <= x <= 20, got 0"),
])
def test_bad_params(params, message):
    with pytest.raises(ConfigError) as err:
        build_or_raise(AnnotateParams, params, "stages[0]")
    assert message in str(err.value)
