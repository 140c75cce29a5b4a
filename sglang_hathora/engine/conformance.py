"""Where SGLang's response bodies become what OpenAI's published OpenAPI document says they are.

Every body and every SSE chunk the server sends passes one function here, chosen by endpoint. The
contract is OpenAI's own document (tests/contract/openapi.json, the one its SDKs are generated from),
not SGLang's protocol models: clients that validate (pydantic-ai with the openai SDK's types, Vercel's
AI SDK with zod, async-openai's strict enums) reject a field of the wrong type, whoever emits it.
What SGLang 0.5.23 sends that the document does not allow, measured over 61 bodies (130 violations,
tests/test_openai_conformance.py), and what becomes of it:

- ``metadata`` on chat and completions responses holds SGLang's weight versions (a list of objects);
  OpenAI's ``metadata`` is a map of strings. Dropped; with SGLANG_EXTENSIONS kept under ``sglext``.
- ``usage.completion_tokens_details: null`` (an object in the spec): ``{"reasoning_tokens": N}``
  from SGLang's own ``usage.reasoning_tokens``.
- ``message.refusal`` and ``logprobs.refusal`` are required (nullable) and absent: ``null``.
- stream deltas: ``role``/``tool_calls`` are never null in the spec; SGLang's DeltaMessage dumps an
  unset one as null (Vercel's AI SDK broke on ``delta.role: null`` against SGLang once): left out.
- completions stream chunks carry ``usage: null``, where the spec's one completions schema allows
  only an object: the key is left out until the usage chunk.
- Responses: ``user: null``, ``usage: null`` (while in progress), ``text: null``,
  ``tools[].defer_loading: null`` (types that are not nullable: left out, or ``text`` given its
  default plain-text format), ``output_text`` parts with ``logprobs: null`` (an array: ``[]``).
- ``finish_reason: "abort"`` is not a finish reason OpenAI has: serving turns an abort into an error
  (``is_abort``), a 503 or a stream's error event, never a normal end.

An SGLang upgrade that changes any of this shows here first: tests/test_conformance.py replays
recorded SGLang bodies through these functions against the document, without an engine.
"""

from __future__ import annotations

from typing import Any

EXTENSIONS_KEY = "sglext"
ABORT = "abort"
# Delta fields the spec types without null; SGLang's DeltaMessage dumps them as null when unset.
_NOT_NULL_IN_DELTA = ("role", "tool_calls", "function_call")


def is_abort(finish_reason: Any) -> bool:
    return finish_reason == ABORT


def chat_body(body: dict[str, Any], keep_extensions: bool = False) -> dict[str, Any]:
    """A non-streamed chat completion."""
    _extensions(body, keep_extensions)
    for choice in body.get("choices") or ():
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("refusal", None)
        _logprobs(choice)
    _usage(body)
    return body


def completion_body(body: dict[str, Any], keep_extensions: bool = False) -> dict[str, Any]:
    """A non-streamed text completion."""
    _extensions(body, keep_extensions)
    _usage(body)
    return body


def chat_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """One chat.completion.chunk (``usage: null`` is the spec's own value for chunks before the last)."""
    for choice in chunk.get("choices") or ():
        _logprobs(choice)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for name in _NOT_NULL_IN_DELTA:
                if delta.get(name, ...) is None:
                    del delta[name]
    _usage(chunk)
    return chunk


def completion_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """One streamed text completion: the spec gives it the plain body's schema, whose usage is never null."""
    if chunk.get("usage", ...) is None:
        del chunk["usage"]
    _usage(chunk)
    return chunk


def response_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses ``response`` object: created, retrieved, cancelled, or inside a stream event."""
    for name in ("user", "usage"):
        if body.get(name, ...) is None:
            del body[name]
    if body.get("text", ...) is None:
        body["text"] = {"format": {"type": "text"}}
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("defer_loading", ...) is None:
            tool.pop("defer_loading")
    for item in body.get("output") or ():
        _output_item(item)
    return body


def response_event(event: dict[str, Any]) -> dict[str, Any]:
    """One typed Responses stream event."""
    if isinstance(event.get("response"), dict):
        response_body(event["response"])
    if isinstance(event.get("item"), dict):
        _output_item(event["item"])
    if isinstance(event.get("part"), dict):
        _content_part(event["part"])
    return event


def _extensions(body: dict[str, Any], keep: bool) -> None:
    """SGLang's ``metadata`` (weight versions) is not OpenAI's: under ``sglext`` if asked for, else gone."""
    metadata = body.pop("metadata", None)
    if keep and metadata:
        body.setdefault(EXTENSIONS_KEY, {}).update(metadata)


def _logprobs(choice: dict[str, Any]) -> None:
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict) and "content" in logprobs:
        logprobs.setdefault("refusal", None)


def _usage(body: dict[str, Any]) -> None:
    usage = body.get("usage")
    if isinstance(usage, dict) and usage.get("completion_tokens_details") is None:
        usage["completion_tokens_details"] = {"reasoning_tokens": usage.get("reasoning_tokens") or 0}


def _output_item(item: Any) -> None:
    if isinstance(item, dict):
        for part in item.get("content") or ():
            _content_part(part)


def _content_part(part: Any) -> None:
    if isinstance(part, dict) and part.get("type") == "output_text" and part.get("logprobs") is None:
        part["logprobs"] = []
