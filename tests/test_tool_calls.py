"""openai/tool_calls.py: SGLang's constrained tool-call array read back into OpenAI's tool_calls,
plain and streamed, with SGLang-shaped chunks (no engine; the real SDK test is in test_serve_hathora.py)."""

from __future__ import annotations

import asyncio
import json

from sglang_hathora.openai import tool_calls

ARRAY = '[{"name": "get_weather", "parameters": {"city": "Paris"}}]'


def sse(choice: dict) -> str:
    return "data: " + json.dumps({"id": "0" * 32, "object": "chat.completion.chunk", "choices": [choice]}) + "\n\n"


def test_a_plain_response_gets_tool_calls_and_finish_reason_tool_calls() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": ARRAY}, "finish_reason": "stop"}]}
    tool_calls.rewrite_response(body)
    choice = body["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert call["type"] == "function" and call["id"].startswith("call_") and call["index"] == 0
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_text_that_is_not_the_array_is_left_as_it_came() -> None:
    body = {"choices": [{"index": 0, "message": {"content": '[{"name": "get_w'}, "finish_reason": "length"}]}
    tool_calls.rewrite_response(body)
    assert body["choices"][0]["message"]["content"] == '[{"name": "get_w'
    assert "tool_calls" not in body["choices"][0]["message"]


def test_a_stream_holds_the_content_and_ends_with_tool_call_deltas() -> None:
    pieces = [ARRAY[:10], ARRAY[10:30], ARRAY[30:]]
    chunks = [sse({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})]
    chunks += [
        sse({"index": 0, "delta": {"content": p, "reasoning_content": None}, "finish_reason": None}) for p in pieces
    ]
    chunks += [sse({"index": 0, "delta": {}, "finish_reason": "stop"}), "data: [DONE]\n\n"]

    async def source():
        for chunk in chunks:
            yield chunk

    async def collect() -> list[str]:
        return [text async for text in tool_calls.rewrite_stream(source())]

    out = asyncio.run(collect())
    events = [json.loads(t[len("data: ") :])["choices"][0] for t in out if t.startswith("data: {")]
    assert events[0]["delta"] == {"role": "assistant"}
    assert all("content" not in e["delta"] or e["delta"]["content"] is None for e in events)
    (call,) = events[1]["delta"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert events[-1]["finish_reason"] == "tool_calls" and out[-1] == "data: [DONE]\n\n"
    assert '"id":"' + "0" * 32 + '"' in out[1]  # compact JSON: the response id rewrite still finds it


def test_only_required_or_named_choices_force_a_call() -> None:
    from types import SimpleNamespace as Request

    assert not tool_calls.forced(Request(tools=[object()], tool_choice="auto"))
    assert tool_calls.forced(Request(tools=[object()], tool_choice="required"))
    assert tool_calls.forced(Request(tools=[object()], tool_choice=Request(function=Request(name="f"))))
    assert not tool_calls.forced(Request(tools=None, tool_choice="required"))
