"""pipeline.stats.tree_pss_mb: the memory of a process and its workers, shared pages counted once
(Linux /proc), and the runner's peak of it."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from pipeline.stats import tree_pss_mb

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"),
                                reason="needs Linux /proc/PID/smaps_rollup")
MB = 1 << 20


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("Rss:"))


def _forked(allocate_mb: int):
    """A forked child that touches `allocate_mb` MB of its own, then waits; (pid, release)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: no pytest, no threads of its own
        own = np.ones(allocate_mb * MB, np.uint8) if allocate_mb else None
        os.write(ready_w, b"x")
        os.read(go_r, 1)
        del own
        os._exit(0)
    os.read(ready_r, 1)
    time.sleep(0.1)

    def release():
        os.write(go_w, b"x")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)
    return pid, release


def test_pages_shared_with_a_forked_child_count_once():
    block = np.ones(96 * MB, np.uint8)       # touched in the parent, inherited by the child
    before = tree_pss_mb()
    pid, release = _forked(0)
    try:
        after = tree_pss_mb()
        assert _rss_mb(pid) > 90                       # the child maps the block: its RSS counts it again
        assert abs(after - before) < 24                # the tree's PSS splits it between the two instead
    finally:
        release()
    assert block[-1] == 1


def test_a_childs_own_memory_is_counted():
    before = tree_pss_mb()
    pid, release = _forked(96)
    try:
        assert tree_pss_mb() - before > 85
        assert tree_pss_mb(pid) > 85 and tree_pss_mb(pid) < tree_pss_mb()
    finally:
        release()


def test_runner_reports_peak_pss_with_workers():
    from fakes import FakeSink, FakeSource
    from pipeline import Pipeline
    from pipeline.isolation import ProcessStage
    from workerstages import MarkStage, WorkerParams

    stage = ProcessStage(MarkStage, WorkerParams(burn=0.15), name="mark")
    stats = Pipeline(FakeSource(count=12, width=64, height=48), [stage], [FakeSink()], device="cpu",
                     print_stats=False).run()
    assert stats["peak_pss_mb"] is not None and 0 < stats["peak_pss_mb"] < stats["peak_rss_mb"]


def test_runner_without_workers_counts_only_its_process():
    """A run in threads does not count child processes it did not start (e.g. a fork server an
    earlier run with workers left)."""
    from fakes import FakeSink, FakeSource
    from pipeline import Pipeline
    from workerstages import MarkStage, WorkerParams

    pid, release = _forked(96)
    try:
        stats = Pipeline(FakeSource(count=12, width=64, height=48), [MarkStage(WorkerParams(burn=0.1))],
                         [FakeSink()], device="cpu", print_stats=False).run()
        assert stats["peak_pss_mb"] is not None
        assert stats["peak_pss_mb"] < tree_pss_mb() - 85          # the child's 96 MB are not in it
    finally:
        release()
