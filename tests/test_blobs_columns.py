"""The motion kernel's shape prior (stages.detection.blobs.split_columns): blobs wider than a
person split at valleys of their column foreground counts; off, the boxes are the old ones."""
import numpy as np
import pytest

from stages.detection.blobs import motion_boxes, split_columns

H, W = 360, 640


def side_by_side(gap_rows: int = 0) -> np.ndarray:
    """Two 30x80 people side by side whose arms touch: one blob, a valley of 10 px tall at 130-134."""
    m = np.zeros((H, W), np.uint8)
    m[100:180, 100:130] = 255
    m[102:182, 134:164] = 255
    m[140:150, 130:134] = 255          # the touching arms
    return m


def test_columns_split_two_people_side_by_side_where_they_touch():
    mask = side_by_side()
    whole = motion_boxes(mask)[0]
    np.testing.assert_array_equal(whole, [[100, 100, 164, 182]])
    boxes, pixels = motion_boxes(mask, split_ratio=0.3)
    np.testing.assert_array_equal(boxes, [[100, 100, 130, 180], [130, 102, 164, 182]])
    assert pixels.tolist() == [30 * 80, 30 * 80 + 4 * 10]


@pytest.mark.parametrize("name, rects, n", [
    ("one person", [(100, 180, 100, 130)], 1),
    ("person with a raised arm", [(100, 180, 100, 130), (110, 118, 130, 146)], 1),  # a valley-free arm
    ("wide car", [(200, 240, 100, 220)], 1),                                       # full columns, no valley
    ("three in a row", [(100, 180, 100, 130), (100, 180, 140, 170), (100, 180, 180, 210), (140, 146, 130, 180)], 3),
])
def test_columns_split_table(name, rects, n):
    m = np.zeros((H, W), np.uint8)
    for y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = 255
    assert len(motion_boxes(m, split_ratio=0.3)[0]) == n, name


def test_columns_off_is_the_old_motion_boxes():
    mask = side_by_side()
    for kw in (dict(), dict(factor=1), dict(merge_gap=8)):
        a, b = motion_boxes(mask, **kw), motion_boxes(mask, **kw, split_ratio=None)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("kw", [dict(ratio=0), dict(valley=1.0), dict(valley=-0.1)])
def test_columns_bad_arguments_raise(kw):
    with pytest.raises(ValueError, match="expected"):
        split_columns(np.zeros((4, 4), np.uint8), np.zeros((1, 4), np.float32), np.zeros(1), **kw)
