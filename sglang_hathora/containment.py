"""Where a request that fails anyway still gets an answer in OpenAI's shape: ``ContainmentMiddleware``.

Two ways a request could end in uvicorn's plain-text "Internal Server Error" before: an exception
no handler knew, and the engine dying under it (measured: ``top_k: 2147483648`` overflowed int32 in
the scheduler; the request task was cancelled while the process detached and exited, and uvicorn
answered text/plain 500). Here an unknown exception becomes a 500 JSON error; when the engine dies,
``InFlight.fail_all`` ends every running request with a 503 JSON error (or, mid-stream, an error
event and ``[DONE]``) before the process exits. Pure ASGI, so streaming is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.admission import GENERATION_PATHS
from sglang_hathora.errors import send_error, streaming_error_event
from sglang_hathora.observability import logger


class InFlight:
    """The generation requests being handled, so that a dying engine can answer each of them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()
        self.failure: tuple[str, str] | None = None  # (message, code) once the engine has failed

    def fail_all(self, message: str, code: str) -> int:
        self.failure = (message, code)
        for task in self.tasks:
            task.cancel(msg=code)
        return len(self.tasks)

    async def wait_answered(self, timeout: float) -> None:
        if self.tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*self.tasks, return_exceptions=True)


class ContainmentMiddleware:
    def __init__(self, app: ASGIApp, in_flight: InFlight) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        state = {"started": False, "ended": False, "sse": False}

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                state["sse"] = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        # Only requests that wait on the engine are failed with it: a /health or /metrics read that
        # happened to be in flight at that moment answers normally (a CI run's /health poll got the
        # engine_stalled error body instead of /health's own 503).
        if scope["path"] in GENERATION_PATHS:
            self.in_flight.tasks.add(task)
        try:
            await self.app(scope, receive, watched_send)
        except asyncio.CancelledError:
            if self.in_flight.failure is None:
                raise  # a normal cancellation (shutdown): not ours to answer
            task.uncancel()
            message, code = self.in_flight.failure
            await self._answer(send, state, 503, message, code)
        except Exception:  # noqa: BLE001 - whatever failed, the client gets OpenAI's shape
            logger.exception("Unhandled error while serving %s %s", scope["method"], scope["path"])
            await self._answer(send, state, 500, "The server failed while handling this request.", "internal_error")
        finally:
            self.in_flight.tasks.discard(task)

    @staticmethod
    async def _answer(send: Send, state: dict, status: int, message: str, code: str) -> None:
        with contextlib.suppress(Exception):  # the client may be gone
            if not state["started"]:
                await send_error(send, status, message, code)
            elif not state["ended"]:
                body = streaming_error_event(message, status, code) + "data: [DONE]\n\n" if state["sse"] else ""
                await send({"type": "http.response.body", "body": body.encode(), "more_body": False})
