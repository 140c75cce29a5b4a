"""Optional API keys (pure ASGI): with API_KEYS set, every /v1/* request needs
``Authorization: Bearer <key>``; /health, /metrics, / and /docs stay open.

Keys are compared in constant time (hmac.compare_digest against every key, no early exit), and a
rejected key never appears in a log or a response. The matched key's index in API_KEYS goes to
``scope["state"]["api_key"]``: stored Responses belong to it (openai/response_store.py).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from sglang_hathora.errors import ApiError
from sglang_hathora.openai.response_store import API_KEY_STATE

PROTECTED_PREFIX = "/v1/"


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: list[bytes]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if (index := self._matched(scope)) is not None:
            scope.setdefault("state", {})[API_KEY_STATE] = index
            await self.app(scope, receive, send)
            return
        message = "Missing or invalid API key: send 'Authorization: Bearer <key>'."
        error = ApiError(message, 401, code="invalid_api_key", headers={"www-authenticate": "Bearer"})
        await error.response()(scope, receive, send)

    def _matched(self, scope: Scope) -> int | None:
        """The index of the key the request sent, or None."""
        header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return None
        matched = None
        for index, key in enumerate(self.keys):
            if hmac.compare_digest(token.strip(), key) and matched is None:
                matched = index
        return matched
