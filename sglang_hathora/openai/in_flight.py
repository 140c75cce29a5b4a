"""Where each admitted generation request's engine rids are kept: ``InFlightTable``, so that an
abort (a client gone, the drain's deadline) reaches all of a request's sequences and nothing else,
and the client is told why its generation ended."""

from __future__ import annotations

from sglang_hathora.engine.sglang_adapter import SGLangAdapter
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import logger

ABORT_MESSAGES = {
    "drain_timeout": "The server is shutting down and its drain timeout ended this generation; retry.",
    "engine": "The engine aborted this generation.",
}


class InFlightTable:
    def __init__(self, adapter: SGLangAdapter, metrics: Metrics) -> None:
        self.adapter = adapter
        self.metrics = metrics
        self._rids: dict[str, list[str]] = {}  # request id -> the engine rids SGLang registered for it
        self._reasons: dict[str, str] = {}  # request id -> why we aborted it

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._rids

    def add(self, request_id: str) -> None:
        """From here on, the rids SGLang registers in this request's task are recorded as its own."""
        self._rids[request_id] = self.adapter.collect_rids()

    def remove(self, request_id: str) -> None:
        self._rids.pop(request_id, None)
        self._reasons.pop(request_id, None)

    def abort(self, request_id: str, reason: str) -> bool:
        rids = self.adapter.live(self._rids.get(request_id, ()))
        for rid in rids:
            self.adapter.abort(rid)
        if rids:
            self._reasons[request_id] = reason
            self.metrics.aborted.labels(reason).inc()
            logger.info("[%s] Aborted in the engine (%s)", request_id, reason.replace("_", " "))
        return bool(rids)

    def abort_all(self, reason: str) -> int:
        return sum(self.abort(request_id, reason) for request_id in list(self._rids))

    def abort_reason(self, request_id: str) -> tuple[str, str]:
        """(code, message) for a generation the engine ended with finish_reason "abort"."""
        reason = self._reasons.pop(request_id, "engine")
        return reason, ABORT_MESSAGES.get(reason, ABORT_MESSAGES["engine"])
