"""`vidpipe eval mot`: MOT files for every sequence, standard MOT15 scores, golden metrics on the
shared sequences (the original SORT's published numbers for algorithm sort)."""
import numpy as np
import pytest

from conftest import shared_path
from stages.tracking import evaluate


def _write_seq(root, name, boxes_per_frame, gt=True, length=None):
    det = root / name / "det"
    det.mkdir(parents=True)
    lines, gt_lines = [], []
    for f, boxes in enumerate(boxes_per_frame, 1):
        for i, (x, y, w, h) in enumerate(boxes, 1):
            lines.append(f"{f},-1,{x},{y},{w},{h},0.9,-1,-1,-1")
            gt_lines.append(f"{f},{i},{x},{y},{w},{h},1,-1,-1,-1")
    gt_lines.append("1,99,500,500,30,60,0,-1,-1,-1")      # flag 0: ignored by the standard scoring
    (det / "det.txt").write_text("\n".join(lines) + "\n")
    if gt:
        (root / name / "gt").mkdir()
        (root / name / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    if length:
        (root / name / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={length}\n")


def _two_walkers(n):
    return [[(10 + 3 * t, 20, 30, 60), (300 - 3 * t, 200, 30, 60)] for t in range(n)]


def test_writes_every_sequence_and_scores_those_with_gt(tmp_path):
    root = tmp_path / "mot"
    _write_seq(root, "A", _two_walkers(30), gt=True, length=40)
    _write_seq(root, "B", _two_walkers(12), gt=False)
    (root / "no-dets").mkdir(parents=True)
    result = evaluate.evaluate(root, tmp_path / "out")
    assert sorted(result["sequences"]) == ["A", "B"]
    assert result["sequences"]["A"]["frames"] == 40 and result["sequences"]["B"]["frames"] == 12
    rows = np.loadtxt(tmp_path / "out" / "A.txt", delimiter=",")
    assert rows.shape == (60, 10) and rows[:, 0].min() == 1 and rows[:, 0].max() == 30
    assert set(rows[:, 1].tolist()) == {1, 2} and np.all(rows[:, 7:] == -1)
    np.testing.assert_allclose(rows[rows[:, 0] == 1, 2:6], [[10, 20, 30, 60], [300, 200, 30, 60]], atol=1e-3)
    assert (tmp_path / "out" / "B.txt").is_file()
    if result["scored"]:
        a = result["sequences"]["A"]
        assert a["mota"] == pytest.approx(100.0) and a["idf1"] == pytest.approx(100.0)
        assert a["num_false_positives"] == a["num_misses"] == a["num_switches"] == 0
        assert "mota" not in result["sequences"]["B"]
        assert evaluate.format_table(result).splitlines()[-1].startswith(
            "-: no gt/gt.txt; OVERALL metrics are over the 1 scored sequence,")


def test_cli_settings_and_errors(tmp_path, capsys):
    root = tmp_path / "mot"
    _write_seq(root, "A", _two_walkers(10), gt=False)
    out = tmp_path / "out"
    assert evaluate.main([str(root), "--out", str(out), "--set", "algorithm=bytetrack", "--set", "max_age=3"]) == 0
    printed = capsys.readouterr().out
    assert "OVERALL" in printed and "wrote 1 result file to" in printed
    assert evaluate.main([str(root), "--out", str(out), "--set", "max_ag=3"]) == 2
    assert "--set max_ag: unknown key (did you mean 'max_age'?)" in capsys.readouterr().err
    assert evaluate.main([str(root), "--out", str(out), "--set", "iou_threshold=2"]) == 2
    assert evaluate.main([str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert evaluate.main([str(root), "--out", str(out), "--seq", "Z"]) == 1


def test_numpy2_shim_is_scoped():
    had = hasattr(np, "asfarray")
    with evaluate.numpy2_shim():
        assert np.asfarray([1, 2]).dtype == np.float64
    assert hasattr(np, "asfarray") == had


# The original SORT's published scores (its README) are reproduced exactly with algorithm sort.
GOLDEN = {
    "sort": {"TUD-Campus": (62.7, 60.6, 6, 15, 113), "TUD-Stadtmitte": (71.7, 73.5, 10, 22, 295),
             "KITTI-17": (60.2, 71.1, 9, 38, 225)},
    "bytetrack": {"TUD-Campus": (64.3, 76.3, 1, 15, 112), "TUD-Stadtmitte": (71.8, 79.9, 11, 17, 298),
                  "KITTI-17": (62.5, 75.8, 3, 36, 217)},
}


@pytest.mark.parametrize("algorithm", sorted(GOLDEN))
def test_golden_metrics_on_shared_mot15(algorithm, tmp_path):
    pytest.importorskip("motmetrics")
    root = shared_path("data", "mot15")
    for seq in GOLDEN[algorithm]:
        shared_path("data", "mot15", seq, "gt", "gt.txt")
    params = evaluate.parse_settings([f"algorithm={algorithm}"])
    result = evaluate.evaluate(root, tmp_path, params, names=list(GOLDEN[algorithm]))
    for seq, (mota, idf1, ids, fp, fn) in GOLDEN[algorithm].items():
        r = result["sequences"][seq]
        got = (round(r["mota"], 1), round(r["idf1"], 1), int(r["num_switches"]),
               int(r["num_false_positives"]), int(r["num_misses"]))
        assert got == (mota, idf1, ids, fp, fn), seq
