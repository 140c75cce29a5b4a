"""bench/simultaneous.py: the engine's scheduler is found under its server and every one of its threads
is bound to the core it was given (a real process tree, real affinity)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from bench import simultaneous

# A server-like parent whose child names itself as SGLang's scheduler does and runs a second thread.
_TREE = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=sys.stdout)
    child.wait()
    """
)
_SCHEDULER = textwrap.dedent(
    """
    import ctypes, threading, time
    ctypes.CDLL(None).prctl(15, b"sglang::scheduler")  # PR_SET_NAME: the kernel keeps 15 characters
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _affinity(pid: int) -> set[str]:
    lists = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as status:
            lists.add(status.read().split("Cpus_allowed_list:")[1].split()[0])
    return lists


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="2 cores")
def test_the_scheduler_under_a_server_has_all_its_threads_bound_to_one_core():
    core = max(os.sched_getaffinity(0))
    server = subprocess.Popen([sys.executable, "-c", _TREE, _SCHEDULER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        pid = simultaneous.scheduler_pid(server.pid)
        assert pid != server.pid
        assert len(_affinity(pid)) == 1 and _affinity(pid) != {str(core)}  # both cores before
        assert simultaneous.pin_threads(pid, core) == 2
        assert _affinity(pid) == {str(core)}
        assert _affinity(server.pid) != {str(core)}  # the server itself is not bound
    finally:
        for process in simultaneous.psutil.Process(server.pid).children(recursive=True):
            process.kill()
        server.kill()
        server.wait()


def test_a_tree_without_one_scheduler_is_refused():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(RuntimeError, match="found 0"):
            simultaneous.scheduler_pid(server.pid)
    finally:
        server.kill()
        server.wait()
