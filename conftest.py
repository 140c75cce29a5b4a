"""Shared fixtures: one real server (real SGLang engine, bundled model) for the whole session.

Loading takes 20-30 s and 2.3 GB on 2 cores, so every acceptance test drives the same process;
tests that must start their own (bad configuration, failing model) start short-lived ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import image_builds, run_order
from tests.server_process import ServerProcess, ready_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lanes", action="store_true", help="with -n 2: the engine lane and the container lane")
    parser.addoption("--shuffle", type=int, metavar="SEED", help="files, and the tests in each, in a random order")


def pytest_configure(config: pytest.Config) -> None:
    image_builds.folder()  # names this run's build folder before any xdist worker is started


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_order.order(items, config.getoption("shuffle"))  # container tests last


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return run_order.lane_scheduler(config, log) if config.getoption("lanes") else None


# The images build in the background from the moment the session knows a container test will run
# (tests/image_builds.py): after collection without xdist; with it, in the controller, once the first
# worker has collected (a worker never starts it: the controller owns it and ends it).
def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = any(run_order.is_container_test(item) for item in session.items)
    if wanted and not hasattr(session.config, "workerinput") and image_builds.docker_engine_answers():
        image_builds.start()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    wanted = any(run_order.lane_of(test_id) == run_order.CONTAINER_LANE for test_id in ids)
    if wanted and not image_builds.folder().exists() and image_builds.docker_engine_answers():
        image_builds.start()


def pytest_sessionfinish() -> None:
    image_builds.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"HATHORA_REGION": "Seattle", "HATHORA_PROCESS_ID": "proc-test-1", "LOG_LEVEL": "INFO"}
    with ready_server(tmp_path_factory.mktemp("server"), **env) as process:
        yield process


@pytest.fixture(scope="session")
def bundled_checkpoint() -> Path:
    from sglang_hathora.engine.bundled_model import checkpoint_dir
    from sglang_hathora.settings import Settings

    path = checkpoint_dir(Settings().model_cache_dir)
    assert path.is_dir(), "run `make test` (it prepares the bundled model first)"
    return path
