"""engine/conformance.py without an engine: bodies SGLang 0.5.23 sent (recorded from this server before
the mapping, tests/contract/sglang-0.5.23-bodies.json), passed again through the installed SGLang's own
response models (so a field an SGLang upgrade adds or retypes shows up here) and then through the
mapping, are valid against OpenAI's document; as recorded, they are not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sglang_hathora.engine import conformance, cpu_compat
from tests.openai_contract import Contract, sse_events

RECORDED = Path(__file__).resolve().parent / "contract" / "sglang-0.5.23-bodies.json"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


@pytest.fixture(scope="module")
def sglang_models() -> dict[str, Callable[[dict], dict]]:
    """Each recorded body re-made by the installed SGLang's models, dumped as its serving layer does."""
    cpu_compat.install_torchvision_fix()  # in this process only: SGLang's protocol imports torchvision
    from sglang.srt.entrypoints.openai import protocol

    def plain(model: type) -> Callable[[dict], dict]:
        return lambda body: model.model_validate(body).model_dump(mode="json", by_alias=True)

    def chunk(model: type) -> Callable[[dict], dict]:
        return lambda body: json.loads(model.model_validate(body).model_dump_json())

    return {
        "chat": plain(protocol.ChatCompletionResponse),
        "completion": plain(protocol.CompletionResponse),
        "chat_chunk": chunk(protocol.ChatCompletionStreamResponse),
        "completion_chunk": chunk(protocol.CompletionStreamResponse),
        "response": lambda body: protocol.ResponsesResponse.model_validate(body).model_dump(mode="json"),
    }


# endpoint -> (kind of a plain body, kind of a stream event, the mapping of each, the plain schema)
ENDPOINTS = {
    "/v1/chat/completions": ("chat", "chat_chunk", "CreateChatCompletionResponse"),
    "/v1/completions": ("completion", "completion_chunk", "CreateCompletionResponse"),
    "/v1/responses": ("response", "response_event", "Response"),
}
MAPPINGS = {
    "chat": conformance.chat_body,
    "completion": conformance.completion_body,
    "chat_chunk": conformance.chat_chunk,
    "completion_chunk": conformance.completion_chunk,
    "response": conformance.response_body,
    "response_event": conformance.response_event,
}


def recorded() -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(shape, kind, body or event, schema) for every recorded generation body and stream event."""
    contract = Contract()
    for name, reply in json.loads(RECORDED.read_text()).items():
        if reply["path"] not in ENDPOINTS:
            continue
        plain_kind, event_kind, schema = ENDPOINTS[reply["path"]]
        if reply["content_type"] != "text/event-stream":
            yield name, plain_kind, json.loads(reply["text"]), schema
            continue
        for _, event in sse_events(reply["text"]):
            if isinstance(event, dict):
                kind = event_kind
                if event_kind == "response_event":
                    schema = contract.event_schema(event)
                elif event_kind == "chat_chunk":
                    schema = "CreateChatCompletionStreamResponse"
                yield name, kind, event, schema


def test_the_recording_covers_every_endpoint_plain_and_streamed() -> None:
    kinds = {kind for _, kind, _, _ in recorded()}
    assert kinds == set(MAPPINGS), kinds
    assert len({name for name, *_ in recorded()}) >= 40


def test_sglangs_bodies_as_its_models_make_them_are_valid_once_mapped(contract: Contract, sglang_models) -> None:
    before, after = [], []
    for name, kind, body, schema in recorded():
        remade = sglang_models[kind](body) if kind in sglang_models else body
        if kind == "response_event" and isinstance(remade.get("response"), dict):
            remade["response"] = sglang_models["response"](remade["response"])
        before += contract.violations(schema, json.loads(json.dumps(remade)), name)
        after += contract.violations(schema, MAPPINGS[kind](remade), name)
    assert after == []
    assert len(before) > 100, before  # what the mapping is for: 130 violations over these bodies when recorded


def test_sglangs_weight_versions_are_dropped_or_kept_under_sglext() -> None:
    metadata = {"weight_version": "default", "weight_versions": [{"version": "default", "start": 0, "end": 8}]}
    body = {"choices": [], "metadata": metadata}
    assert "metadata" not in conformance.chat_body(json.loads(json.dumps(body)))
    kept = conformance.completion_body(json.loads(json.dumps(body)), keep_extensions=True)
    assert "metadata" not in kept and kept[conformance.EXTENSIONS_KEY] == metadata


def test_usage_details_refusals_and_logprobs_get_the_specs_types() -> None:
    body = {
        "choices": [{"message": {"role": "assistant", "content": "hi"}, "logprobs": {"content": []}}],
        "usage": {"completion_tokens": 1, "reasoning_tokens": 3, "completion_tokens_details": None},
    }
    out = conformance.chat_body(body)
    assert out["choices"][0]["message"]["refusal"] is None and out["choices"][0]["logprobs"]["refusal"] is None
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    chunk = conformance.completion_chunk({"choices": [{"text": "a"}], "usage": None})
    assert "usage" not in chunk
    event = conformance.response_event({"type": "response.content_part.added", "part": {"type": "output_text",
                                                                                       "logprobs": None}})  # fmt: skip
    assert event["part"]["logprobs"] == []


def test_an_abort_is_not_a_finish_reason() -> None:
    assert conformance.is_abort("abort") and not conformance.is_abort("stop") and not conformance.is_abort(None)
