"""bench/run.py: the contender not measured is stopped as a whole tree and comes back, and one left
stopped still ends (a real process tree, real signals)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from bench.run import Contender

# A server-like parent with one child, each counting in a loop (a stopped process's CPU time stands still).
_CHILD = "import time\nwhile True: time.sleep(0.001)"
_TREE = textwrap.dedent(
    f"""
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", {_CHILD!r}])
    while True: time.sleep(0.001)
    """
)


def _contender(tmp_path: Path) -> Contender:
    contender = Contender("tree", [sys.executable, "-c", _TREE], {}, 0, tmp_path / "tree.out")
    contender.proc = subprocess.Popen(contender.command)
    deadline = time.monotonic() + 30
    while len(contender.tree()) < 2:
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.05)
    return contender


def _statuses(contender: Contender) -> set[str]:
    return {process.status() for process in contender.tree()}


def test_paused_stops_the_whole_tree_and_resumes_it(tmp_path):
    contender = _contender(tmp_path)
    try:
        with contender.paused():
            assert _statuses(contender) == {psutil.STATUS_STOPPED}
            frozen = [process.cpu_times().user + process.cpu_times().system for process in contender.tree()]
            time.sleep(0.5)
            assert [p.cpu_times().user + p.cpu_times().system for p in contender.tree()] == frozen
        assert psutil.STATUS_STOPPED not in _statuses(contender)
    finally:
        contender.stop()
    assert contender.proc.poll() is not None


def test_a_stopped_contender_still_ends_on_stop(tmp_path):
    contender = _contender(tmp_path)
    child = contender.tree()[1]
    with contender.paused():
        started = time.monotonic()
        contender.stop()  # as the bench's cleanup does when a run fails while the other is paused
        assert time.monotonic() - started < 10
    assert contender.proc.poll() is not None
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
