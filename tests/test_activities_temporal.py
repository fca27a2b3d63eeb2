"""The temporal model: shapes, causality, a few training steps on a toy set beat chance, weights
round-trip through torch.load(weights_only=True)."""
import numpy as np
import pytest
import torch

from stages.activities import LABELS
from stages.activities.features import FEATURES
from stages.activities.temporal import TemporalClassifier, TemporalNet, load_weights, save_weights
from stages.activities.train import accuracy, train


def test_forward_shape_and_causality(device):
    torch.manual_seed(0)
    net = TemporalNet(6, 5, hidden=8).to(device)
    x = torch.randn(3, 40, 6, device=device)
    y = net(x)
    assert y.shape == (3, 40, 5) and net.receptive_field == 31
    x2 = x.clone()
    x2[:, 30:] += 5.0  # changing the future must not change the past
    torch.testing.assert_close(net(x2)[:, :30], y[:, :30])


def toy_set(n=60, length=50, seed=0):
    """Class c: feature c is raised by 1 over noise of std 0.5 (its single frames are ambiguous;
    the window's average is not)."""
    rng = np.random.default_rng(seed)
    data = []
    for i in range(n):
        c = i % len(LABELS)
        x = rng.normal(0, 0.5, (length, len(FEATURES))).astype(np.float32)
        x[:, c] += 1.0
        y = np.full(length, c)
        y[:3] = -1
        data.append((x, y))
    return data


def test_trains_on_a_toy_set_and_beats_chance():
    net = train(toy_set(), epochs=2, steps=15, length=32, batch=16, hidden=16, lr=1e-2, log=None)
    acc = accuracy(net, toy_set(20, seed=1))
    assert acc > 0.5, acc  # chance is 0.2


def test_weights_round_trip(tmp_path, device):
    torch.manual_seed(0)
    net = TemporalNet(len(FEATURES), len(LABELS), hidden=8)
    net.mean.fill_(0.5)
    path = tmp_path / "w.pt"
    save_weights(path, net, LABELS, FEATURES)
    blob = torch.load(path, weights_only=True)
    assert blob["labels"] == list(LABELS)
    again, labels, feats = load_weights(path, device)
    x = torch.randn(2, 31, len(FEATURES))
    torch.testing.assert_close(again(x.to(device)).cpu(), net(x))
    clf = TemporalClassifier.from_file(path, device)
    s = clf.scores(x.numpy())
    assert s.shape == (2, len(LABELS)) and np.allclose(s.sum(1), 1, atol=1e-5)


def test_foreign_weights_rejected(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not an activity"):
        load_weights(path)


def test_weights_pick_their_own_feature_columns_by_name(tmp_path):
    """Weights trained on a subset of FEATURES (in any order: older weights, before features were
    added) see exactly those columns; a feature this build lacks is an error naming it."""
    torch.manual_seed(0)
    names = [FEATURES[5], FEATURES[0], FEATURES[-1]]
    net = TemporalNet(len(names), len(LABELS), hidden=8)
    path = tmp_path / "subset.pt"
    save_weights(path, net, LABELS, names)
    x = torch.randn(2, 31, len(FEATURES))
    cols = [FEATURES.index(n) for n in names]
    with torch.no_grad():
        want = torch.softmax(net(x[:, :, cols])[:, -1], 1).numpy()
    np.testing.assert_allclose(TemporalClassifier.from_file(path).scores(x.numpy()), want, atol=1e-6)
    save_weights(path, net, LABELS, names[:2] + ["not_a_feature"])
    with pytest.raises(ValueError, match="not_a_feature"):
        TemporalClassifier.from_file(path)


@pytest.mark.parametrize("name", ["activity_tcn.pt", "activity_tcn_motion.pt"])
def test_shipped_weights_match_this_build(name):
    """The shipped weights (vidpipe train activity --seeds 0-35 [--detector motion]) must load with
    this build's feature list (their features a subset of FEATURES); retrain them when one they use
    changes or goes."""
    from conftest import ROOT

    path = ROOT / "stages" / "activities" / name
    if not path.is_file():
        pytest.skip(f"stages/activities/{name} not present")
    clf = TemporalClassifier.from_file(path)
    assert clf.labels == LABELS and clf.history == 31
