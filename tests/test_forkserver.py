"""engine/forkserver.py: when it is on, what a child gets from it, and the refusal of a CUDA-initialising
preload. The forked children of the real engine are checked in test_serve_hathora.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from sglang_hathora.engine import forkserver
from sglang_hathora.engine.cpu_compat import PROJECT_DIR


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [("auto", "cpu", True), ("auto", "cuda", False), ("on", "cuda", True), ("on", "cpu", True), ("off", "cpu", False)],
)
def test_on_by_default_for_the_cpu_only(setting: str, device: str, expected: bool) -> None:
    assert forkserver.enabled(setting, device) is expected


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    """``body`` as a script in a fresh interpreter: each gets a forkserver of its own (one per process);
    a file, so that the children can find its functions."""
    script = tmp_path / "script.py"
    script.write_text("import os, sys\nfrom sglang_hathora.engine import forkserver\n" + textwrap.dedent(body))
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.run(
        [sys.executable, str(script)], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_child_runs_with_the_environment_its_start_saw_and_the_preload_imported(tmp_path) -> None:
    result = run_script(
        tmp_path,
        """
        def report(path):
            with open(path, "w") as file:
                file.write(os.environ.get("SET_AFTER_THE_FORKSERVER", "missing") + " " + str("colorsys" in sys.modules))

        if __name__ == "__main__":
            forkserver.start(("colorsys",))
            os.environ["SET_AFTER_THE_FORKSERVER"] = "seen"  # as SGLang sets SGLANG_RUN_ID before each start
            path = sys.argv[0] + ".out"
            child = forkserver.PreloadedProcess(target=report, args=(path,))
            child.start()
            child.join(60)
            print(child.exitcode, open(path).read(), "colorsys" in sys.modules)
        """,
    )
    assert result.returncode == 0, result.stderr
    # The child saw the variable set after the forkserver started, and colorsys was there before it ran
    # (imported by the forkserver, not by this process).
    assert result.stdout.split() == ["0", "seen", "True", "False"], result.stdout


def test_a_preload_that_initialises_cuda_is_refused_with_the_setting_named(tmp_path) -> None:
    result = run_script(
        tmp_path,
        """
        def never():
            print("the target ran")

        if __name__ == "__main__":
            forkserver.start(("tests.forkserver_preloads.cuda_initialising",))
            child = forkserver.PreloadedProcess(target=never)
            child.start()
            child.join(60)
            print("exit", child.exitcode)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "exit 1" in result.stdout and "the target ran" not in result.stdout, result.stdout
    assert "CUDA was initialised in the forkserver" in result.stderr and "ENGINE_FORKSERVER=off" in result.stderr


def test_the_forkserver_ends_with_the_server_even_while_it_imports(tmp_path) -> None:
    """A server that exits (a configuration error) during the preload takes its forkserver with it."""
    started = time.monotonic()
    result = run_script(
        tmp_path,
        """
        import multiprocessing.forkserver

        if __name__ == "__main__":
            forkserver.start(("sglang_hathora.engine.forkserver_preload", "tests.forkserver_preloads.slow"))
            print(multiprocessing.forkserver._forkserver._forkserver_pid, flush=True)
            import time
            time.sleep(1)  # the preload has begun
            os._exit(0)
        """,
    )
    pid = int(result.stdout.split()[0])
    # Nothing held the script's stdout open after its exit (the forkserver would, for the preload's 60 s).
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_sigquit_from_a_child_to_its_forkserver_reaches_the_server(tmp_path) -> None:
    """SGLang's scheduler signals its parent with SIGQUIT when it fails; its parent is the forkserver."""
    result = run_script(
        tmp_path,
        """
        import signal, threading, psutil

        def fail_like_sglangs_scheduler():
            psutil.Process().parent().send_signal(signal.SIGQUIT)

        if __name__ == "__main__":
            got = threading.Event()
            signal.signal(signal.SIGQUIT, lambda *_: got.set())
            forkserver.start(("sglang_hathora.engine.forkserver_preload",))
            child = forkserver.PreloadedProcess(target=fail_like_sglangs_scheduler)
            child.start()
            child.join(60)
            print("server got SIGQUIT:", got.wait(10), "child exit", child.exitcode)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "server got SIGQUIT: True child exit 0" in result.stdout, result.stdout


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("kind", ["PreloadedProcess", "QuietSpawnProcess"])
def test_the_engine_children_ignore_the_terminals_sigint(tmp_path, kind: str) -> None:
    """Ctrl+C reaches the whole process group: a child that took it printed a KeyboardInterrupt
    traceback; both kinds of child (forked from the forkserver, or spawned) ignore it, the parent not."""
    result = run_script(
        tmp_path,
        f"""
        import signal

        def report(path):
            os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl+C
            with open(path, "w") as file:
                file.write(str(signal.getsignal(signal.SIGINT) is signal.SIG_IGN))

        if __name__ == "__main__":
            # As in a terminal: Python's own handler (a run started in the background inherits SIGINT
            # ignored, and its children would ignore it whatever this code does).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if "{kind}" == "PreloadedProcess":
                forkserver.start(("colorsys",))
            path = sys.argv[0] + ".out"
            child = forkserver.{kind}(target=report, args=(path,))
            child.start()
            child.join(60)
            print(child.exitcode, open(path).read(), signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.split() == ["0", "True", "True"], (result.stdout, result.stderr)
