"""A Hugging Face hub on 127.0.0.1 for the tests: one model repository, the few routes huggingface_hub's
``list_repo_files`` and ``snapshot_download`` use, and a record of every request (path, token) so a
test can tell what a client fetched and with which credentials. Pointed at by ``HF_ENDPOINT``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repo: str, files: dict[str, bytes]) -> None:
        self.repo, self.files = repo, files
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization header)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloaded(self) -> set[str]:
        prefix = f"/{self.repo}/resolve/"
        return {path[len(prefix) :].split("/", 1)[1] for method, path, _ in self.requests if path.startswith(prefix)}

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        self.requests.append((handler.command, path, handler.headers.get("Authorization")))
        tree = f"/api/models/{self.repo}/tree/"
        if path.startswith(tree) or path.startswith(f"/api/models/{self.repo}/revision/"):
            listing = [{"type": "file", "path": n, "size": len(d), "oid": _oid(d)} for n, d in self.files.items()]
            if path.startswith(tree):
                payload = listing
            else:
                payload = {"id": self.repo, "sha": COMMIT, "siblings": [{"rfilename": n} for n in self.files]}
            self._send(handler, 200, json.dumps(payload).encode(), "application/json", body)
            return
        prefix = f"/{self.repo}/resolve/"
        if path.startswith(prefix) and (name := path[len(prefix) :].split("/", 1)[-1]) in self.files:
            data = self.files[name]
            self._send(handler, 200, data, "application/octet-stream", body, etag=_oid(data))
            return
        self._send(handler, 404, b'{"error": "not found"}', "application/json", body)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, data: bytes, kind: str, body: bool, etag: str | None = None
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Repo-Commit", COMMIT)
        if etag:
            handler.send_header("ETag", f'"{etag}"')
        handler.end_headers()
        if body:
            handler.wfile.write(data)


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
