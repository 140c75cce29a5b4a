"""A server with the operator settings on: API keys, a small admission limit, JSON logs and CORS, and
one with a short drain timeout; the real engine, the real OpenAI SDK."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.server_process import ServerProcess, ready_server

KEYS = ("key-one-0123456789", "key-two-9876543210")
HI = [{"role": "user", "content": "hi"}]

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "API_KEYS": ",".join(KEYS),
        "MAX_CONCURRENT_REQUESTS": "2",
        "LOG_FORMAT": "json",
        "CORS_ALLOW_ORIGINS": "https://app.example.com",
        "ENABLE_ENGINE_METRICS": "true",
    }
    with ready_server(tmp_path_factory.mktemp("configured"), **env) as server:
        yield server


def sdk(server: ServerProcess, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key or "", max_retries=0, timeout=120)


def test_api_keys(configured: ServerProcess) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(configured, "wrong-key").chat.completions.create(model="sglang", messages=HI, max_tokens=2)
    assert raised.value.body["code"] == "invalid_api_key"
    no_key = httpx.post(f"{configured.base_url}/v1/chat/completions", json={"model": "sglang", "messages": HI})
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{configured.base_url}/v1/models").status_code == 401
    for key in KEYS:
        answer = sdk(configured, key).chat.completions.create(model="sglang", messages=HI, max_tokens=2)
        assert answer.choices[0].message.content is not None
    assert httpx.get(f"{configured.base_url}/health").status_code == 200  # stays open
    assert httpx.get(f"{configured.base_url}/metrics").status_code == 200
    assert KEYS[0] not in configured.log_file.read_text() and "wrong-key" not in configured.log_file.read_text()


def test_cors_preflight_for_the_configured_origin_only(configured: ServerProcess) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = httpx.options(
        f"{configured.base_url}/v1/chat/completions", headers={"Origin": "https://app.example.com", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = httpx.options(
        f"{configured.base_url}/v1/chat/completions", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers


def test_past_the_admission_limit_429_with_retry_after_while_admitted_complete(configured: ServerProcess) -> None:
    client = sdk(configured, KEYS[0])
    results: list[str] = []

    def long_stream() -> None:
        chunks = list(
            client.chat.completions.create(
                model="sglang", messages=HI, max_tokens=60, stream=True, extra_body={"ignore_eos": True}
            )
        )
        results.append(chunks[-1].choices[0].finish_reason)

    threads = [threading.Thread(target=long_stream) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    metrics = ""
    while "sglang_hathora_requests_in_flight 2.0" not in metrics and time.monotonic() < deadline:
        metrics = httpx.get(f"{configured.base_url}/metrics").text
        time.sleep(0.05)
    rejected = httpx.post(
        f"{configured.base_url}/v1/chat/completions",
        json={"model": "sglang", "messages": HI, "max_tokens": 2},
        headers={"Authorization": f"Bearer {KEYS[0]}"},
    )
    assert rejected.status_code == 429
    assert rejected.headers["retry-after"] == "1"
    assert rejected.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sglang", messages=HI, max_tokens=2)
    for thread in threads:
        thread.join(timeout=120)
    assert results == ["length", "length"]  # the admitted ones completed normally
    answer = client.chat.completions.create(model="sglang", messages=HI, max_tokens=2)  # room again
    assert answer.choices


def test_engine_metrics_join_ours(configured: ServerProcess) -> None:
    text = httpx.get(f"{configured.base_url}/metrics").text
    assert "sglang_hathora_http_requests_total" in text
    assert "sglang:generation_tokens_total" in text  # from SGLang's scheduler process


def test_json_logs_carry_the_request_id(configured: ServerProcess) -> None:
    sdk(configured, KEYS[0]).chat.completions.create(
        model="sglang", messages=HI, max_tokens=2, extra_headers={"X-Request-Id": "json-log-id-1"}
    )
    time.sleep(0.2)
    entries = [json.loads(line) for line in configured.log_file.read_text().splitlines()]
    assert {"timestamp", "logger", "level", "message", "request_id"} <= set(entries[0])
    mine = [entry for entry in entries if entry["request_id"] == "json-log-id-1"]
    assert any("Generation completed" in entry["message"] for entry in mine)
    assert any("Status: 200" in entry["message"] for entry in mine)


def test_drain_timeout_ends_a_running_stream_as_an_api_error(tmp_path) -> None:
    """On a server of its own, which it ends: the module's server stays up whatever the order."""
    with ready_server(tmp_path, DRAIN_TIMEOUT="6") as own:  # the stream is aborted 3 s before the end
        stream = sdk(own, "unused").chat.completions.create(
            model="sglang", messages=HI, max_tokens=2000, stream=True, extra_body={"ignore_eos": True}
        )
        received = 0
        with pytest.raises(openai.APIError) as raised:
            for _chunk in stream:
                received += 1
                if received == 3:
                    own.signal(signal.SIGTERM)
        assert "drain timeout" in str(raised.value)
        assert received < 2000
        assert own.wait(timeout=60) == 0
