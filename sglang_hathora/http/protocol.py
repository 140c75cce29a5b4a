"""Where a connection that never finishes its request headers is closed: ``HeaderTimeoutH11Protocol``.

uvicorn 0.54 times out idle keep-alive connections but not a connection that sends half a request
line and then nothing (slowloris): each one holds a socket and counts against ``limit_concurrency``
forever. This protocol arms a timer when a connection opens and when the first bytes of a next
request arrive, and closes the connection if HEADER_TIMEOUT passes before the headers are complete.
An idle keep-alive connection (no bytes) is left to KEEP_ALIVE_TIMEOUT (620 s, above GCP's 600 s).
Body deadlines are the app's (REQUEST_BODY_TIMEOUT -> 408, request_limits.py).

h11 is used on every host, also where httptools is installed, so the guard always applies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol

from sglang_hathora.errors import ApiError


async def _over_connection_limit(scope: Scope, receive: Receive, send: Send) -> None:
    error = ApiError(
        "The server is at its connection limit; retry shortly.", 503, code="overloaded", headers={"retry-after": "1"}
    )
    await error.response()(scope, receive, send)


# uvicorn answers requests past MAX_CONNECTIONS with this module-level app (plain text by default);
# clients of an OpenAI API expect its error shape there too.
h11_impl.service_unavailable = _over_connection_limit


class HeaderTimeoutH11Protocol(H11Protocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():
            if self._header_timer is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()


def protocol_with_timeout(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,), {"header_timeout": seconds})
