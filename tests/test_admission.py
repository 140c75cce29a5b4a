"""AdmissionMiddleware: the limit, 429 in OpenAI's shape, and the slot freed with the last chunk."""

from __future__ import annotations

import asyncio
import json

from sglang_hathora.admission import AdmissionMiddleware
from sglang_hathora.metrics import Metrics

SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


async def _receive() -> dict:
    return {"type": "http.request", "body": b""}


def test_limit_429_and_slot_freed_with_the_last_chunk() -> None:
    async def scenario() -> None:
        release_first = asyncio.Event()
        seen_in_flight_at_last_chunk: list[int] = []

        async def app(scope, receive, send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await release_first.wait()
            await send({"type": "http.response.body", "body": b"done"})
            await asyncio.sleep(0.05)  # work after the last byte (Starlette's task-group teardown)

        middleware = AdmissionMiddleware(app, limit=1, metrics=Metrics())
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)
            if message.get("body") == b"done":
                seen_in_flight_at_last_chunk.append(middleware.in_flight)

        first = asyncio.create_task(middleware(SCOPE, _receive, send))
        await asyncio.sleep(0.01)
        rejected: list[dict] = []

        async def collect(message: dict) -> None:
            rejected.append(message)

        await middleware(SCOPE, _receive, collect)
        assert rejected[0]["status"] == 429
        assert (b"retry-after", b"1") in rejected[0]["headers"]
        assert json.loads(rejected[1]["body"])["error"]["code"] == "rate_limit_exceeded"
        release_first.set()
        await first
        assert seen_in_flight_at_last_chunk == [0]  # free before the client can read the end
        assert middleware.in_flight == 0

    asyncio.run(scenario())
