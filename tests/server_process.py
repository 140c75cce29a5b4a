"""Start ``python serve_hathora.py`` as a real subprocess on 127.0.0.1 and a free port, and end it by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENTRY = PROJECT_DIR / "serve_hathora.py"
# Bounds that catch hangs only (loading takes 20-30 s on 2 cores).
READY_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The environment pytest was started with, taken when conftest imports this module (before any test
# module runs): a server never inherits what a test module puts into os.environ. The CPU fixes
# (cpu_compat: PYTHONPATH with its shims, SGLANG_USE_CPU_ENGINE) are left out too: the server must set
# them up for its own children, and tests/test_serve_hathora.py checks that it does.
CPU_FIX_VARIABLES = ("PYTHONPATH", "SGLANG_USE_CPU_ENGINE")
LAUNCH_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in CPU_FIX_VARIABLES and not name.startswith(("HATHORA_", "GCP_", "MODEL_PATH", "LOG_"))
}


def server_env(port: int, log_file: Path, **extra: str) -> dict[str, str]:
    """What a test's server starts with: the launch environment, the test's loopback address and port, and
    only the settings the test gives."""
    env = dict(LAUNCH_ENV)
    env.update({"HOST": "127.0.0.1", "PORT": str(port), "LOG_FILE": str(log_file), "NO_PROXY": "127.0.0.1,localhost"})
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    log_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    port_answered_after: float | None = None
    health_codes: list[tuple[int, dict]] = field(default_factory=list)
    last_unready_at: float | None = None  # monotonic time of the last /health answer that was not 200
    ready_after: float | None = None  # seconds from start to the first /health 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.started_at = time.monotonic()
        self.stdout_path = self.log_file.with_suffix(".stdout")
        self._stdout = open(self.stdout_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(ENTRY)],
            cwd=PROJECT_DIR,
            env=server_env(self.port, self.log_file, **self.extra_env),
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /health every 0.1 s, recording each status, until it answers 200."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
                try:
                    response = client.get(f"{self.base_url}/health")
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if self.port_answered_after is None:
                    self.port_answered_after = time.monotonic() - self.started_at
                self.health_codes.append((response.status_code, response.json()))
                if response.status_code == 200:
                    self.ready_after = time.monotonic() - self.started_at
                    return
                self.last_unready_at = time.monotonic()
                time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout} s:\n{self.output()[-4000:]}")

    def metrics(self) -> dict[str, float]:
        """/metrics as ``{'name{label=value,...}': value}`` (labels sorted), for before/after deltas."""
        return scrape(httpx.get(f"{self.base_url}/metrics", timeout=10).text)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL of the whole tree if it does not go; never leaves a process behind."""
        if self.proc is None:
            return None
        children = self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self._stdout.close()
        return self.proc.returncode

    def output(self) -> str:
        if not self._stdout.closed:
            self._stdout.flush()
        return self.stdout_path.read_text(errors="replace")


def scrape(text: str) -> dict[str, float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@contextlib.contextmanager
def ready_server(log_dir: Path, **extra_env: str) -> Iterator[ServerProcess]:
    """A server started, ready and, whatever happens in the block, stopped (shared fixtures, lifecycle tests)."""
    server = ServerProcess(log_file=log_dir / "serve_hathora.log", extra_env=extra_env).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
