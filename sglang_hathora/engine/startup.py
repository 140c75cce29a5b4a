"""Where the time to ready is accounted: ``StartupPhases``.

Cold start decides how fast Hathora can add capacity, so the time from process start to /health 200
is split into contiguous phases that sum to it (each ends where the next begins):
  python_start   process created -> our main() runs (interpreter, our imports)
  configuration  settings, logging, registration plan, app -> the engine load starts
  device         device detection (imports torch only where a GPU driver's device files exist)
  forkserver     start of the forkserver that preloads SGLang for the engine's children (it imports
                 on the other core during the next phases; 0 with ENGINE_FORKSERVER off)
  model_files    bundled model unpacked (0 with MODEL_PATH)
  sglang_import  SGLang's modules
  engine_build   the model's config (pulled from a bucket for gs://), then sglang.Engine(): tokenizer,
                 scheduler process, weights (streamed for gs://), KV cache (SGLang's own
                 parts: load_weight, kv_cache_allocation, cuda_graph, scheduler_e2e, in ``parts``)
  warm_up        one real generation on the serving loop
The port is bound (a milestone, not a phase: it happens while the load runs) within about a second.
Shown: one INFO line per phase, /health while loading, gauges on /metrics.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from sglang_hathora.observability import logger


def process_started_at() -> float:
    """The monotonic time at which this process was created (from the kernel's start time)."""
    return time.monotonic() - (time.time() - psutil.Process().create_time())


class StartupPhases:
    def __init__(self, started_at: float | None = None) -> None:
        self.started_at = started_at if started_at is not None else process_started_at()
        self.phases: dict[str, float] = {}  # name -> seconds, in order
        self.parts: dict[str, float] = {}  # SGLang's own figures inside engine_build
        self.current: str | None = "python_start"
        self.port_bound_after: float | None = None
        self.ready_after: float | None = None
        self._mark = self.started_at

    def advance(self, next_phase: str | None) -> None:
        """The current phase ends now and ``next_phase`` begins (None: the last one ended)."""
        now = time.monotonic()
        if self.current is not None:
            self.phases[self.current] = now - self._mark
            logger.info("Startup: %s %.2f s", self.current, self.phases[self.current])
        self.current, self._mark = next_phase, now

    def port_bound(self) -> None:
        self.port_bound_after = time.monotonic() - self.started_at
        logger.info("Startup: port bound %.2f s after the process started", self.port_bound_after)

    def engine_parts(self, startup_time: dict[str, Any] | None) -> None:
        """SGLang's own startup figures (tokenizer_manager.startup_time), flattened."""
        for key, value in (startup_time or {}).items():
            if isinstance(value, dict):
                self.parts.update({f"{key}.{k}": float(v) for k, v in value.items() if v})
            elif isinstance(value, int | float):
                self.parts[key] = float(value)
        if shown := ", ".join(f"{k}={v:.2f}" for k, v in self.parts.items() if v >= 0.005):
            logger.info("Startup: engine_build parts (SGLang's figures, s): %s", shown)

    def ready(self) -> None:
        self.advance(None)
        self.ready_after = time.monotonic() - self.started_at
        logger.info(
            "Startup: ready %.2f s after the process started (%s)",
            self.ready_after,
            ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.phases.items()),
        )

    def status(self) -> dict[str, Any]:
        """For /health while loading: the phase running, the time so far, the phases done."""
        return {
            "phase": self.current,
            "elapsed": round(time.monotonic() - self.started_at, 2),
            "phases": {name: round(seconds, 2) for name, seconds in self.phases.items()},
        }
