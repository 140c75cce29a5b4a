"""Admission: tickets taken after the checks, weighted by sequences, given back with the last chunk."""

from __future__ import annotations

import asyncio

from sglang_hathora.http.admission import AdmissionMiddleware
from sglang_hathora.metrics import Metrics
from sglang_hathora.openai.admission import TICKET_KEY, Admission, Ticket


async def _receive() -> dict:
    return {"type": "http.request", "body": b""}


def scope() -> dict:
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


def test_weights_count_against_the_limit_and_a_heavy_request_runs_alone() -> None:
    admission = Admission(limit=8, metrics=Metrics())
    first, second, third = Ticket(admission), Ticket(admission), Ticket(admission)
    assert first.take(6) and admission.in_flight == 6
    assert not second.take(3)  # 6 + 3 > 8
    assert second.take(2) and admission.in_flight == 8
    first.give_back()
    second.give_back()
    second.give_back()  # exactly once
    assert admission.in_flight == 0
    assert third.take(20) and admission.in_flight == 20  # heavier than the limit: alone it still runs
    third.give_back()
    assert admission.in_flight == 0


def test_no_slot_until_the_app_takes_one_and_freed_with_the_last_chunk() -> None:
    async def scenario() -> None:
        admission = Admission(limit=1, metrics=Metrics())
        release_first = asyncio.Event()
        body_read = asyncio.Event()
        seen_in_flight_at_last_chunk: list[int] = []

        async def app(scope, receive, send) -> None:
            await body_read.wait()  # a slow upload: no slot held meanwhile
            assert scope["state"][TICKET_KEY].take(1)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await release_first.wait()
            await send({"type": "http.response.body", "body": b"done"})
            await asyncio.sleep(0.05)  # work after the last byte (Starlette's task-group teardown)

        middleware = AdmissionMiddleware(app, admission=admission)

        async def send(message: dict) -> None:
            if message.get("body") == b"done":
                seen_in_flight_at_last_chunk.append(admission.in_flight)

        first = asyncio.create_task(middleware(scope(), _receive, send))
        await asyncio.sleep(0.01)
        assert admission.in_flight == 0  # still reading its body
        body_read.set()
        await asyncio.sleep(0.01)
        assert admission.in_flight == 1
        assert not Ticket(admission).take(1)  # the next one would get 429
        release_first.set()
        await first
        assert seen_in_flight_at_last_chunk == [0]  # free before the client can read the end
        assert admission.in_flight == 0

    asyncio.run(scenario())
