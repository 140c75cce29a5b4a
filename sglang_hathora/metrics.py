"""Prometheus metrics, measured at the HTTP boundary (what a client experiences), in one registry
per app. SGLang's own engine metrics join them on /metrics when ENABLE_ENGINE_METRICS is set."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "sglang_hathora"
# Seconds; TTFT spans an idle CPU's 0.1 s to a loaded queue's tens of seconds.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)
_ITL_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5)


class _StateCollector(Collector):
    """Gauges read at scrape time from live state (readiness, NEG attachment, engine requests)."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = self.read()
        yield GaugeMetricFamily(f"{PREFIX}_ready", "1 when /health answers 200", value=state["ready"])
        yield GaugeMetricFamily(
            f"{PREFIX}_engine_requests",
            "Requests the engine holds (running or queued)",
            value=state["engine_requests"],
        )
        phases = GaugeMetricFamily(
            f"{PREFIX}_startup_phase_seconds",
            "Seconds of each start-up phase (startup.py); phase=total is the time to ready",
            labels=["phase"],
        )
        for phase, seconds in state.get("startup", {}).items():
            if seconds is not None:
                phases.add_metric([phase], seconds)
        yield phases
        if state.get("port_bound_after") is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_startup_port_bound_seconds",
                "Seconds from process start to the listening port",
                value=state["port_bound_after"],
            )
        negs = GaugeMetricFamily(f"{PREFIX}_neg_attached", "1 while attached to that NEG", labels=["neg", "scope"])
        for neg in state["negs"]:
            negs.add_metric([neg["name"], neg["scope"]], 1 if neg["attached"] else 0)
        yield negs


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_http_requests", "Every HTTP request, by route and status", ["route", "status"], registry=r
        )
        self.rejected = Counter(
            f"{PREFIX}_rejected_requests",
            "Requests refused before any work: overloaded (429), not_ready (503)",
            ["reason"],
            registry=r,
        )
        self.aborted = Counter(
            f"{PREFIX}_aborted_requests",
            "Generations aborted: client_disconnected, drain_timeout",
            ["reason"],
            registry=r,
        )
        self.prompt_tokens = Counter(f"{PREFIX}_prompt_tokens", "Prompt tokens of finished generations", registry=r)
        self.completion_tokens = Counter(
            f"{PREFIX}_completion_tokens", "Completion tokens of finished generations", registry=r
        )
        self.in_flight = Gauge(f"{PREFIX}_requests_in_flight", "Admitted generation requests", registry=r)
        self.ttft = Histogram(
            f"{PREFIX}_time_to_first_token_seconds",
            "Streams: request start to the first content chunk",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            f"{PREFIX}_inter_token_latency_seconds",
            "Streams: the gap between content chunks",
            buckets=_ITL_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            f"{PREFIX}_e2e_request_latency_seconds",
            "Generation requests, start to the last byte",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._extra: list[Callable[[], bytes]] = []

    def watch_state(self, read: Callable[[], dict]) -> None:
        self.registry.register(_StateCollector(read))

    def add_exposition(self, render: Callable[[], bytes]) -> None:
        """Another source of exposition text appended to /metrics (SGLang's engine metrics)."""
        self._extra.append(render)

    def add_engine_metrics(self) -> None:
        """SGLang's own metrics: its scheduler writes prometheus multiprocess files (the Engine set
        PROMETHEUS_MULTIPROC_DIR before spawning it); its tokenizer manager, in this process, uses
        prometheus_client's default registry."""
        from prometheus_client import REGISTRY, multiprocess

        files = CollectorRegistry()
        multiprocess.MultiProcessCollector(files)
        self.add_exposition(lambda: generate_latest(files) + generate_latest(REGISTRY))

    def render(self) -> bytes:
        return generate_latest(self.registry) + b"".join(render() for render in self._extra)
