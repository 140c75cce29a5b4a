"""Where a request body is read and parsed: content type, size, arrival deadline, UTF-8, JSON object,
then SGLang's pydantic protocol, each failure with a clear OpenAI-shaped message.

SGLang's own server, tried with hostile requests on this machine, answered 500 to a JSON array body
and dropped the connection on a text/plain body. A body that does not arrive within
REQUEST_BODY_TIMEOUT gets 408 (a client sending headers and "{" held its slot forever before);
a client that drops its upload is recorded as 499, not as a server error.
"""

from __future__ import annotations

import asyncio

import orjson
from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from sglang_hathora.errors import ApiError

# nginx's "client closed request": the client went away before its body arrived.
CLIENT_CLOSED = 499
# The rest of an unread body could never be skipped: the connection ends after the answer.
_CLOSE = {"Connection": "close"}


async def read_json_object(raw_request: Request, max_bytes: int, timeout: float) -> dict:
    """The body as a JSON object: content type, size, deadline, UTF-8 and JSON checked (ApiError if not)."""
    content_type = raw_request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            f"Content-Type must be application/json; got {content_type!r}.", 415, code="unsupported_media_type"
        )
    declared = raw_request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in raw_request.stream():
                body.extend(chunk)
                if len(body) > max_bytes:  # a chunked body without Content-Length
                    raise _too_large(max_bytes)
    except TimeoutError:
        raise ApiError(
            f"The request body did not arrive within {timeout:g} s.", 408, code="request_timeout", headers=_CLOSE
        ) from None
    except ClientDisconnect:
        raise ApiError("The client closed the connection before sending its body.", CLIENT_CLOSED) from None
    if not body:
        raise ApiError("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if "utf-8" in str(exc).lower() else str(exc)
        raise ApiError(f"The request body is not valid JSON: {detail}.") from None
    if not isinstance(payload, dict):
        raise ApiError(f"The request body must be a JSON object, not {type(payload).__name__}.")
    return payload


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        f"The request body exceeds this server's limit of {max_bytes} bytes.",
        413,
        code="request_too_large",
        headers=_CLOSE,
    )


def validate_model(payload: dict, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Union members and validators appear in the location under their type or function names
        # ("function-after[...]", "ChatCompletionMessageUserParam"): keep the field path only.
        parts = [str(p) for p in first["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
        param = ".".join(parts) or None
        message = first["msg"].removeprefix("Value error, ").rstrip(".")
        raise ApiError(f"Invalid value for '{param}': {message}.", param=param) from None
    except (TypeError, AttributeError, KeyError, IndexError):
        # SGLang's "before" validators read fields assuming their types (``response_format: true``
        # raised AttributeError there, a 500): find the field whose value does not fit its type.
        param = _field_at_fault(payload, model)
        raise ApiError(f"Invalid value for '{param}'." if param else "Invalid request body.", param=param) from None


def _field_at_fault(payload: dict, model: type[BaseModel]) -> str | None:
    for name, value in payload.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        try:
            TypeAdapter(field.annotation).validate_python(value)
        except (ValidationError, TypeError, AttributeError, KeyError, IndexError):
            return name
    return None
