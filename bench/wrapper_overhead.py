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

from sglang_hathora.admission import Admission, AdmissionMiddleware
from sglang_hathora.containment import ContainmentMiddleware, InFlight
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import GenerationTimer
from sglang_hathora.serving import OpenAIServing
from sglang_hathora.timing import TimingMiddleware

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
    def __init__(self) -> None:
        self.rid_to_state: dict = {}

    def abort_request(self, rid: str) -> None:
        pass


def observer() -> OpenAIServing:
    serving = OpenAIServing.__new__(OpenAIServing)  # the stream observer needs no engine
    serving.metrics, serving.tokenizer_manager = Metrics(), _NoEngine()
    serving.abort_reasons, serving.active = {}, {}
    return serving


async def source():
    for _ in range(CHUNKS):
        yield CHUNK
    yield "data: [DONE]\n\n"


async def observe_stream() -> float:
    serving = observer()
    started = time.perf_counter()
    async for _ in serving._observe_stream(source(), GenerationTimer("x", serving.metrics), "x", False):
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
        stack = TimingMiddleware(ContainmentMiddleware(admitted, InFlight()), "Seattle", metrics)
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
    observe = min([await observe_stream() for _ in range(3)])
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
