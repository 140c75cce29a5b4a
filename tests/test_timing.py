"""TimingMiddleware: headers on every response; a stream's log line comes at its end."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sglang_hathora.http.timing import TimingMiddleware
from sglang_hathora.observability import LOGGER_NAME


async def stream(_request):
    async def body():
        for part in ("a", "b", "c"):
            await asyncio.sleep(0.05)
            yield part

    return StreamingResponse(body(), media_type="text/plain")


async def plain(_request):
    return JSONResponse({"ok": True})


async def health(_request):
    return JSONResponse({"status": "ok"})


def make_client() -> TestClient:
    app = Starlette(routes=[Route("/stream", stream), Route("/plain", plain), Route("/health", health)])
    return TestClient(TimingMiddleware(app, region="Seattle", process_id="proc-7"))


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch):
    logger = logging.getLogger(LOGGER_NAME)
    monkeypatch.setattr(logger, "propagate", False)  # one copy of each record, as in production
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_headers_on_every_response(records) -> None:
    with make_client() as client:
        for path in ("/plain", "/stream", "/missing"):
            response = client.get(path)
            assert float(response.headers["x-process-time"]) >= 0
            assert response.headers["x-hathora-region"] == "Seattle"
            assert response.headers["x-hathora-process-id"] == "proc-7"  # which process answered


def test_stream_log_line_carries_the_full_duration(records) -> None:
    with make_client() as client:
        assert client.get("/stream").text == "abc"
    done = [r.getMessage() for r in records.records if "Status: 200" in r.getMessage()]
    assert len(done) == 1 and done[0].startswith("[testclient] GET /stream - Status: 200, Duration: ")
    duration_ms = float(re.search(r"Duration: ([0-9.]+)ms", done[0]).group(1))
    assert duration_ms >= 150  # three 50 ms chunks: measured to the last byte, not to the headers


def test_health_probes_log_at_debug_only(records) -> None:
    with make_client() as client:
        client.get("/health")
        client.get("/plain")
    levels = {r.getMessage().split(" - ")[0]: r.levelno for r in records.records}
    assert levels["[testclient] GET /health"] == logging.DEBUG
    assert levels["[testclient] GET /plain"] == logging.INFO


def test_request_id_is_honoured_or_generated(records) -> None:
    with make_client() as client:
        assert client.get("/plain", headers={"X-Request-Id": "my-id.42"}).headers["x-request-id"] == "my-id.42"
        generated = client.get("/plain", headers={"X-Request-Id": "bad id with spaces"}).headers["x-request-id"]
        assert generated.startswith("req-") and len(generated) == 36
    lines = [r.getMessage() for r in records.records if "/plain" in r.getMessage()]
    # Two lines per request ("Request started", then the status), each naming its own request's id.
    assert [line.rsplit(" [", 1)[1] for line in lines] == ["my-id.42]"] * 2 + [f"{generated}]"] * 2, lines
