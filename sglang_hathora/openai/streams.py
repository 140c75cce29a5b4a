"""Where a stream from SGLang is watched on its way to the client: ``observe_stream``.

It gives each chunk the request id (SGLang's carry engine rids) and the shape OpenAI's spec gives it
(engine/conformance.py), passes on the final usage chunk only
when the client asked for it (older clients crash on a chunk with empty choices), marks each token
for the time-to-first-token and inter-token metrics, turns SGLang's own error events and engine-side
aborts into OpenAI-shaped error events, and, when the client goes away, aborts the generation at once
rather than let it run on to max_tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sglang_hathora.engine import conformance
from sglang_hathora.engine.sglang_adapter import event_text, parse_event, parse_typed_event, typed_event_text
from sglang_hathora.errors import ApiError, client_fault
from sglang_hathora.observability import GenerationTimer, logger
from sglang_hathora.openai.in_flight import InFlightTable

DONE = "data: [DONE]\n\n"


async def observe_stream(
    chunks: AsyncIterator[Any],
    request_id: str,
    table: InFlightTable,
    timer: GenerationTimer,
    client_wants_usage: bool,
    conform: Callable[[dict[str, Any]], dict[str, Any]] = conformance.chat_chunk,
) -> AsyncIterator[str]:
    usage: dict[str, Any] = {}
    finish_reason: str | None = None
    completed = False
    try:
        async for chunk in chunks:
            text = chunk if isinstance(chunk, str) else chunk.decode()
            event = parse_event(text)
            if event is not None and isinstance(error := event.get("error"), dict):
                # SGLang's own error event is flat-ish ("object", "type": "BAD_REQUEST", code 400).
                status = error.get("code") if isinstance(error.get("code"), int) else 500
                message, status = client_fault(str(error.get("message")), status)
                text, finish_reason = ApiError(message, status).sse_event(), "error"
            elif event is not None:
                if event.get("usage") and not event.get("choices"):
                    usage = event["usage"]
                    if not client_wants_usage:
                        continue
                for choice in event.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                        timer.mark_token()
                    finish_reason = choice.get("finish_reason") or finish_reason
                if conformance.is_abort(finish_reason):
                    # An engine-side abort is not a normal end: the client must see an error.
                    code, message = table.abort_reason(request_id)
                    yield ApiError(message, 503, code=code).sse_event()
                    yield DONE
                    completed = True
                    return
                event["id"] = request_id
                text = event_text(conform(event))
            elif text.startswith(DONE.strip()):
                completed = True
            yield text
    except Exception as exc:  # noqa: BLE001 - a failure mid-stream must reach the client as an error
        logger.exception("[%s] Stream failed", request_id)
        yield ApiError(f"Generation failed: {type(exc).__name__}: {exc}", 500).sse_event()
        yield DONE
        finish_reason = "error"
        completed = True
    finally:
        if not completed:
            # The client went away: free the engine's slot now.
            table.abort(request_id, "client_disconnected")
            finish_reason = "abort"
        table.remove(request_id)
        timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), finish_reason)


# Responses events that end a stream (SGLang sends one of them last, with the usage).
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


async def observe_response_stream(
    chunks: AsyncIterator[Any], request_id: str, table: InFlightTable, timer: GenerationTimer
) -> AsyncIterator[str]:
    """The same watch over a /v1/responses stream: typed events (``event: ...``), no [DONE]."""
    usage: dict[str, Any] = {}
    status: str | None = None
    sequence = 0
    try:
        async for chunk in chunks:
            text = chunk if isinstance(chunk, str) else chunk.decode()
            event = parse_typed_event(text)
            if event is None:
                yield text
                continue
            kind = event.get("type")
            sequence = event.get("sequence_number", sequence) + 1
            if kind == "response.output_text.delta":
                timer.mark_token()
            elif kind in _TERMINAL:
                response = event.get("response") or {}
                usage, status = response.get("usage") or {}, response.get("status") or kind
            yield typed_event_text(conformance.response_event(event))
    except Exception as exc:  # noqa: BLE001 - a failure mid-stream must reach the client as an error
        logger.exception("[%s] Stream failed", request_id)
        error = ApiError(f"Generation failed: {type(exc).__name__}: {exc}", 500)
        yield error.response_event(sequence)
        status = "error"
    finally:
        if status is None:
            # The client went away: free the engine's slot now.
            table.abort(request_id, "client_disconnected")
            status = "abort"
        table.remove(request_id)
        timer.finish(usage.get("input_tokens"), usage.get("output_tokens"), status)
