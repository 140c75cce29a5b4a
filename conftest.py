"""Shared fixtures: one real server (real SGLang engine, bundled model) for the whole session.

Loading takes 20-30 s and 2.3 GB on 2 cores, so every acceptance test drives the same process;
tests that must start their own (bad configuration, failing model) start short-lived ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log_dir = tmp_path_factory.mktemp("server")
    process = ServerProcess(
        log_file=log_dir / "serve_hathora.log",
        extra_env={"HATHORA_REGION": "Seattle", "HATHORA_PROCESS_ID": "proc-test-1", "LOG_LEVEL": "INFO"},
    ).start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def bundled_checkpoint() -> Path:
    from sglang_hathora.engine.bundled_model import checkpoint_dir
    from sglang_hathora.settings import Settings

    path = checkpoint_dir(Settings().model_cache_dir)
    assert path.is_dir(), "run `make test` (it prepares the bundled model first)"
    return path
