"""Pure-ASGI request middleware: the request id, the request log lines, X-Process-Time,
X-Hathora-Region, X-Hathora-Process-Id (which process answered: the one holding a conversation's
prefix cache) and X-Request-Id on every response, and the request counter.

Pure ASGI on purpose: Starlette's BaseHTTPMiddleware buffers through a task group that breaks
``request.is_disconnected()`` (abort on disconnect) and streaming. The duration in the log line is
measured until the LAST body chunk is sent, so a stream's line carries its full length; the
X-Process-Time header can only carry the time to response headers (they go out first).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import logger, request_id_var

QUIET_PATHS = frozenset({"/health", "/livez", "/metrics"})
# An incoming X-Request-Id is honoured when it is a sane token; otherwise a fresh one is made.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_ID_PREFIX = {"/v1/chat/completions": "chatcmpl-", "/v1/completions": "cmpl-"}


def request_id_for(scope: Scope) -> str:
    incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
    if incoming is not None:
        text = incoming.decode("latin-1").strip()
        if _CLIENT_ID.match(text):
            return text
    return f"{_ID_PREFIX.get(scope['path'], 'req-')}{uuid.uuid4().hex}"


class TimingMiddleware:
    def __init__(
        self, app: ASGIApp, region: str | None, metrics: Metrics | None = None, process_id: str | None = None
    ) -> None:
        self.app = app
        self.region = (region or "unknown").encode()
        self.process_id = (process_id or "unknown").encode()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        client = scope.get("client")
        where = f"[{client[0] if client else '-'}] {scope['method']} {scope['path']}"
        # Load-balancer health probes and metric scrapes arrive every few seconds: DEBUG only.
        level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
        logger.log(level, "%s - Request started [%s]", where, request_id)
        status = 500  # what the client gets if the app fails before sending headers
        logged = False

        def log_done() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.log(level, "%s - Status: %d, Duration: %.1fms [%s]", where, status, elapsed_ms, request_id)
            if self.metrics is not None:
                # Bounded label values: the matched route, else the path only if it is a known one.
                path = getattr(scope.get("route"), "path", None)
                path = path or (scope["path"] if scope["path"] in _ID_PREFIX else "unmatched")
                self.metrics.requests.labels(path, str(status)).inc()

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"x-process-time", f"{elapsed_ms:.1f}".encode()))
                headers.append((b"x-hathora-region", self.region))
                headers.append((b"x-hathora-process-id", self.process_id))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                log_done()  # the last byte is out; background tasks may still run after this

        try:
            await self.app(scope, receive, timed_send)
        finally:
            log_done()
            request_id_var.reset(token)
