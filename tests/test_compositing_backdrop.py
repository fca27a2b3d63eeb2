"""The backdrop panel (stages.compositing.backdrop): the layout of the ad on a panel covering the
whole surface, and the fills (color, edge, blur) known pixel by pixel."""
from __future__ import annotations

import numpy as np
import pytest

from stages.compositing.backdrop import extend_nearest, make_panel, mean_color, panel_layout
from stages.compositing.geometry import ad_box


def rounded_ad() -> np.ndarray:
    """20x10 BGRA: left half red, right half green, opaque but for transparent 2x2 corners."""
    ad = np.zeros((10, 20, 4), np.uint8)
    ad[:, :10] = (0, 0, 255, 255)
    ad[:, 10:] = (0, 255, 0, 255)
    for ys, xs in ((slice(0, 2), slice(0, 2)), (slice(0, 2), slice(18, 20)), (slice(8, 10), slice(0, 2)),
                   (slice(8, 10), slice(18, 20))):
        ad[ys, xs, 3] = 0
    return ad


@pytest.mark.parametrize("lo, hi, expected", [
    ((0, 0), (1, 1), (20, 10, 20, 10, 0, 0)),                 # stretch: the panel is the ad
    ((0.25, 0), (0.75, 1), (40, 10, 20, 10, 10, 0)),          # contain, margins left and right
    ((0, 0.1), (1, 0.9), (20, 12, 20, 10, 0, 1)),             # margins above and below
    ((0.25, 0.25), (0.75, 0.75), (40, 20, 20, 10, 10, 5)),    # inset
])
def test_panel_layout(lo, hi, expected):
    lay = panel_layout(20, 10, lo, hi)
    assert (lay.panel_w, lay.panel_h, lay.ad_w, lay.ad_h, lay.x, lay.y) == expected


def test_panel_layout_caps_the_size_and_rejects_empty_boxes():
    lay = panel_layout(1000, 500, (0.45, 0.45), (0.55, 0.55), max_side=4096)
    assert max(lay.panel_w, lay.panel_h) <= 4096 and lay.ad_w < 1000
    with pytest.raises(ValueError, match="box"):
        panel_layout(20, 10, (0.5, 0), (0.5, 1))


def test_contain_box_matches_the_surface_aspect():
    quad = np.array([[0.0, 0.0], [400.0, 0.0], [400.0, 100.0], [0.0, 100.0]])  # 4:1 surface, 2:1 ad
    lo, hi = ad_box(20, 10, quad, "contain")
    assert lo == pytest.approx([0.25, 0.0]) and hi == pytest.approx([0.75, 1.0])
    lay = panel_layout(20, 10, lo, hi)
    assert lay.panel_w / lay.panel_h == pytest.approx(4.0)


def test_color_fill_known_answer():
    ad = rounded_ad()
    lay = panel_layout(20, 10, (0.25, 0), (0.75, 1))
    panel = make_panel(ad, lay, "color", (255, 0, 0))
    assert panel.shape == (10, 40, 4) and (panel[..., 3] == 255).all()
    blue = np.array([255, 0, 0])
    assert (panel[:, :10, :3] == blue).all() and (panel[:, 30:, :3] == blue).all()  # margins
    assert (panel[:2, 10:12, :3] == blue).all() and (panel[8:, 28:30, :3] == blue).all()  # transparent corners
    assert (panel[5, 12:20, :3] == (0, 0, 255)).all() and (panel[5, 20:28, :3] == (0, 255, 0)).all()  # the ad itself
    mean = make_panel(ad, lay, "color")[0, 0, :3]  # no colour given: the ad's mean, half red, half green
    assert np.abs(mean.astype(int) - (0, 128, 128)).max() <= 1
    assert np.allclose(mean_color(ad), (0, 127.5, 127.5))


def test_edge_fill_carries_the_border_colours_outwards():
    lay = panel_layout(20, 10, (0.25, 0), (0.75, 1))
    panel = make_panel(rounded_ad(), lay, "edge")
    assert (panel[..., 3] == 255).all()
    # the left margin takes the ad's left (red) edge, the right margin its right (green) edge
    assert (panel[3:7, :8, :3] == (0, 0, 255)).all() and (panel[3:7, 32:, :3] == (0, 255, 0)).all()
    assert (panel[:2, 10:12, :3] == (0, 0, 255)).all() and (panel[8:, 28:30, :3] == (0, 255, 0)).all()


def test_blur_fill_is_opaque_and_made_of_the_ads_colours():
    lay = panel_layout(20, 10, (0.25, 0), (0.75, 1))
    panel = make_panel(rounded_ad(), lay, "blur")
    assert (panel[..., 3] == 255).all()
    margin = panel[:, :10, :3].astype(int)
    assert (margin[..., 0] <= 2).all()  # no blue: only red and green in the ad
    assert (margin[..., 2] > margin[..., 1]).all()  # left margin: mostly the ad's red half
    assert (panel[5, 12:20, :3] == (0, 0, 255)).all()  # the ad drawn unchanged on top


def test_extend_nearest_uses_only_opaque_pixels():
    premul = np.zeros((5, 5, 3), np.float32)
    alpha = np.zeros((5, 5), np.float32)
    premul[2, 2], alpha[2, 2] = (10, 20, 30), 1.0
    premul[0, 0], alpha[0, 0] = (50, 50, 50), 0.5  # half transparent: not a source
    out = extend_nearest(premul, alpha, smooth=0)
    assert np.allclose(out, (10, 20, 30))
    assert not extend_nearest(np.zeros((3, 3, 3), np.float32), np.zeros((3, 3), np.float32)).any()


def test_make_panel_rejects_bad_input():
    lay = panel_layout(20, 10, (0, 0), (1, 1))
    with pytest.raises(ValueError, match="fill"):
        make_panel(rounded_ad(), lay, "none")
    with pytest.raises(ValueError, match="BGRA"):
        make_panel(rounded_ad()[..., :3], lay, "edge")
