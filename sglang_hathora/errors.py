"""OpenAI's nested error shape, ``{"error": {"message", "type", "param", "code"}}``, everywhere.

SGLang's serving layer answers errors FLAT (``{"object": "error", "message", ...}``), and FastAPI
answers 422 with its own shape; both are converted here so every client sees one format.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

_TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_type_for(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(message: str, status: int, param: str | None = None, code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type_for(status), "param": param, "code": code}}


def error_response(
    message: str,
    status: int,
    param: str | None = None,
    code: str | int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, status, param, code), status_code=status, headers=headers)


async def send_error(
    send: Send, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> None:
    """An OpenAI-shaped error straight from pure-ASGI middleware (no app involved)."""
    data = json.dumps(error_body(message, status, code=code)).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data})


# SGLang answers 500 "Grammar accept_token failed" when no token of the vocabulary satisfies the
# request's grammar (found by the fuzz run: the regex "\x04", a byte SmolLM2 has no token for): the
# request's fault, so a 400 naming the grammar field, with words a client can act on.
_UNSATISFIABLE_GRAMMAR = "Grammar accept_token failed"
GRAMMAR_FIELDS = ("regex", "ebnf", "json_schema", "response_format", "structural_tag", "tools")


def client_fault(message: str, status: int) -> tuple[str, int]:
    """SGLang's (message, status) with the failures that are the request's fault made a 400."""
    if status >= 500 and message.startswith(_UNSATISFIABLE_GRAMMAR):
        return (
            "No token of this model's vocabulary satisfies the request's grammar; relax the constraint. "
            f"Engine said: {message.splitlines()[0]}",
            400,
        )
    return message, status


def from_sglang_error(
    body: bytes, status: int, fields: tuple[str, ...] = (), default_param: str | None = None
) -> JSONResponse:
    """Convert SGLang's flat ErrorResponse JSON into the nested shape, keeping its message.

    SGLang's errors rarely name a ``param``; the request field the message names (``fields``, in
    table order) is used, else ``default_param`` (the prompt or the messages) for a 400."""
    try:
        flat = json.loads(body)
    except ValueError:
        flat = {}
    if not isinstance(flat, dict):
        flat = {}
    engine_status = status
    message, status = client_fault(str(flat.get("message") or f"request failed with status {status}"), status)
    code = flat.get("code")
    # SGLang puts the HTTP status in `code`; OpenAI's code is a symbol or null.
    code = None if code in (None, engine_status, str(engine_status)) else code
    if status == 400 and "context length" in message:
        code = "context_length_exceeded"  # SGLang's message carries the token counts
    param = flat.get("param") or _named_field(message, fields) or (default_param if status == 400 else None)
    return error_response(message, status, param=param, code=code)


# SGLang's words for some request fields.
_SGLANG_NAMES = {
    "min_new_tokens": "min_tokens",
    "max_new_tokens": "max_tokens",
    "tool": "tools",
    "schema_": "response_format",
}


def _named_field(message: str, fields: tuple[str, ...]) -> str | None:
    text = message.lower()
    in_order = re.findall(r"[a-z_]+", text)
    words = set(in_order)
    named = next(
        (
            field
            for field in fields
            if field in words or ("_" in field and re.search(rf"\b{field.replace('_', ' ')}\b", text))
        ),
        None,
    )
    if named is None:
        named = next((_SGLANG_NAMES[word] for word in in_order if word in _SGLANG_NAMES), None)
    return named


def streaming_error_event(message: str, status: int = 500, code: str | None = None) -> str:
    """A mid-stream failure as an SSE event the OpenAI SDK raises as APIError (never as content)."""
    return f"data: {json.dumps(error_body(message, status, code=code))}\n\n"


class NotServingError(Exception):
    """The engine is loading, failed, or the server is stopping: 503 with Retry-After."""

    def __init__(self, engine_status: str) -> None:
        super().__init__(engine_status)
        self.engine_status = engine_status


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        not_found = "Not found: no such route (see /docs for the API)."
        message = not_found if exc.status_code == 404 else str(exc.detail)
        return error_response(message, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(NotServingError)
    async def _not_serving(_: Request, exc: NotServingError) -> JSONResponse:
        return error_response(
            f"The server is not ready ({exc.engine_status}); retry shortly.",
            503,
            code="service_unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return error_response(
            f"Invalid request: {first.get('msg', 'validation failed')}",
            400,
            param=".".join(str(part) for part in first.get("loc", ())[1:]) or None,
        )
