"""A fake engine for the fast loop (``make test-fast``): what the lifecycle and the watchdog ask of
EngineService and of the SGLang adapter, with no SGLang behind it. It proves the ORDER of things
(state, detach before exit, what a stall or a death does); the real engine proves the rest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class FakeAdapter:
    def __init__(self) -> None:
        self.pending_rids: list[str] = []
        self.last_output_stamp = time.time()
        self.aborted: list[str] = []
        self.answers = True  # False: a wedged engine, the canary never comes back
        self.collected: list[list[str]] = []  # each request's list of engine rids, as SGLang would fill it

    def collect_rids(self) -> list[str]:
        rids: list[str] = []
        self.collected.append(rids)
        return rids

    def live(self, rids: list[str]) -> list[str]:
        return [rid for rid in rids if rid in self.pending_rids]

    def abort(self, rid: str) -> None:
        self.aborted.append(rid)

    async def one_token(self, rid: str) -> None:
        if not self.answers:
            self.pending_rids.append(rid)
            await asyncio.Event().wait()
        self.last_output_stamp = time.time()


class FakeEngine:
    """EngineService's surface: start (load + warm-up), cancel_load, shutdown; events recorded with times."""

    def __init__(self, load_seconds: float = 0.0, fails: str | None = None) -> None:
        self.load_seconds = load_seconds
        self.fails = fails
        self.loaded = False
        self.adapter: FakeAdapter | None = None
        self.model_path = "fake-model"
        self.failure: str | None = None
        self.load_cancelled: str | None = None
        self.events: list[tuple[str, float]] = []

    async def start(self, take_signals: Callable[[], None] | None = None) -> None:
        await asyncio.sleep(self.load_seconds)
        if self.load_cancelled:
            raise RuntimeError("the engine's children were ended")
        if self.fails:
            self.failure = self.fails
            raise RuntimeError(self.fails)
        if take_signals is not None:  # as the real warm-up does, once the engine is built
            take_signals()
        self.adapter = FakeAdapter()
        self.loaded = True
        self.events.append(("loaded", time.monotonic()))

    def cancel_load(self, reason: str) -> None:
        if not self.loaded:
            self.load_cancelled = reason
            self.events.append(("load cancelled", time.monotonic()))

    def shutdown(self) -> None:
        if not any(name == "shutdown" for name, _ in self.events):
            self.events.append(("shutdown", time.monotonic()))


class FakeServing:
    """What the lifecycle asks of OpenAIServing: the in-flight table, for the drain deadline's aborts."""

    class _Table:
        def abort_all(self, reason: str) -> int:
            return 0

    in_flight = _Table()
