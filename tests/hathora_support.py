"""What the Hathora + GCP end-to-end tests share: the environment of a registering server, waiting,
and the checks that no engine child outlives the server."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import psutil

from tests.fake_compute import FakeCompute, encode_key
from tests.server_process import ServerProcess

HOSTNAME = "abc123.hathora.dev"
PUBLIC_PORT = 7777
FQDN_ENDPOINT = {"fqdn": HOSTNAME, "port": PUBLIC_PORT}


def registration_env(fake: FakeCompute, service_account, **extra: str) -> dict[str, str]:
    env = {
        "HATHORA_HOSTNAME": HOSTNAME,
        "HATHORA_DEFAULT_PORT": str(PUBLIC_PORT),
        "HATHORA_REGION": "Seattle",
        "GCP_SERVICE_ACCOUNT_KEY_BASE64": encode_key(service_account[0]),
        "GCP_API_ENDPOINT": fake.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def health(server: ServerProcess) -> httpx.Response:
    return httpx.get(f"{server.base_url}/health", timeout=5)


def assert_no_orphans(children: list[psutil.Process]) -> None:
    time.sleep(0.3)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
