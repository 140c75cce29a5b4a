"""Slow and stalled clients cost nothing: a server with short REQUEST_BODY_TIMEOUT and HEADER_TIMEOUT,
the real engine, and hundreds of connections that stall (slowloris) beside real requests."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.server_process import ServerProcess, ready_server

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]
STALLED = 300
# Long enough that a real answer beside the stalled uploads (1-3 s here) comes before their deadline.
BODY_TIMEOUT = 10
HEADER_TIMEOUT = 3


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "MAX_CONCURRENT_REQUESTS": "8",  # far fewer than the stalled uploads
        "MAX_CONNECTIONS": "1024",
    }
    with ready_server(tmp_path_factory.mktemp("slow"), **env) as server:
        yield server


def stalled_upload(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    return sock


def stalled_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes | None:
    """All the server sent until it closed the connection, or None if it kept it open past ``timeout``."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length (headers and body may arrive in separate reads)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536) or b"<closed>"
        assert not received.endswith(b"<closed>"), received
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, received + body
        body += chunk
    return head + b"\r\n\r\n" + body


def test_stalled_uploads_hold_no_slot_and_get_408(slow_server: ServerProcess) -> None:
    uploads = [stalled_upload(slow_server.port) for _ in range(STALLED)]
    try:
        time.sleep(0.5)
        # 300 stalled uploads against 8 admission slots: a real request is still admitted at once.
        client = openai.OpenAI(base_url=f"{slow_server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
        answer = client.chat.completions.create(
            model="sglang", messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0
        )
        assert "Paris" in answer.choices[0].message.content  # admitted: a held slot would have been a 429
        # ... while all 300 still stall: none has been answered or closed yet.
        readable, _, _ = select.select(uploads, [], [], 0)
        assert readable == [], f"{len(readable)} stalled uploads already answered: the premise is gone"
        # Each stalled upload ends with an OpenAI-shaped 408 once the body deadline passes, and the
        # connection is closed (its unsent body could never be read past).
        replies = [read_until_closed(sock, BODY_TIMEOUT + 10) for sock in uploads[:20]]
        for reply in replies:
            assert reply is not None and reply.startswith(b"HTTP/1.1 408"), reply
            assert b'"code":"request_timeout"' in reply.replace(b" ", b"")
    finally:
        for sock in uploads:
            sock.close()
    metrics = httpx.get(f"{slow_server.base_url}/metrics").text
    assert 'route="/v1/chat/completions",status="408"' in metrics
    assert "sglang_hathora_requests_in_flight 0.0" in metrics


def test_connections_that_never_finish_their_headers_are_closed(slow_server: ServerProcess) -> None:
    idle = [socket.create_connection(("127.0.0.1", slow_server.port)) for _ in range(STALLED // 2)]
    partial = [stalled_headers(slow_server.port) for _ in range(STALLED // 2)]
    try:
        assert httpx.get(f"{slow_server.base_url}/health", timeout=5).status_code == 200
        started = time.monotonic()
        for sock in idle[:10] + partial[:10]:
            assert read_until_closed(sock, HEADER_TIMEOUT + 10) == b""  # closed without a word
        assert time.monotonic() - started < HEADER_TIMEOUT + 10
    finally:
        for sock in idle + partial:
            sock.close()
    # An idle keep-alive connection after a response is left to KEEP_ALIVE_TIMEOUT, not cut at 3 s.
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        sock.settimeout(10)
        for attempt in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_response(sock)
            assert reply.startswith(b"HTTP/1.1 200"), (attempt, reply)
            assert reply.endswith(b"}"), (attempt, reply)
            time.sleep(HEADER_TIMEOUT + 1)
