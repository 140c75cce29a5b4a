"""Where a request that fails anyway still gets an answer in OpenAI's shape: ``ContainmentMiddleware``.

Two ways a request could end in uvicorn's plain-text "Internal Server Error" before: an exception
no handler knew, and the engine dying under it (measured: ``top_k: 2147483648`` overflowed int32 in
the scheduler; the request task was cancelled while the process detached and exited, and uvicorn
answered text/plain 500). Here an unknown exception becomes a 500 JSON error; when the engine dies,
``GenerationTasks.fail_all`` ends every running request with a 503 JSON error (or, mid-stream, an error
event and ``[DONE]``) before the process exits. Pure ASGI, so streaming is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.errors import ApiError
from sglang_hathora.lifecycle.tasks import GenerationTasks
from sglang_hathora.observability import logger
from sglang_hathora.openai.admission import GENERATION_PATHS


class ContainmentMiddleware:
    def __init__(self, app: ASGIApp, tasks: GenerationTasks) -> None:
        self.app = app
        self.tasks = tasks

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
            self.tasks.tasks.add(task)
        try:
            await self.app(scope, receive, watched_send)
        except asyncio.CancelledError:
            if self.tasks.failure is None:
                raise  # a normal cancellation (shutdown): not ours to answer
            task.uncancel()
            message, code = self.tasks.failure
            await self._answer(scope, receive, send, state, ApiError(message, 503, code=code))
        except Exception:  # noqa: BLE001 - whatever failed, the client gets OpenAI's shape
            logger.exception("Unhandled error while serving %s %s", scope["method"], scope["path"])
            failed = ApiError("The server failed while handling this request.", 500, code="internal_error")
            await self._answer(scope, receive, send, state, failed)
        finally:
            self.tasks.tasks.discard(task)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, state: dict, error: ApiError) -> None:
        with contextlib.suppress(Exception):  # the client may be gone
            if not state["started"]:
                await error.response()(scope, receive, send)
            elif not state["ended"]:
                body = error.sse_event() + "data: [DONE]\n\n" if state["sse"] else ""
                await send({"type": "http.response.body", "body": body.encode(), "more_body": False})
