"""Where a wedged engine is noticed: ``EngineWatchdog`` watches whether SGLang makes progress.

A hung scheduler (a stuck GPU kernel, a deadlock, a stopped process) keeps its process alive, so
nothing else notices: /health would stay 200, the endpoint would stay in the NEG (global internet
NEGs have no health checks at all) and SGLang's own watchdog only fires after 300 s. Two rules:
- work pending (requests in the engine): some output must arrive from the engine within
  ENGINE_STALL_TIMEOUT seconds of the last one (or of the moment the work appeared);
- idle: every ENGINE_CANARY_INTERVAL seconds a one-token generation must finish within
  ENGINE_STALL_TIMEOUT.
Progress is SGLang's own receive stamp (``SGLangAdapter.last_output_stamp``), which its receive loop
bumps on every message from the detokenizer. The longest silence with work pending is one long prefill alone
(chunked prefill interleaves decodes, which keep producing): the defaults and their measurements are
in settings.py.

Silence is counted in the time this process's event loop ran, not on the wall clock: SGLang's outputs
reach the stamp through this same loop, so while the whole process is frozen (SIGSTOP, a paused
container) or its loop is blocked, the engine cannot be heard whatever it does. Counted on the wall
clock, a server stopped for longer than the timeout (measured: 300 s, four benchmark runs of other
servers) declared itself stalled within a second of being resumed, its engine healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

from sglang_hathora.engine.sglang_adapter import SGLangAdapter
from sglang_hathora.observability import logger
from sglang_hathora.settings import Settings

CANARY_RID_PREFIX = "canary-"


class EngineWatchdog:
    def __init__(self, adapter: SGLangAdapter, settings: Settings, on_stall: Callable[[str], None]) -> None:
        self.adapter = adapter
        self.timeout = settings.engine_stall_timeout
        self.canary_interval = settings.engine_canary_interval
        self.on_stall = on_stall
        self.check_every = min(1.0, self.timeout / 5)

    async def run(self) -> None:
        last_stamp = self.adapter.last_output_stamp
        clock = 0.0  # seconds the loop ran (a tick counts at most two intervals: see the module's docstring)
        tick = time.monotonic()
        progress_at = clock  # at the last observed change of SGLang's stamp
        was_pending = False
        canary: asyncio.Task | None = None
        canary_at = clock
        while True:
            await asyncio.sleep(self.check_every)
            now = time.monotonic()
            clock += min(now - tick, 2 * self.check_every)
            tick = now
            stamp = self.adapter.last_output_stamp
            rids = self.adapter.pending_rids
            pending = bool(rids)
            if stamp != last_stamp or (pending and not was_pending):
                last_stamp, progress_at = stamp, clock  # new output, or work that just arrived
            was_pending = pending
            if pending and clock - progress_at > self.timeout:
                if all(str(rid).startswith(CANARY_RID_PREFIX) for rid in rids):  # idle but for the canary
                    self.on_stall(self._canary_late)
                else:
                    self.on_stall(f"no output for {clock - progress_at:.0f} s with {len(rids)} pending")
                return
            if canary is not None and canary.done():
                canary = None
            elif canary is not None and clock - canary_at > self.timeout:
                canary.cancel()
                self.on_stall(self._canary_late)
                return
            if canary is None and not pending and 0 < self.canary_interval <= clock - progress_at:
                canary, canary_at = asyncio.create_task(self._canary(), name="engine-canary"), clock

    @property
    def _canary_late(self) -> str:
        return f"a one-token canary did not finish in {self.timeout:.0f} s while idle"

    async def _canary(self) -> None:
        """One greedy token; run() judges its deadline (in its own clock) and cancels it when late."""
        rid = f"{CANARY_RID_PREFIX}{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            await self.adapter.one_token(rid)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.adapter.abort(rid)
            raise
        except Exception as exc:  # noqa: BLE001 - an engine that errors is not stalled: its own handling applies
            logger.warning("Engine canary failed: %s", exc)
            return
        logger.debug("Engine canary answered in %.3f s", time.monotonic() - started)
