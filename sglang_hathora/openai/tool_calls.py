"""Where a forced tool call becomes ``tool_calls``: ``tool_choice`` "required" or a named function.

SGLang constrains such a generation to a JSON array of ``{"name": ..., "parameters": {...}}`` objects
(its ``get_json_schema_constraint``) on any model, but turns that array into ``tool_calls`` only when
a tool-call parser is configured; without one the client got the JSON as ``message.content``, no
``tool_calls`` and ``finish_reason`` "stop" (SDK code reading ``message.tool_calls`` found nothing).
Here the array is read back into OpenAI's shape: ids ``call_<hex>``, ``index``, ``arguments`` as a JSON
string, ``content`` null and ``finish_reason`` "tool_calls"; in a stream, the content deltas are held
and replaced by tool-call deltas when the choice finishes. Output that is not such an array (a length
cut, say) is passed on as it came, unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from sglang_hathora.engine.sglang_adapter import parse_event


def forced(request: Any) -> bool:
    """Whether the request forces a tool call (required, or a named function) and declares tools."""
    choice = getattr(request, "tool_choice", None)
    return bool(getattr(request, "tools", None)) and (choice == "required" or not isinstance(choice, str | None))


def calls_from(text: str | None) -> list[dict] | None:
    """OpenAI tool calls from SGLang's constrained JSON array, or None if the text is not one."""
    try:
        data = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        return None
    data = [data] if isinstance(data, dict) else data
    if not isinstance(data, list) or not data or not all(isinstance(c, dict) and "name" in c for c in data):
        return None
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "index": index,
            "type": "function",
            "function": {"name": call["name"], "arguments": orjson.dumps(call.get("parameters", {})).decode()},
        }
        for index, call in enumerate(data)
    ]


def rewrite_response(body: dict) -> None:
    """A non-streamed chat completion: each choice whose content is the array gets its tool calls."""
    for choice in body.get("choices") or ():
        message = choice.get("message") or {}
        if message.get("tool_calls") or (calls := calls_from(message.get("content"))) is None:
            continue
        message["tool_calls"], message["content"] = calls, None
        if choice.get("finish_reason") == "stop":
            choice["finish_reason"] = "tool_calls"


async def rewrite_stream(chunks: AsyncIterator[Any]) -> AsyncIterator[str]:
    """A streamed chat completion: content deltas held per choice, tool-call deltas at its finish."""
    held: dict[int, list[str]] = {}
    async for chunk in chunks:
        text = chunk if isinstance(chunk, str) else chunk.decode()
        event = parse_event(text)
        if event is None or not event.get("choices"):
            yield text
            continue
        out = []
        for choice in event["choices"]:
            index, delta = choice.get("index", 0), choice.get("delta") or {}
            if content := delta.pop("content", None):
                held.setdefault(index, []).append(content)
            finish = choice.get("finish_reason")
            if finish is None:
                if any(value is not None for value in delta.values()):
                    out.append(choice)  # the role chunk, and anything else but the held content
                continue
            text_so_far = "".join(held.pop(index, []))
            calls = calls_from(text_so_far)
            if calls is None:  # not the array after all: pass on what was held, as it came
                out.append({**choice, "delta": {**delta, "content": text_so_far or None}})
                continue
            out.append({"index": index, "delta": {"tool_calls": calls}, "finish_reason": None})
            out.append({**choice, "delta": {}, "finish_reason": "tool_calls" if finish == "stop" else finish})
        for choice in out:
            yield f"data: {orjson.dumps({**event, 'choices': [choice]}).decode()}\n\n"
