"""Where the container images get built for the tests: in the background, while the other tests run.

On a fresh machine the two builds (``make docker-cpu`` and ``make docker-hathora-standin``) took
448 s and 187 s, a third of CI, while the engine tests keep the 2 cores only part busy. So the builds
start as soon as the session knows it will run a container test, at the lowest priority (``nice -n 19``
here; ``.ci/run`` also puts dockerd's containers, where the build steps run, under the smallest CPU
weight), the container tests run in a lane of their own (tests/run_order.py) once it is done.

``make test`` runs pytest-xdist workers: the controller starts the build (it sees every worker's
collection), a container test waits for it in whichever worker runs it, and the controller ends a
build still running when the session ends. So the build's state is files in one folder per test run
(its log and exit status), named by an id the workers inherit from the controller.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.server_process import PROJECT_DIR

TARGETS = ("docker-cpu", "docker-hathora-standin")
_RUN_ID = "SGLANG_HATHORA_TEST_RUN"
BUILD_SECRET = "hf_sglangHathoraTestCanary7c1e0b9d"  # no real token: a marker to look for

_build: subprocess.Popen | None = None  # set in the one process that started the build


def folder() -> Path:
    """This test run's build folder: the first pytest process names it, its xdist workers inherit it."""
    run = os.environ.setdefault(_RUN_ID, str(os.getpid()))
    return Path(tempfile.gettempdir()) / f"sglang-hathora-image-builds-{run}"


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start() -> None:
    """Start both builds once per test run (a no-op when some process has started them)."""
    global _build
    try:
        folder().mkdir()  # atomic: exactly one process of the run gets past here
    except FileExistsError:
        return
    # The hathora image's build gets a token as a BuildKit secret, as a gated model's build would:
    # tests/test_containers.py looks for it in the image and its history (it must be in neither).
    # The same token every run: BuildKit's cache key ignores a secret's content, so a layer cached from
    # an earlier run was built with this one too (a fresh token per run hid a leak behind the cache).
    (folder() / "hf_token").write_text(BUILD_SECRET + "\n")
    with (folder() / "log").open("w") as log:
        _build = subprocess.Popen(
            # The exit status lands in a file any worker can read.
            ["sh", "-c", 'nice -n 19 make "$@"; echo $? > "$0/status"', str(folder()), *TARGETS],
            cwd=PROJECT_DIR,
            env={**os.environ, "HF_TOKEN_FILE": str(folder() / "hf_token")},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: ended as one by stop()
        )


def wait(timeout: float) -> None:
    """Wait for the builds (starting them if nobody has); fail with the end of their output."""
    start()
    status, deadline = folder() / "status", time.monotonic() + timeout
    while not status.exists() or not status.read_text().strip():
        if time.monotonic() > deadline:
            _end_build()
            raise AssertionError(f"the image builds took over {timeout:.0f} s:\n{_log_tail()}")
        if _build is not None and _build.poll() is not None and not status.exists():
            break  # ended without writing its status: killed
        time.sleep(1)
    code = status.read_text().strip() if status.exists() else "nothing (killed)"
    assert code == "0", f"`make {' '.join(TARGETS)}` exited {code}:\n{_log_tail()}"


def stop() -> None:
    """At the session's end, in the process that started the build: end it if it still runs (the
    session ended first) and remove the run's folder."""
    if _build is not None:
        _end_build()
        shutil.rmtree(folder(), ignore_errors=True)


def _end_build() -> None:
    if _build is not None and _build.poll() is None:
        os.killpg(_build.pid, signal.SIGTERM)
        try:
            _build.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(_build.pid, signal.SIGKILL)
            _build.wait()


def _log_tail() -> str:
    with contextlib.suppress(OSError):
        return (folder() / "log").read_text()[-4000:]
    return "(no build log)"
