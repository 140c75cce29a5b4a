"""Fixtures for the GCP tests: a fake Compute API over HTTP on 127.0.0.1 and a real test key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_compute import FakeCompute, make_service_account_key


@pytest.fixture(scope="session")
def service_account() -> tuple[dict, bytes]:
    return make_service_account_key()


@pytest.fixture
def fake_compute(service_account, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCompute]:
    info, public_pem = service_account
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # never route the fake through a proxy
    fake = FakeCompute(public_pem, info["client_email"]).start()
    try:
        yield fake
    finally:
        fake.stop()
