"""Where the container images get built for the tests: in the background, while the other tests run.

On a fresh machine the two builds (``make docker-cpu`` and ``make docker-hathora-standin``) took
448 s and 187 s, a third of CI, while the engine tests before them keep the 2 cores only about half
busy (27 min 44 s of user CPU in 27 min 32 s of wall time). So the builds start as soon as the
session knows it will run a container test, at the lowest priority (``nice -n 19`` here; ``.ci/run``
also puts dockerd's containers, where the build steps run, under the smallest CPU weight), the
container tests run last (``order_docker_tests_last``), and their fixtures wait for the build.
The build is ended by its process group if the session ends first.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.server_process import PROJECT_DIR

TARGETS = ("docker-cpu", "docker-hathora-standin")
LOG = Path(tempfile.gettempdir()) / f"sglang-hathora-image-builds-{os.getpid()}.log"

_build: subprocess.Popen | None = None


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start() -> None:
    """Start both builds once (a no-op when they are running or done)."""
    global _build
    if _build is not None:
        return
    with LOG.open("w") as log:
        _build = subprocess.Popen(
            ["nice", "-n", "19", "make", *TARGETS],
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: ended as one by stop()
        )


def wait(timeout: float) -> None:
    """Wait for the builds (starting them if nobody has); fail with the end of their output."""
    start()
    assert _build is not None
    try:
        code = _build.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop()
        raise AssertionError(f"the image builds took over {timeout:.0f} s:\n{LOG.read_text()[-4000:]}") from None
    assert code == 0, f"`make {' '.join(TARGETS)}` exited {code}:\n{LOG.read_text()[-4000:]}"


def stop() -> None:
    """End a build still running (the session ended before the container tests)."""
    if _build is not None and _build.poll() is None:
        os.killpg(_build.pid, signal.SIGTERM)
        try:
            _build.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(_build.pid, signal.SIGKILL)
            _build.wait()


def order_docker_tests_last(items: list) -> None:
    """Container tests after every other one (a stable sort: each group keeps its order)."""
    items.sort(key=lambda item: item.get_closest_marker("docker") is not None)
