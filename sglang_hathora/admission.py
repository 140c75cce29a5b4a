"""Back-pressure (pure ASGI): at most MAX_CONCURRENT_REQUESTS generation requests admitted at once,
running or queued in the engine; past that, 429 with Retry-After before any work is done.

A request stays admitted until the last chunk of its response is sent, streams included, so the
count is what the engine really holds. Pure ASGI so that streaming and disconnect detection are untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.errors import send_error
from sglang_hathora.metrics import Metrics

GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
RETRY_AFTER_SECONDS = "1"


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GENERATION_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.metrics.rejected.labels("overloaded").inc()
            message = f"The server is at its limit of {self.limit} concurrent requests; retry shortly."
            await send_error(send, 429, message, "rate_limit_exceeded", {"retry-after": RETRY_AFTER_SECONDS})
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1
                self.metrics.in_flight.dec()

        async def releasing_send(message: Message) -> None:
            # Free the slot as the last body chunk goes out, not when the app returns: a client that
            # reads the end of one stream and at once sends the next must find the slot free.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await send(message)

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            release()
