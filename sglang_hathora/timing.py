"""Pure-ASGI middleware: request log lines, X-Process-Time and X-Hathora-Region on every response.

Pure ASGI on purpose: Starlette's BaseHTTPMiddleware buffers through a task group that breaks
``request.is_disconnected()`` (SGLang's abort-on-disconnect) and streaming. The duration in the
log line is measured until the LAST body chunk is sent, so a stream's line carries its full length;
the X-Process-Time header can only carry the time to response headers (they go out first).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.observability import logger

QUIET_PATHS = frozenset({"/health"})


class TimingMiddleware:
    def __init__(self, app: ASGIApp, region: str | None) -> None:
        self.app = app
        self.region = (region or "unknown").encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        client = scope.get("client")
        where = f"[{client[0] if client else '-'}] {scope['method']} {scope['path']}"
        # Load-balancer health probes arrive every few seconds from many probers: DEBUG only.
        level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
        logger.log(level, "%s - Request started", where)
        status = 500  # what the client gets if the app fails before sending headers
        logged = False

        def log_done() -> None:
            nonlocal logged
            if not logged:
                logged = True
                elapsed_ms = (time.perf_counter() - started) * 1000
                logger.log(level, "%s - Status: %d, Duration: %.1fms", where, status, elapsed_ms)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await send(message)
                log_done()  # the last byte is out; background tasks may still run after this
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"x-process-time", f"{elapsed_ms:.1f}".encode()))
                headers.append((b"x-hathora-region", self.region))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            log_done()
