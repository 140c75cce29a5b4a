"""Where back-pressure is counted: ``Admission`` holds at most MAX_CONCURRENT_REQUESTS sequences
admitted at once (running or queued in the engine); past that, 429 with Retry-After.

A request is admitted only once its body has been read and checked (serving asks its ticket,
weighted by prompts x n): a client that sends headers and "{" and then nothing costs no slot (256
such connections held every slot before). It stays admitted until the last chunk of its response
is sent, streams included, so the count is what the engine really holds.
"""

from __future__ import annotations

from sglang_hathora.metrics import Metrics

GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses"})
RETRY_AFTER_SECONDS = "1"
TICKET_KEY = "admission"


class Admission:
    """The count of admitted sequences."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0

    def try_take(self, weight: int) -> bool:
        # A request heavier than the whole limit still runs when nothing else does.
        if self.in_flight and self.in_flight + weight > self.limit:
            self.metrics.rejected.labels("overloaded").inc()
            return False
        self.in_flight += weight
        self.metrics.in_flight.inc(weight)
        return True

    def give_back(self, weight: int) -> None:
        self.in_flight -= weight
        self.metrics.in_flight.dec(weight)


class Ticket:
    """One request's claim on the admission count; given back exactly once."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.weight = 0

    def take(self, weight: int) -> bool:
        if self.weight == 0 and self.admission.try_take(weight):
            self.weight = weight
        return self.weight > 0

    def give_back(self) -> None:
        if self.weight:
            self.admission.give_back(self.weight)
            self.weight = 0
