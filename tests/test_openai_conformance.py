"""Every body the server sends, checked against OpenAI's published OpenAPI document (tests/openai_contract.py):
plain bodies, every SSE chunk and every typed Responses event, for every endpoint and the error paths, on
the real engine with the bundled model. Bodies are read raw over HTTP (httpx), not through an SDK that
would forgive them. Each shape names what it sends; ``SHAPES`` and the stateful tests below it make more
than 40 of them, and the expected count of violations is zero."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.openai_contract import Contract, sse_events
from tests.server_process import ServerProcess, ready_server

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

KEYS = ("conformance-key-a-0123456789", "conformance-key-b-9876543210")
BODY_LIMIT = 65536
ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
STREAM_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionStreamResponse",
    "/v1/completions": "CreateCompletionResponse",
}
PLAIN_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionResponse",
    "/v1/completions": "CreateCompletionResponse",
    "/v1/responses": "Response",
    "/v1/models": "ListModelsResponse",
}


@dataclass
class Shape:
    name: str
    path: str
    body: dict[str, Any] | None = None
    method: str = "POST"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def chat(name: str, **body: Any) -> Shape:
    return Shape(name, "/v1/chat/completions", {"model": "sglang", "messages": ASK, "max_tokens": 8, **body})


def completion(name: str, **body: Any) -> Shape:
    return Shape(
        name, "/v1/completions", {"model": "sglang", "prompt": "The capital of France is", "max_tokens": 8, **body}
    )


def response(name: str, **body: Any) -> Shape:
    return Shape(
        name,
        "/v1/responses",
        {"model": "sglang", "input": "What is the capital of France?", "max_output_tokens": 8, **body},
    )


JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True}}
STREAM_USAGE = {"stream": True, "stream_options": {"include_usage": True}}

# fmt: off
SHAPES = [
    chat("chat"),
    chat("chat-system", messages=[{"role": "system", "content": "Be brief."}, *ASK]),
    chat("chat-content-parts", messages=[{"role": "user", "content": [{"type": "text", "text": "Say hi."}]}]),
    chat("chat-n2", n=2, temperature=0.8),
    chat("chat-logprobs", logprobs=True, top_logprobs=3),
    chat("chat-stop", stop=["."], max_tokens=16),
    chat("chat-length-cut", max_tokens=2),
    chat("chat-max-completion-tokens", max_completion_tokens=4, max_tokens=None),
    chat("chat-sampling", temperature=0.7, top_p=0.9, seed=7, presence_penalty=0.5, frequency_penalty=0.5),
    chat("chat-logit-bias", logit_bias={"42": -100}),
    chat("chat-tool-required", tools=[WEATHER], tool_choice="required", max_tokens=40),
    chat("chat-tool-named", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}},
         max_tokens=40),
    chat("chat-tool-history", tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C."}]),
    chat("chat-json-schema", response_format=JSON_SCHEMA_FORMAT, max_tokens=30),
    chat("chat-json-object", response_format={"type": "json_object"}, max_tokens=12),
    chat("chat-user-and-metadata", user="user-1", metadata={"team": "conformance"}),
    chat("chat-stream", stream=True),
    chat("chat-stream-usage", **STREAM_USAGE),
    chat("chat-stream-n2", n=2, temperature=0.8, **STREAM_USAGE),
    chat("chat-stream-logprobs", stream=True, logprobs=True, top_logprobs=2),
    chat("chat-stream-tool-required", stream=True, tools=[WEATHER], tool_choice="required", max_tokens=40),
    chat("chat-stream-tool-named", tools=[WEATHER], max_tokens=40, stream=True,
         tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    chat("chat-stream-json-schema", response_format=JSON_SCHEMA_FORMAT, max_tokens=30, stream=True),
    chat("chat-stream-length-cut", max_tokens=2, **STREAM_USAGE),
    chat("chat-stream-stop", stop=["."], max_tokens=16, stream=True),
    completion("completion"),
    completion("completion-n2", n=2, temperature=0.8),
    completion("completion-logprobs", logprobs=2),
    completion("completion-echo", echo=True, max_tokens=3),
    completion("completion-stop", stop=["."], max_tokens=16),
    completion("completion-prompts", prompt=["The capital of France is", "One, two,"]),
    completion("completion-stream", stream=True),
    completion("completion-stream-usage", **STREAM_USAGE),
    completion("completion-stream-logprobs", stream=True, logprobs=1),
    response("response"),
    response("response-instructions", instructions="Answer in one word."),
    response("response-items", input=[{"role": "user", "content": [{"type": "input_text", "text": "Say hi."}]}]),
    response("response-tool-required", tools=[{"type": "function", "name": "get_weather", "description": "Weather.",
                                              "parameters": WEATHER["function"]["parameters"]}],
             tool_choice="required", max_output_tokens=40),
    response("response-json-schema", text={"format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA}},
             max_output_tokens=30),
    response("response-json-object", text={"format": {"type": "json_object"}}, max_output_tokens=12),
    response("response-length-cut", max_output_tokens=2),
    response("response-metadata-unstored", metadata={"k": "v"}, store=False),
    response("response-stream", stream=True),
    response("response-stream-instructions", stream=True, instructions="Answer in one word."),
    Shape("models", "/v1/models", method="GET"),
    # Error paths: every one an ErrorResponse.
    Shape("error-400-temperature", "/v1/chat/completions", {"model": "sglang", "messages": ASK, "temperature": 7},
          status=400),
    Shape("error-400-no-messages", "/v1/chat/completions", {"model": "sglang"}, status=400),
    Shape("error-400-bad-json", "/v1/completions", None, status=400, headers={"Content-Type": "application/json"}),
    Shape("error-400-template-kwargs", "/v1/chat/completions",
          {"model": "sglang", "messages": ASK, "chat_template_kwargs": {"add_generation_prompt": False}}, status=400),
    Shape("error-400-context", "/v1/chat/completions",
          {"model": "sglang", "messages": [{"role": "user", "content": "word " * 5000}]}, status=400),
    Shape("error-400-responses-stream", "/v1/responses", {"model": "sglang", "input": "hi", "stream": True,
                                                           "temperature": -1}, status=400),
    Shape("error-401-no-key", "/v1/chat/completions", {"model": "sglang", "messages": ASK}, status=401,
          headers={"Authorization": ""}),
    Shape("error-401-wrong-key", "/v1/models", method="GET", status=401, headers={"Authorization": "Bearer wrong"}),
    Shape("error-404-route", "/v1/nothing-here", method="GET", status=404),
    Shape("error-404-response", "/v1/responses/resp_proc-conformance_" + "0" * 32, method="GET", status=404),
    Shape("error-404-model", "/v1/chat/completions", {"model": "no-such-model", "messages": ASK}, status=404),
]
# fmt: on


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "API_KEYS": ",".join(KEYS),
        "MAX_CONCURRENT_REQUESTS": "4",
        "MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT),
        "HATHORA_PROCESS_ID": "proc-conformance",
    }
    with ready_server(tmp_path_factory.mktemp("conformance"), **env) as process:
        yield process


@pytest.fixture(scope="module")
def http(conformance_server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    with httpx.Client(base_url=conformance_server.base_url, headers=headers, timeout=120) as client:
        yield client


def checked(contract: Contract, shape: Shape, reply: httpx.Response) -> list[str]:
    """The violations in one reply: its body, or each of its SSE events."""
    where = f"{shape.name} ({reply.status_code})"
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        found = []
        events = sse_events(reply.text)
        assert events, f"{where}: an empty stream"
        for index, (_, event) in enumerate(events):
            if event == "[DONE]":
                continue
            if "error" in event and "type" not in event:
                schema = "ErrorResponse"
            elif shape.path == "/v1/responses":
                schema = contract.event_schema(event)
            else:
                schema = STREAM_SCHEMAS[shape.path]
            found += contract.violations(schema, event, f"{where} event {index}")
        return found
    body = reply.json()
    schema = PLAIN_SCHEMAS[_route(shape.path)] if reply.status_code == 200 else "ErrorResponse"
    return contract.violations(schema, body, where)


def _route(path: str) -> str:
    return "/v1/responses" if path.startswith("/v1/responses") else path


def send(http: httpx.Client, shape: Shape) -> httpx.Response:
    body = None if shape.body is None else {k: v for k, v in shape.body.items() if v is not None}
    return http.request(shape.method, shape.path, json=body, headers=shape.headers)


@pytest.mark.parametrize("shape", SHAPES, ids=[shape.name for shape in SHAPES])
def test_every_body_of_every_shape_is_valid_against_the_spec(http: httpx.Client, contract: Contract, shape: Shape):
    reply = send(http, shape)
    assert reply.status_code == shape.status, reply.text[:2000]
    assert checked(contract, shape, reply) == []


def test_stored_responses_retrieve_cancel_and_previous_response_id(http: httpx.Client, contract: Contract) -> None:
    create = response("response-stored")
    first = send(http, create)
    response_id = first.json()["id"]
    follow = response("response-previous-id", previous_response_id=response_id, input="And of Italy?")
    retrieve = Shape("response-retrieve", f"/v1/responses/{response_id}", method="GET")
    cancel = Shape("response-cancel", f"/v1/responses/{response_id}/cancel", {})
    follow_stream = response("response-previous-id-stream", previous_response_id=response_id, stream=True)
    found = checked(contract, create, first)
    for shape in (follow, retrieve, cancel, follow_stream):
        reply = send(http, shape)
        assert reply.status_code == 200, reply.text[:2000]
        found += checked(contract, shape, reply)
    assert found == []


def test_another_keys_stored_response_is_a_404_like_an_unknown_id(
    conformance_server: ServerProcess, http: httpx.Client, contract: Contract
) -> None:
    response_id = send(http, response("response-owned")).json()["id"]
    other = {"Authorization": f"Bearer {KEYS[1]}"}
    unknown = send(http, Shape("unknown", "/v1/responses/resp_proc-conformance_" + "0" * 32, method="GET"))
    shapes = [
        Shape("error-404-other-key-retrieve", f"/v1/responses/{response_id}", method="GET", headers=other),
        Shape("error-404-other-key-cancel", f"/v1/responses/{response_id}/cancel", {}, headers=other),
        Shape(
            "error-404-other-key-previous",
            "/v1/responses",
            {"model": "sglang", "input": "hi", "previous_response_id": response_id, "max_output_tokens": 2},
            headers=other,
        ),
    ]
    found = []
    for shape in shapes:
        reply = send(http, shape)
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"]["code"] == unknown.json()["error"]["code"] == "response_not_found"
        assert response_id in reply.json()["error"]["message"]
        found += checked(contract, shape, reply)
    # The owner still reads it.
    assert send(http, Shape("owner-retrieve", f"/v1/responses/{response_id}", method="GET")).status_code == 200
    assert found == []


def test_chat_template_kwargs_that_collide_with_the_template_call_get_400_naming_the_key(http: httpx.Client) -> None:
    for key in ("add_generation_prompt", "tokenize", "messages", "return_dict", "tools", "chat_template"):
        for path, body in (
            ("/v1/chat/completions", {"messages": ASK}),
            ("/v1/responses", {"input": "hi"}),
        ):
            reply = http.post(path, json={"model": "sglang", **body, "chat_template_kwargs": {key: True}})
            assert reply.status_code == 400, (key, path, reply.text)
            error = reply.json()["error"]
            assert error["param"] == f"chat_template_kwargs.{key}" and key in error["message"], error
    plain = http.post(
        "/v1/chat/completions",
        json={"model": "sglang", "messages": ASK, "max_tokens": 2, "chat_template_kwargs": {"enable_thinking": False}},
    )
    assert plain.status_code == 200, plain.text


def test_409_413_429_and_a_failure_mid_stream_are_valid_error_bodies(
    conformance_server: ServerProcess, http: httpx.Client, contract: Contract
) -> None:
    found: list[str] = []
    long_stream = {"model": "sglang", "messages": ASK, "max_tokens": 400, "ignore_eos": True, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=long_stream, headers={"X-Request-Id": "held"}) as held:
        lines = held.iter_lines()  # kept: a dropped iterator closes the connection, and the server aborts
        next(lines)  # the first chunk: it is in flight
        duplicate = chat("error-409-duplicate-id")
        duplicate.headers = {"X-Request-Id": "held"}
        reply = send(http, duplicate)
        assert reply.status_code == 409, reply.text
        found += checked(contract, duplicate, reply)
        crowd = chat("error-429-admission", n=4)
        reply = send(http, crowd)
        assert reply.status_code == 429, reply.text
        found += checked(contract, crowd, reply)
    too_large = Shape(
        "error-413-body",
        "/v1/chat/completions",
        {"model": "sglang", "messages": ASK, "user": "x" * (BODY_LIMIT + 1)},
        status=413,
    )
    reply = send(http, too_large)
    assert reply.status_code == 413, reply.text
    found += checked(contract, too_large, reply)
    found += _mid_stream_failures(http, contract)
    assert found == []


def _mid_stream_failures(http: httpx.Client, contract: Contract) -> list[str]:
    """A stream whose generation fails after the 200 went out ends with an error event and [DONE]
    (here: a grammar no token of this model can continue, "\x04" having none, which the engine
    finds only after the first tokens were sent)."""
    found = []
    for shape in (
        chat("error-mid-stream-chat", regex="P\x04", stream=True),
        completion("error-mid-stream-completion", regex="P\x04", stream=True),
    ):
        reply = send(http, shape)
        assert reply.status_code == 200, reply.text
        events = [event for _, event in sse_events(reply.text)]
        assert "error" in events[-2] and events[-1] == "[DONE]", reply.text
        assert any("choices" in event for event in events[:-2]), reply.text  # it failed after it began
        found += checked(contract, shape, reply)
    return found


def test_concurrent_streams_stay_valid(http: httpx.Client, contract: Contract) -> None:
    """Four streams at once (the engine batches them): every chunk of each still valid."""
    shapes = [chat(f"chat-stream-concurrent-{i}", **STREAM_USAGE, max_tokens=12) for i in range(4)]
    found: list[list[str]] = [[] for _ in shapes]

    def run(index: int) -> None:
        found[index] = checked(contract, shapes[index], send(http, shapes[index]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(shapes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [violation for each in found for violation in each] == []
