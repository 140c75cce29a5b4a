"""ContainmentMiddleware and GenerationTasks: which requests a failing engine answers, and in what shape
(a narrow unit test on a tiny ASGI app; the real engine's failures are in test_hardening.py and
test_lifecycle_stop.py)."""

from __future__ import annotations

import asyncio
import json

from sglang_hathora.http.containment import ContainmentMiddleware
from sglang_hathora.lifecycle.tasks import GenerationTasks


async def _request(app, path: str) -> tuple[int, dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST" if path.startswith("/v1/") else "GET", "path": path}, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_an_engine_failure_answers_generation_requests_and_leaves_health_alone() -> None:
    async def scenario() -> None:
        in_flight = GenerationTasks()
        entered = {"/health": asyncio.Event(), "/v1/chat/completions": asyncio.Event()}
        release = asyncio.Event()

        async def app(scope, receive, send) -> None:
            entered[scope["path"]].set()
            await release.wait()  # both requests are mid-flight when the engine fails
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b'{"engine_status": "stalled"}'})

        wrapped = ContainmentMiddleware(app, in_flight)
        health = asyncio.create_task(_request(wrapped, "/health"))
        chat = asyncio.create_task(_request(wrapped, "/v1/chat/completions"))
        await asyncio.gather(*(event.wait() for event in entered.values()))
        assert in_flight.fail_all("The engine stopped making progress", "engine_stalled") == 1
        status, body = await chat
        assert status == 503 and body["error"]["code"] == "engine_stalled"
        release.set()
        status, body = await health
        assert status == 503 and body == {"engine_status": "stalled"}  # /health's own answer

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_an_unknown_exception_is_a_500_in_openai_shape() -> None:
    async def app(scope, receive, send) -> None:
        raise KeyError("boom")

    status, body = asyncio.run(_request(ContainmentMiddleware(app, GenerationTasks()), "/v1/completions"))
    assert status == 500 and body["error"]["code"] == "internal_error" and "boom" not in body["error"]["message"]
