"""Routes before the engine is ready (a narrow unit test: the engine is never started here;
the real engine is exercised by test_serve_hathora.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sglang_hathora.engine.service import EngineService
from sglang_hathora.engine.startup import StartupPhases
from sglang_hathora.http.app import create_app
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.lifecycle.state import State
from sglang_hathora.metrics import Metrics
from sglang_hathora.settings import Settings


@pytest.fixture
def loading_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    settings = Settings(hathora_region="London", log_file=None)
    startup = StartupPhases()
    lifecycle = Lifecycle(settings, EngineService(settings, startup), Metrics(), startup)

    async def never_loads() -> None:
        return None

    monkeypatch.setattr(lifecycle, "_load", never_loads)
    with TestClient(create_app(settings, lifecycle)) as client:
        yield client


def test_health_is_503_while_loading(loading_client: TestClient) -> None:
    response = loading_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["engine_status"] == "loading"
    assert body["hathora_region"] == "London"
    assert set(body) == {"status", "engine_status", "hathora_region", "model_path", "timestamp", "startup"}
    assert set(body["startup"]) == {"phase", "elapsed", "phases"} and body["startup"]["elapsed"] > 0
    assert response.headers["retry-after"]


def test_liveness_is_200_while_loading(loading_client: TestClient) -> None:
    response = loading_client.get("/livez")
    assert response.status_code == 200
    assert response.json()["status"] == "alive" and response.json()["engine_status"] == "loading"


def test_generation_is_503_in_openai_shape_while_loading(loading_client: TestClient) -> None:
    response = loading_client.post("/v1/chat/completions", json={"model": "sglang", "messages": []})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["retry-after"]


def test_unknown_route_and_wrong_method_are_nested_errors(loading_client: TestClient) -> None:
    missing = loading_client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    wrong = loading_client.get("/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["message"]


def test_root_describes_the_service(loading_client: TestClient) -> None:
    body = loading_client.get("/").json()
    assert body["service"] == "sglang-hathora" and body["engine_status"] == "loading"
    assert loading_client.get("/openapi.json").json()["paths"]["/v1/chat/completions"]


def test_a_stop_reports_503_with_its_state(loading_client: TestClient) -> None:
    assert loading_client.app.state.lifecycle.machine.to(State.DETACHING)
    response = loading_client.get("/health")
    assert response.status_code == 503 and response.json()["engine_status"] == "detaching"


def test_models_is_503_until_the_engine_serves(loading_client: TestClient) -> None:
    # sglang.bench_serving and other clients take a 200 from /v1/models as "ready".
    response = loading_client.get("/v1/models")
    assert response.status_code == 503 and response.headers["retry-after"]
