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

from sglang_hathora.observability import logger

_TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_type_for(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(message: str, status: int, param: str | None = None, code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type_for(status), "param": param, "code": code}}


class ApiError(Exception):
    """Every failure a client sees, in OpenAI's shape: raised anywhere (checks, routes, serving),
    answered by the one handler ``install_error_handlers`` installs; pure-ASGI middleware sends the
    same response object (``await error.response()(scope, receive, send)``), and a stream that
    fails midway ends with ``error.sse_event()``."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        param: str | None = None,
        code: str | int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.headers = message, status, param, code, headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.status, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def sse_event(self) -> str:
        """A mid-stream failure as an SSE event the OpenAI SDK raises as APIError (never as content)."""
        return f"data: {json.dumps(self.body())}\n\n"

    def response_event(self, sequence_number: int) -> str:
        """A mid-stream failure of a /v1/responses stream: the Responses API's typed error event."""
        error = self.body()["error"]
        event = {"type": "error", "code": error["code"] or error["type"], "message": error["message"],
                 "param": error["param"], "sequence_number": sequence_number}  # fmt: skip
        return f"event: error\ndata: {json.dumps(event)}\n\n"

    @classmethod
    def not_serving(cls, engine_status: str) -> ApiError:
        """The engine is loading, failed, or the server is stopping."""
        return cls(
            f"The server is not ready ({engine_status}); retry shortly.",
            503,
            code="service_unavailable",
            headers={"Retry-After": "5"},
        )


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
) -> ApiError:
    """Convert SGLang's flat ErrorResponse JSON into the nested shape, keeping its message.

    SGLang's errors rarely name a ``param``; the request field the message names (``fields``, in
    table order) is used, else ``default_param`` (the prompt or the messages) for a 400."""
    try:
        flat = json.loads(body)
    except ValueError:
        flat = {}
    if not isinstance(flat, dict):
        flat = {}
    if isinstance(flat.get("error"), dict):
        flat = flat["error"]  # the Responses API's errors are nested already
    engine_status = status
    message, status = client_fault(str(flat.get("message") or f"request failed with status {status}"), status)
    code = flat.get("code")
    # SGLang puts the HTTP status in `code`; OpenAI's code is a symbol or null.
    code = None if code in (None, engine_status, str(engine_status)) else code
    if status == 400 and "context length" in message:
        code = "context_length_exceeded"  # SGLang's message carries the token counts
    param = flat.get("param") or _named_field(message, fields) or (default_param if status == 400 else None)
    return ApiError(message, status, param=param, code=code)


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


def install_error_handlers(app: FastAPI) -> None:
    """The one handler of ApiError, and FastAPI's and Starlette's own errors turned into it."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        # A client that left before its body arrived (499) gets a line; every other error is logged
        # where it is found, and a 503 while loading must not log each load-balancer probe.
        if exc.status == 499:
            logger.info("[%s] %s", request.scope.get("state", {}).get("request_id", "-"), exc.message)
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        not_found = "Not found: no such route (see /docs for the API)."
        message = not_found if exc.status_code == 404 else str(exc.detail)
        return ApiError(message, exc.status_code, headers=getattr(exc, "headers", None)).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        return ApiError(f"Invalid request: {first.get('msg', 'validation failed')}", 400, param=param).response()
