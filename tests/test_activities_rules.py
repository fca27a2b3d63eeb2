"""Rule classifier and hysteresis: table-driven known answers."""
import numpy as np
import pytest

from stages.activities import LABELS
from stages.activities.features import FEATURES, INDEX
from stages.activities.rules import Hysteresis, RuleClassifier, RuleThresholds


def feats(**values) -> np.ndarray:
    f = np.zeros(len(FEATURES), np.float32)
    f[INDEX["fill"]] = 1.0
    for k, v in values.items():
        f[INDEX[k]] = v
    if "speed_3d" not in values:
        f[INDEX["speed_3d"]] = max(values.get("speed", 0.0), values.get("depth_speed", 0.0))
    return f


RULE_CASES = [  # features, expected label
    (dict(speed=2.0, energy_top=3.0, energy_bottom=3.0), "running"),
    (dict(speed=1.3), "running"),
    (dict(speed=0.7, energy_top=1.8, energy_bottom=2.5), "walking"),
    (dict(speed=0.4), "walking"),
    (dict(speed=0.1, approach_speed=0.8), "walking"),                         # towards the camera
    (dict(speed=0.1, approach_speed=1.5), "running"),
    (dict(speed=0.2, approach_speed=0.4, approach_noise=0.05), "walking"),    # slowly, and drifting sideways
    (dict(speed=0.2, energy_bottom=0.6), "loitering"),                        # ... the same without depth
    (dict(speed=0.02, approach_speed=0.6, approach_noise=0.5, energy_top=0.1, energy_bottom=0.1), "standing"),
    (dict(speed=0.02, approach_speed=0.06, energy_top=0.1, energy_bottom=0.1), "standing"),  # below the dead zone
    (dict(speed=0.02, depth_speed=1.3, energy_top=0.1, energy_bottom=0.1), "standing"),  # not the rules' cue
    (dict(speed=0.02, energy_top=0.1, energy_bottom=0.1), "standing"),
    (dict(speed=0.05, energy_top=1.0, energy_bottom=0.1), "waving"),
    (dict(speed=0.2, energy_top=0.6, energy_bottom=1.3), "loitering"),       # slow, legs moving
    (dict(speed=0.05, energy_top=0.2, energy_bottom=1.5), "loitering"),      # legs moving in place
    (dict(speed=0.1, extent_long=0.05, path_long=0.3, energy_bottom=0.3), "loitering"),  # stayed, moving a little
    (dict(speed=0.1, extent_long=0.05, path_long=0.3, energy_bottom=0.3, fill=0.5), "standing"),  # not long enough
]


@pytest.mark.parametrize("values, expected", RULE_CASES)
def test_rules_table(values, expected):
    scores = RuleClassifier().scores(feats(**values)[None, None])
    assert scores.shape == (1, len(LABELS))
    assert np.isclose(scores.sum(), 1.0, atol=1e-5)
    assert LABELS[int(scores.argmax())] == expected


def test_rules_use_only_the_newest_row_and_threshold_is_a_tie():
    t = RuleThresholds()
    seq = np.stack([feats(speed=3.0), feats(speed=t.run_speed)])[None]  # speed_3d follows speed
    s = RuleClassifier(t).scores(seq)[0]
    assert s[LABELS.index("running")] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("kwargs, exception", [
    (dict(walk_speed=2.0), ValueError),          # walk above run
    (dict(move_speed=0.0), ValueError),
    (dict(softness=-1.0), ValueError),
])
def test_thresholds_rejected(kwargs, exception):
    with pytest.raises(exception):
        RuleThresholds(**kwargs)


def test_loiter_s_beyond_long_window_rejected():
    with pytest.raises(ValueError, match="loiter_s"):
        RuleClassifier(RuleThresholds(loiter_s=5.0), long_s=3.0)


def onehot(i, p=0.6, n=5):
    s = np.full(n, (1 - p) / (n - 1))
    s[i] = p
    return s


HYST_CASES = [
    # k, margin, sequence of (winner, score of winner), expected labels
    (3, 0.9, [(0, .6), (1, .6), (1, .6), (1, .6), (1, .6)], [0, 0, 0, 1, 1]),    # wins 3 in a row
    (3, 0.9, [(0, .6), (1, .6), (1, .6), (0, .6), (1, .6), (1, .6)], [0, 0, 0, 0, 0, 0]),  # interrupted
    (3, 0.9, [(0, .6), (1, .6), (2, .6), (1, .6), (2, .6)], [0, 0, 0, 0, 0]),    # alternating never wins
    (3, 0.5, [(0, .6), (1, .95)], [0, 1]),                                          # margin: at once
    (1, 0.9, [(0, .6), (2, .6), (3, .6)], [0, 2, 3]),                              # k = 1 follows the argmax
]


@pytest.mark.parametrize("k, margin, seq, expected", HYST_CASES)
def test_hysteresis_table(k, margin, seq, expected):
    h = Hysteresis(k, margin)
    got = []
    for winner, p in seq:
        labels, _ = h.update([7], onehot(winner, p)[None])
        got.append(int(labels[0]))
    assert got == expected


def test_hysteresis_reports_changes_and_tracks_are_independent():
    h = Hysteresis(2, 0.99)
    _, ch = h.update([1, 2], np.stack([onehot(0), onehot(3)]))
    assert ch == [(1, -1, 0), (2, -1, 3)]
    h.update([1, 2], np.stack([onehot(4), onehot(3)]))
    labels, ch = h.update([1, 2], np.stack([onehot(4), onehot(3)]))
    assert labels.tolist() == [4, 3] and ch == [(1, 0, 4)]
    assert h.forget(1) == 4 and h.forget(1) is None


@pytest.mark.parametrize("k, margin", [(0, 0.5), (3, 0.0), (3, 1.5)])
def test_hysteresis_rejects_bad_arguments(k, margin):
    with pytest.raises(ValueError):
        Hysteresis(k, margin)
