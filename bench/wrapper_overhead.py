"""How much CPU our layer adds per streamed token and per request, measured in-process without an engine.

    python bench/wrapper_overhead.py

Streams synthetic SSE chunks shaped like SGLang's through the pieces that sit between SGLang's serving
layer and the socket on our side (the stream observer, TimingMiddleware, AdmissionMiddleware) and
reports microseconds per chunk, to set against the 50-150 ms between tokens that the engine takes on
this CPU. Used to explain sglang-hathora / sglang.launch_server throughput ratios (bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sglang_hathora.http.admission import AdmissionMiddleware
from sglang_hathora.http.containment import ContainmentMiddleware
from sglang_hathora.http.timing import TimingMiddleware
from sglang_hathora.lifecycle.tasks import GenerationTasks
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import GenerationTimer
from sglang_hathora.openai.admission import Admission
from sglang_hathora.openai.in_flight import InFlightTable
from sglang_hathora.openai.streams import observe_stream

CHUNKS = 20_000
CHUNK = (
    "data: "
    + json.dumps(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"reasoning_content": None, "content": " word"},
                    "logprobs": None,
                    "finish_reason": None,
                    "matched_stop": None,
                }
            ],
        }
    )
    + "\n\n"
)


class _NoEngine:
    """What the in-flight table asks of the SGLang adapter, with no engine behind it."""

    def collect_rids(self) -> list[str]:
        return []

    def live(self, rids: list[str]) -> list[str]:
        return []

    def abort(self, rid: str) -> None:
        pass


async def source():
    for _ in range(CHUNKS):
        yield CHUNK
    yield "data: [DONE]\n\n"


async def through_observer() -> float:
    metrics = Metrics()
    table = InFlightTable(_NoEngine(), metrics)
    table.add("x")
    started = time.perf_counter()
    async for _ in observe_stream(source(), "x", table, GenerationTimer("x", metrics), False):
        pass
    return (time.perf_counter() - started) / CHUNKS


async def through_middleware(wrapped: bool) -> float:
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        pass

    async def receive():
        return {"type": "http.disconnect"}

    metrics = Metrics()
    stack = app
    if wrapped:
        admitted = AdmissionMiddleware(app, Admission(256, metrics))
        stack = TimingMiddleware(ContainmentMiddleware(admitted, GenerationTasks()), "Seattle", metrics)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    started = time.perf_counter()
    await stack(scope, receive, send)
    return (time.perf_counter() - started) / CHUNKS


async def main() -> None:
    observe = min([await through_observer() for _ in range(3)])
    bare = min([await through_middleware(False) for _ in range(3)])
    wrapped = min([await through_middleware(True) for _ in range(3)])
    middleware = max(0.0, wrapped - bare)
    total = observe + middleware
    print(f"stream observer: {observe * 1e6:.1f} us per chunk")
    print(f"TimingMiddleware + ContainmentMiddleware + AdmissionMiddleware: {middleware * 1e6:.2f} us per chunk")
    print(
        f"our layer in all: {total * 1e6:.1f} us per streamed token = {total / 0.060 * 100:.3f}% of a 60 ms "
        "inter-token gap (concurrency 1 on 2 cores)"
    )


if __name__ == "__main__":
    asyncio.run(main())
