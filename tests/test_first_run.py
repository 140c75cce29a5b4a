"""A newcomer's first run, as a person does it: ``make serve`` in a fresh clone (its own venv, install
and model conversion), the first request once it says ready, then Ctrl+C in the terminal.

The fresh clone is every file git tracks, as it is in the working tree (a clean clone in CI). Ctrl+C is
SIGINT to the terminal's foreground process group: make, the server and SGLang's children all get it.
What must hold, from the first line to the exit: no line with ERROR or Traceback, one line naming the
URL with a curl that works as printed, a clean stop with the server's exit status 0, no process left.

GNU make itself ends by the SIGINT it got once its child has exited (it re-raises it, so that a shell
script running ``make serve`` stops on Ctrl+C too): its own status is -SIGINT, with no ``make: ***``
line; the server's status is the one the stop reports.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.server_process import LAUNCH_ENV, PROJECT_DIR, free_port

INSTALL_AND_READY_TIMEOUT = 1500.0  # a cold install and conversion on a busy 2-core machine: 3-6 min


def fresh_clone(into: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    clone = into / "sglang-hathora"
    for name in filter(None, files):
        source, target = PROJECT_DIR / name.decode(), clone / name.decode()
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    return clone


def terminal_env(home_cache: Path, port: int) -> dict[str, str]:
    """A person's shell: no make of ours around it, no venv active, the model cache empty."""
    env = {k: v for k, v in LAUNCH_ENV.items() if not k.startswith(("MAKE", "MFLAGS", "VIRTUAL_ENV", "VENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv" not in p)
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "MODEL_CACHE_DIR": str(home_cache)})
    return env


@pytest.mark.engine
@pytest.mark.timeout(1800)
def test_make_serve_in_a_fresh_clone_then_ctrl_c(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    port = free_port()
    output = tmp_path / "terminal.txt"
    with output.open("wb") as terminal:
        make = subprocess.Popen(
            ["make", "serve"],
            cwd=clone,
            env=terminal_env(tmp_path / "model-cache", port),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            # SIGINT as a terminal leaves it: a test run started in the background (CI) inherits it
            # ignored, and make would then ignore Ctrl+C, not stop on it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    group = make.pid
    try:
        ready_line = wait_for_ready_line(output, make, INSTALL_AND_READY_TIMEOUT)
        curl = ready_line.split(" - try: ", 1)[1]
        assert f"http://127.0.0.1:{port}" in ready_line
        answer = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=120)
        assert "Paris" in answer.stdout, answer

        os.killpg(group, signal.SIGINT)
        make.wait(timeout=60)
    finally:
        if make.poll() is None:
            os.killpg(group, signal.SIGKILL)
            make.wait()
    left = processes_in_group(group, settle=5.0)
    text = output.read_text(errors="replace")
    lines = text.splitlines()

    assert left == [], left
    assert make.returncode == -signal.SIGINT, (make.returncode, lines[-5:])
    assert lines[-1].endswith("Exited with status 0"), lines[-5:]
    assert not [line for line in lines if "ERROR" in line or "Traceback" in line or "make: ***" in line], text
    # A quiet install: one line per step with its time, and what the CPU install left out said once.
    steps = [line for line in lines if line.startswith("install: ")]
    timed = [line for line in steps if not re.search(r"left out|kept for|environment ready", line)]
    assert timed and all(re.search(r"\d+ s$", line) for line in timed), steps
    assert sum("left out on purpose" in line for line in steps) == 1, steps
    assert sum(line.startswith("model: preparing the bundled") for line in lines) == 1
    assert "Stopping (SIGINT)" in text


def wait_for_ready_line(output: Path, make: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in output.read_text(errors="replace").splitlines():
            if " - Ready on http://" in line:
                return line
        if make.poll() is not None:
            pytest.fail(f"make serve ended ({make.returncode}) before ready:\n{output.read_text()[-4000:]}")
        time.sleep(1.0)
    pytest.fail(f"no ready line within {timeout:.0f} s:\n{output.read_text()[-4000:]}")


def processes_in_group(group: int, settle: float) -> list[str]:
    """The processes still in the group, after up to ``settle`` seconds for exits under way."""
    deadline = time.monotonic() + settle
    while True:
        found = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(group)], capture_output=True, text=True)
        left = [line.strip() for line in found.stdout.splitlines() if line.strip()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_the_ready_line_names_the_url_and_a_curl_that_parses() -> None:
    from sglang_hathora.lifecycle.lifecycle import ready_line
    from sglang_hathora.settings import Settings

    line = ready_line(Settings(host="0.0.0.0", port=8123))
    assert line.startswith("Ready on http://127.0.0.1:8123 - try: curl ")
    argv = shlex.split(line.split(" - try: ", 1)[1])
    assert argv[:3] == ["curl", "-s", "http://127.0.0.1:8123/v1/chat/completions"]
    assert '"model": "sglang"' in argv[-1]
    with_keys = ready_line(Settings(host="10.0.0.5", port=80, api_keys="k1"))
    assert "Authorization: Bearer $API_KEY" in with_keys and "k1" not in with_keys
