"""What a generation request may ask for, checked before any work is done.

SGLang's own server, tried with hostile requests on this machine, answered 500 to a JSON array body,
dropped the connection on a text/plain body, accepted temperature 1e9, and queued a million sequences
for ``n: 1000000`` until the kernel killed it (14.8 GB). Each rule below closes one such gap; the
rest (roles, types, empty messages) is SGLang's pydantic protocol, whose errors become 400s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class RequestProblem:
    message: str
    status: int = 400
    param: str | None = None
    code: str | None = None


def _range_problem(request: Any, name: str, low: float, high: float, low_inclusive: bool) -> RequestProblem | None:
    value = getattr(request, name, None)
    if value is None:
        return None
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = f">= {low}" if low_inclusive else f"> {low}"
        return RequestProblem(f"'{name}' must be {bound} and <= {high}; got {value}.", param=name)
    return None


def check_sampling(request: Any, *, context_length: int, max_n: int) -> RequestProblem | None:
    """The first out-of-range option of a parsed chat or completion request, or None."""
    n = getattr(request, "n", None)
    n = 1 if n is None else n
    if not 1 <= n <= max_n:
        return RequestProblem(f"'n' must be between 1 and {max_n} on this server; got {n}.", param="n")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(request, name, None)
        if value is None:
            continue
        if value < 1:
            return RequestProblem(f"'{name}' must be at least 1; got {value}.", param=name)
        if value > context_length:
            return RequestProblem(
                f"'{name}' is {value}, more than this model's context length of {context_length} tokens.",
                param=name,
                code="context_length_exceeded",
            )
    checks = (
        ("temperature", 0.0, 2.0, True),
        ("top_p", 0.0, 1.0, False),
        ("frequency_penalty", -2.0, 2.0, True),
        ("presence_penalty", -2.0, 2.0, True),
        ("top_logprobs", 0, 20, True),
    )
    for name, low, high, inclusive in checks:
        if problem := _range_problem(request, name, low, high, inclusive):
            return problem
    return None


async def read_json_object(raw_request: Request, max_bytes: int) -> dict | RequestProblem:
    """The body as a JSON object: content type, size, UTF-8 and JSON checked, each with a clear message."""
    content_type = raw_request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        return RequestProblem(
            f"Content-Type must be application/json; got {content_type!r}.", status=415, code="unsupported_media_type"
        )
    declared = raw_request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return _too_large(max_bytes)
    body = bytearray()
    async for chunk in raw_request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:  # a chunked body without Content-Length
            return _too_large(max_bytes)
    if not body:
        return RequestProblem("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if "utf-8" in str(exc).lower() else str(exc)
        return RequestProblem(f"The request body is not valid JSON: {detail}.")
    if not isinstance(payload, dict):
        return RequestProblem(f"The request body must be a JSON object, not {type(payload).__name__}.")
    return payload


def _too_large(max_bytes: int) -> RequestProblem:
    return RequestProblem(
        f"The request body exceeds this server's limit of {max_bytes} bytes.", status=413, code="request_too_large"
    )


def validate_model(payload: dict, model: type[BaseModel]) -> BaseModel | RequestProblem:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Union members and validators appear in the location under their type or function names
        # ("function-after[...]", "ChatCompletionMessageUserParam"): keep the field path only.
        parts = [str(p) for p in first["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
        param = ".".join(parts) or None
        message = first["msg"].removeprefix("Value error, ").rstrip(".")
        return RequestProblem(f"Invalid value for '{param}': {message}.", param=param)
