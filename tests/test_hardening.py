"""Hostile input, floods, cancellation, request ids and metrics, against the real engine
(the session's ``python serve_hathora.py`` from conftest.py)."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import openai
import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.engine  # needs the real engine: not in make test-fast

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def chat(**fields) -> dict:
    return {"model": "sglang", "messages": HI, "max_tokens": 4, **fields}


LONG_PROMPT = [{"role": "user", "content": "word " * 5000}]

# (name, method, path, body or raw bytes, headers, status, param, code, words in the message)
HOSTILE = [
    ("json array body", "POST", CHAT, b"[1, 2]", None, 400, None, None, "JSON object"),
    ("json string body", "POST", CHAT, b'"hello"', None, 400, None, None, "JSON object"),
    ("malformed json", "POST", CHAT, b'{"model": "sglang", "messages": [', None, 400, None, None, "not valid JSON"),
    ("empty body", "POST", CHAT, b"", None, 400, None, None, "empty"),
    (
        "text/plain body",
        "POST",
        CHAT,
        b"hello",
        {"content-type": "text/plain"},
        415,
        None,
        "unsupported_media_type",
        "application/json",
    ),
    ("non-utf-8 body", "POST", CHAT, b'{"model": "\xff\xfe"}', None, 400, None, None, "UTF-8"),
    (
        "body over the size limit",
        "POST",
        CHAT,
        b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}',
        None,
        413,
        None,
        "request_too_large",
        "limit",
    ),
    ("missing messages", "POST", CHAT, {"model": "sglang"}, None, 400, "messages", None, "required"),
    ("messages not a list", "POST", CHAT, {"model": "sglang", "messages": "hi"}, None, 400, "messages", None, "list"),
    ("empty messages", "POST", CHAT, {"model": "sglang", "messages": []}, None, 400, "messages", None, "at least one"),
    (
        "unknown role",
        "POST",
        CHAT,
        {"model": "sglang", "messages": [{"role": "wizard", "content": "x"}]},
        None,
        400,
        "messages.0.role",
        None,
        "role",
    ),
    (
        "message without role",
        "POST",
        CHAT,
        {"model": "sglang", "messages": [{"content": "x"}]},
        None,
        400,
        "messages.0.role",
        None,
        "required",
    ),
    ("unknown model", "POST", CHAT, chat(model="gpt-4o"), None, 404, "model", "model_not_found", "does not exist"),
    ("negative max_tokens", "POST", CHAT, chat(max_tokens=-5), None, 400, "max_tokens", None, "at least 1"),
    (
        "zero max_completion_tokens",
        "POST",
        CHAT,
        chat(max_tokens=None, max_completion_tokens=0),
        None,
        400,
        "max_completion_tokens",
        None,
        "at least 1",
    ),
    (
        "absurd max_tokens",
        "POST",
        CHAT,
        chat(max_tokens=10**9),
        None,
        400,
        "max_tokens",
        "context_length_exceeded",
        "context length",
    ),
    ("max_tokens not a number", "POST", CHAT, chat(max_tokens="lots"), None, 400, "max_tokens", None, "integer"),
    ("huge n", "POST", CHAT, chat(n=1_000_000), None, 400, "n", None, "between 1 and 8"),
    ("zero n", "POST", CHAT, chat(n=0), None, 400, "n", None, "between 1 and 8"),
    ("temperature 1e9", "POST", CHAT, chat(temperature=1e9), None, 400, "temperature", None, "<= 2.0"),
    ("negative temperature", "POST", CHAT, chat(temperature=-1), None, 400, "temperature", None, ">= 0"),
    ("top_p above 1", "POST", CHAT, chat(top_p=1.5), None, 400, "top_p", None, "<= 1.0"),
    ("top_p zero", "POST", CHAT, chat(top_p=0), None, 400, "top_p", None, "> 0"),
    (
        "presence_penalty out of range",
        "POST",
        CHAT,
        chat(presence_penalty=5),
        None,
        400,
        "presence_penalty",
        None,
        "<= 2.0",
    ),
    (
        "prompt longer than the context",
        "POST",
        CHAT,
        {"model": "sglang", "messages": LONG_PROMPT},
        None,
        400,
        "messages",
        "context_length_exceeded",
        "tokens",
    ),
    (
        "completions: huge n",
        "POST",
        "/v1/completions",
        {"model": "sglang", "prompt": "x", "n": 10**6},
        None,
        400,
        "n",
        None,
        "between",
    ),
    ("completions: no prompt", "POST", "/v1/completions", {"model": "sglang"}, None, 400, "prompt", None, "required"),
    ("unknown route", "GET", "/v1/engines", None, None, 404, None, None, "no such route"),
    ("wrong method", "GET", CHAT, None, None, 405, None, None, "Method Not Allowed"),
    ("wrong method on models", "POST", "/v1/models", {}, None, 405, None, None, "Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "param", "code", "words"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_request_gets_a_clear_openai_error(
    server: ServerProcess, method, path, body, headers, status, param, code, words
) -> None:
    send_headers = {"content-type": "application/json", **(headers or {})}
    content = body if isinstance(body, bytes) or body is None else httpx.Request("POST", "/", json=body).content
    response = httpx.request(method, server.base_url + path, content=content, headers=send_headers, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code
    assert words.lower() in error["message"].lower(), error["message"]


def test_the_server_still_serves_after_every_hostile_case(server: ServerProcess) -> None:
    """All the cases above sent again, back to back, then a real question: no case may leave the
    engine or the serving loop broken for the requests after it."""
    for _name, method, path, body, headers, *_ in HOSTILE:
        content = body if isinstance(body, bytes) or body is None else httpx.Request("POST", "/", json=body).content
        headers = {"content-type": "application/json", **(headers or {})}
        httpx.request(method, server.base_url + path, content=content, headers=headers, timeout=60)
    assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0)
    answer = client.chat.completions.create(
        model="sglang", messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0
    )
    assert "Paris" in answer.choices[0].message.content
    extra = client.chat.completions.create(model="sglang", messages=HI, max_tokens=2, extra_body={"foo": {"bar": 1}})
    assert extra.choices[0].message.content is not None  # unknown extra fields are accepted


def engine_requests(server: ServerProcess) -> float:
    return server.metrics()["sglang_hathora_engine_requests"]


def timed_answer(server: ServerProcess) -> float:
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}{CHAT}", json=chat(max_tokens=16, temperature=0, ignore_eos=True), timeout=120
    )
    assert response.status_code == 200
    return time.monotonic() - started


def test_flood_of_abandoned_requests_is_aborted_promptly(server: ServerProcess) -> None:
    idle = min(timed_answer(server) for _ in range(2))
    disconnected = "sglang_hathora_aborted_requests_total{reason=client_disconnected}"
    aborted_before = server.metrics().get(disconnected, 0)

    def abandon(index: int) -> None:
        body = chat(max_tokens=400, ignore_eos=True, stream=index % 2 == 0)
        try:
            with (
                httpx.Client(timeout=0.5) as client,
                client.stream("POST", f"{server.base_url}{CHAT}", json=body) as response,
            ):
                for _ in response.iter_bytes():
                    pass
        except httpx.TimeoutException:
            pass  # the client gave up, as intended

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(abandon, range(64)))
    # Nothing abandoned keeps running: the engine's queue empties within a few seconds.
    deadline = time.monotonic() + 30  # a bound that catches a backlog (64 x 400 tokens would take minutes)
    while engine_requests(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine_requests(server) == 0
    fresh = timed_answer(server)
    print(f"flood: idle latency {idle:.2f} s, after the flood {fresh:.2f} s")  # shown with pytest -s
    # A generous bound, not a timing ratio: had the flood not been aborted, the next answer would wait
    # behind 64 x 400 tokens (25,600 tokens at ~60 tokens/s on 2 cores: about 7 min). Measured: 17.8 s
    # right after the flood on a freshly started server (new batch shapes are slow the first time on
    # CPU) against 4.7 s idle, so "under 2x idle" failed on a cold server.
    assert fresh < 60, (fresh, idle)
    # Counted by this test alone (the counter is the process's: earlier tests abort too). At least half
    # of the 64 were still generating when their client left (400 tokens cannot finish in 0.5 s).
    assert server.metrics().get(disconnected, 0) - aborted_before >= 32


def test_request_id_round_trip(server: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="sglang", messages=HI, max_tokens=2, extra_headers={"X-Request-Id": "trace-abc-123"}
    )
    assert raw.request_id == "trace-abc-123"
    assert raw.parse().id == "trace-abc-123"  # the engine request id is the one the client sent
    generated = client.chat.completions.with_raw_response.create(model="sglang", messages=HI, max_tokens=2)
    assert generated.request_id.startswith("chatcmpl-") and generated.parse().id == generated.request_id
    time.sleep(0.2)
    lines = [line for line in server.log_file.read_text().splitlines() if "trace-abc-123" in line]
    assert any("Request started" in line for line in lines)
    assert any("Generation completed" in line for line in lines)
    assert any("Status: 200" in line for line in lines)


def test_metrics_move_by_the_expected_amounts(server: ServerProcess) -> None:
    before = server.metrics()
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="sglang", messages=HI, max_tokens=5, extra_body={"ignore_eos": True})
    chunks = list(
        client.chat.completions.create(
            model="sglang", messages=HI, max_tokens=6, stream=True, extra_body={"ignore_eos": True}
        )
    )
    # Six tokens; SGLang may send two in one chunk when the stream falls behind the engine.
    with_text = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="sglang", messages=HI, temperature=9)
    after = server.metrics()

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert moved("sglang_hathora_http_requests_total{route=/v1/chat/completions,status=200}") == 3
    assert moved("sglang_hathora_http_requests_total{route=/v1/chat/completions,status=400}") == 1
    assert moved("sglang_hathora_completion_tokens_total") == 5 + 5 + 6
    assert moved("sglang_hathora_e2e_request_latency_seconds_count") == 3
    assert moved("sglang_hathora_time_to_first_token_seconds_count") == 1  # only the stream has a first token
    assert moved("sglang_hathora_inter_token_latency_seconds_count") == len(with_text) - 1  # the gaps between them
    assert after["sglang_hathora_ready"] == 1 and after["sglang_hathora_requests_in_flight"] == 0
