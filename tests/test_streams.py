"""observe_stream: what a client receives of SGLang's stream, with no engine (SGLang-shaped chunks)."""

from __future__ import annotations

import asyncio
import json

from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import GenerationTimer
from sglang_hathora.openai.in_flight import InFlightTable
from sglang_hathora.openai.streams import observe_response_stream, observe_stream
from tests.fake_engine import FakeAdapter

ENGINE_RID = "0123456789abcdef0123456789abcdef"


def sglang_json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))  # as pydantic's model_dump_json writes it


def chunk(content: str | None = None, finish: str | None = None, rid: str = ENGINE_RID) -> str:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return "data: " + sglang_json({"id": rid, "object": "chat.completion.chunk", "choices": [choice]}) + "\n\n"


USAGE = "data: " + sglang_json({"id": ENGINE_RID, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
DONE = "data: [DONE]\n\n"


def run(
    chunks: list, wants_usage: bool = False, take: int | None = None, responses: bool = False
) -> tuple[list[str], InFlightTable]:
    adapter = FakeAdapter()
    table = InFlightTable(adapter, Metrics())
    table.add("req-1")
    adapter.collected[-1].append(ENGINE_RID)
    adapter.pending_rids.append(ENGINE_RID)

    async def source():
        for item in chunks:
            if isinstance(item, Exception):
                raise item
            yield item

    async def consume() -> list[str]:
        timer = GenerationTimer("req-1", table.metrics)
        if responses:
            stream = observe_response_stream(source(), "req-1", table, timer)
        else:
            stream = observe_stream(source(), "req-1", table, timer, wants_usage)
        out = []
        async for text in stream:
            out.append(text)
            if take is not None and len(out) == take:
                await stream.aclose()  # the client went away
                break
        return out

    return asyncio.run(consume()), table


def events(out: list[str]) -> list[dict]:
    return [json.loads(text[len("data: ") :]) for text in out if text.startswith("data: {")]


def test_chunks_carry_the_request_id_and_usage_only_when_asked() -> None:
    stream = [chunk("Par"), chunk("is", "stop"), USAGE + "\n\n", DONE]
    out, table = run(stream)
    assert [e["id"] for e in events(out)] == ["req-1", "req-1"] and out[-1] == DONE
    assert "req-1" not in table  # the stream left the table when it ended
    out, _ = run(stream, wants_usage=True)
    usage = events(out)[-1]["usage"]
    assert usage["prompt_tokens"] == 5 and usage["completion_tokens"] == 2


def test_an_engine_abort_is_an_error_event_not_a_normal_end() -> None:
    out, _ = run([chunk("Par"), chunk(None, "abort"), DONE])
    error = events(out)[-1]["error"]
    assert error["code"] == "engine" and error["type"] == "server_error" and out[-1] == DONE


def test_sglangs_error_event_gets_openais_shape_and_a_grammar_dead_end_is_the_clients_fault() -> None:
    flat = {"error": {"object": "error", "message": "Grammar accept_token failed at step 3", "code": 500}}
    out, _ = run([chunk("x"), "data: " + sglang_json(flat) + "\n\n", DONE])
    error = events(out)[-1]["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith("No token of this model")


def test_a_failure_mid_stream_ends_with_an_error_event_and_done() -> None:
    out, _ = run([chunk("Par"), RuntimeError("scheduler gone")])
    assert events(out)[-1]["error"]["message"] == "Generation failed: RuntimeError: scheduler gone"
    assert out[-1] == DONE


def test_a_client_that_goes_away_aborts_its_engine_rids_at_once() -> None:
    out, table = run([chunk("a"), chunk("b"), chunk("c"), DONE], take=1)
    assert len(out) == 1
    assert table.adapter.aborted == [ENGINE_RID] and "req-1" not in table


def typed(kind: str, sequence: int, **fields) -> str:
    """One of SGLang's /v1/responses events, as its stream writes them."""
    return f"event: {kind}\ndata: " + sglang_json({"type": kind, "sequence_number": sequence, **fields}) + "\n\n"


RESPONSE_EVENTS = [
    typed("response.created", 0, response={"status": "in_progress"}),
    typed("response.output_text.delta", 1, delta="Par"),
    typed("response.output_text.delta", 2, delta="is"),
    typed("response.completed", 3, response={"status": "completed", "usage": {"input_tokens": 7, "output_tokens": 2}}),
]


def test_a_responses_stream_passes_through_and_is_timed(caplog) -> None:
    with caplog.at_level("INFO", logger="serve_hathora"):
        out, table = run(RESPONSE_EVENTS, responses=True)
    assert out == RESPONSE_EVENTS and "req-1" not in table and table.adapter.aborted == []
    line = next(r.getMessage() for r in caplog.records if "Generation completed" in r.getMessage())
    assert "prompt_tokens=7" in line and "completion_tokens=2" in line and "finish_reason=completed" in line
    assert "ttft=" in line


def test_a_responses_stream_that_fails_ends_with_the_typed_error_event() -> None:
    out, _ = run([*RESPONSE_EVENTS[:2], RuntimeError("scheduler gone")], responses=True)
    kind, data = out[-1].split("\n", 1)
    error = json.loads(data[len("data: ") :])
    assert kind == "event: error" and error["type"] == "error" and error["sequence_number"] == 2
    assert error["message"] == "Generation failed: RuntimeError: scheduler gone" and error["code"] == "server_error"


def test_a_responses_client_that_goes_away_aborts_its_engine_rids_at_once() -> None:
    out, table = run(RESPONSE_EVENTS, take=2, responses=True)
    assert len(out) == 2 and table.adapter.aborted == [ENGINE_RID] and "req-1" not in table
