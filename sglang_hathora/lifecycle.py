"""The order of life, in one place.

Start: bind the port (uvicorn) -> load and warm the engine -> /health 200 -> attach to the NEGs.
Stop (SIGTERM/SIGINT, a required registration that failed, or the engine dying):
  /health 503 at once -> detach from every NEG (about 2 s, in parallel; requests that the load
  balancer still routes meanwhile are served) -> stop accepting -> drain in-flight requests up to
  DRAIN_TIMEOUT -> engine shutdown -> exit. A second signal skips the drain, never the detach.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sglang_hathora.containment import InFlight
from sglang_hathora.engine import EngineService, EngineStatus
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import logger
from sglang_hathora.registration import NegRegistrar
from sglang_hathora.serving import OpenAIServing
from sglang_hathora.settings import Settings
from sglang_hathora.startup import StartupPhases
from sglang_hathora.watchdog import EngineWatchdog

# Seconds before the drain timeout at which still-running generations are aborted.
_DRAIN_ABORT_MARGIN = 1.0
# Seconds kept for the engine's shutdown and the exit after a stop (measured 0.3-0.6 s on CPU).
_ENGINE_EXIT_MARGIN = 1.0


class Lifecycle:
    def __init__(
        self, settings: Settings, registrar: NegRegistrar | None = None, startup: StartupPhases | None = None
    ) -> None:
        self.settings = settings
        self.startup = startup or StartupPhases()
        self.engine = EngineService(settings, self.startup)
        self.registrar = registrar
        self.metrics = Metrics()
        self.metrics.watch_state(self._metric_state)
        self.in_flight = InFlight()
        self.serving: OpenAIServing | None = None
        self.started_at = time.time()
        self.stopping = False  # from the first stop request on: /health 503
        self._stop_began: float | None = None  # monotonic time of the first stop request
        self.accepting = True  # False once the NEG detach is done: new work gets 503, the drain begins
        self.exit_code = 0
        self._force = False
        self._detached = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        # Set by the server runner (server.py): stop the HTTP server, gracefully or at once.
        self.request_server_exit: Callable[[bool], None] = lambda force: None
        # Set by the server runner: called once the engine has run its first request.
        self.on_engine_ready: Callable[[], None] = lambda: None

    # ---- what /health and the routes read ----
    @property
    def engine_status(self) -> str:
        if self.stopping and self.engine.status in (EngineStatus.READY, EngineStatus.LOADING):
            return "draining"
        return self.engine.status.value

    @property
    def ready(self) -> bool:
        return not self.stopping and self.engine.ready and self.serving is not None

    @property
    def serving_requests(self) -> bool:
        return self.accepting and self.engine.ready and self.serving is not None

    def _metric_state(self) -> dict:
        engine_requests = len(self.engine.tokenizer_manager.rid_to_state) if self.engine.ready else 0
        negs = self.registrar.status()["negs"] if self.registrar is not None else []
        startup = self.startup
        return {
            "ready": 1 if self.ready else 0,
            "engine_requests": engine_requests,
            "negs": negs,
            "startup": {**startup.phases, "total": startup.ready_after} if startup.ready_after else startup.phases,
            "port_bound_after": startup.port_bound_after,
        }

    # ---- start ----
    async def start(self) -> None:
        """Runs as a background task once the port is bound."""
        try:
            await self.engine.start()
            self.serving = OpenAIServing(self.engine.engine, self.settings, self.metrics)
            if self.settings.enable_engine_metrics:
                self.metrics.add_engine_metrics()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any load failure must end the process clearly
            if self.engine.load_cancelled:
                logger.info("Load ended by the stop (%s)", self.engine.load_cancelled)
                return
            logger.error("Engine failed to load, exiting: %s", self.engine.failure or exc)
            logger.debug("Engine failure detail", exc_info=True)
            self.exit_code = 1
            self.begin_stop("engine failed to load")
            return
        self.on_engine_ready()
        if self.stopping:
            return
        if self.settings.engine_stall_timeout > 0:
            watchdog = EngineWatchdog(self.engine.engine, self.settings, on_stall=self.engine_stalled)
            self._spawn(watchdog.run(), "engine-watchdog")
        if self.registrar is not None:
            self._spawn(self.registrar.run(give_up=self._registration_failed), "neg-registration")

    def _registration_failed(self, reason: str) -> None:
        logger.error("%s; NEG_REGISTRATION_REQUIRED is set: exiting", reason)
        self.exit_code = 1
        self.begin_stop("registration required but failed")

    # ---- stop ----
    def begin_stop(self, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop_began = time.monotonic()
        logger.info("Stopping (%s): /health is 503 from now on", reason)
        self.engine.cancel_load(reason)  # a stop during the load ends it (nothing when loaded)
        self._spawn(self._stop_sequence(), "stop-sequence")

    def force_stop(self, reason: str) -> None:
        """A second stop request: skip the drain (the detach still runs, it is bounded)."""
        logger.warning("%s: ending the drain now", reason)
        self._force = True
        if not self.stopping:
            self.begin_stop(reason)
        elif self._detached.is_set():
            self.request_server_exit(True)

    def engine_died(self) -> None:
        """SIGQUIT: SGLang's scheduler or detokenizer died (its children signal the parent so)."""
        self.exit_code = 1
        if self.engine.status is EngineStatus.LOADING:
            if self.engine.load_cancelled:
                return  # our own stop ended the children
            self.engine.failure = "an engine process died during the load (SIGQUIT from a child)"
            logger.error("Engine failed to load, exiting: %s", self.engine.failure)
            self.engine.status = EngineStatus.FAILED
            self.force_stop("engine failed to load")
            return
        logger.error("An engine process died: detaching and exiting")
        self._fail_engine(EngineStatus.FAILED, "The engine failed while handling this request", "engine_failed")
        self.force_stop("engine died")

    def engine_stalled(self, detail: str) -> None:
        """The watchdog saw no progress: leave the load balancer and exit so Hathora replaces us."""
        if self.stopping and self.engine.status is not EngineStatus.READY:
            return
        logger.error("Engine stalled (%s): detaching and exiting", detail)
        self.exit_code = 1
        self._fail_engine(EngineStatus.STALLED, "The engine stopped making progress", "engine_stalled")
        self.force_stop("engine stalled")

    def _fail_engine(self, status: EngineStatus, what: str, code: str) -> None:
        self.engine.status = status
        answered = self.in_flight.fail_all(f"{what}; this server process is restarting. Retry.", code)
        if answered:
            logger.error("Answered %d in-flight request(s) with an %s error", answered, code)

    async def _stop_sequence(self) -> None:
        for task in list(self._tasks):
            if task.get_name() == "neg-registration":
                task.cancel()
        if self.registrar is not None:
            try:
                await self.registrar.detach_all(self.settings.neg_detach_budget)
            except Exception:  # noqa: BLE001 - the stop must go on
                logger.exception("NEG detach failed")
        self._detached.set()
        self.accepting = False
        if self.in_flight.failure is not None:
            await self.in_flight.wait_answered(1.0)  # let each one's error reach its client before the exit
        if not self._force:
            logger.info("No new requests; draining in-flight ones for up to %.0f s", self.settings.drain_timeout)
            self._spawn(self._abort_at_drain_deadline(), "drain-deadline")
        self.request_server_exit(self._force)

    async def _abort_at_drain_deadline(self) -> None:
        # uvicorn cancels whatever still runs when the drain timeout ends, which would cut streams
        # mid-flight with no word; aborting in the engine just before lets each client get an error event.
        await asyncio.sleep(max(0.0, self.settings.drain_timeout - _DRAIN_ABORT_MARGIN))
        if self.serving is not None and (count := self.serving.abort_all("drain_timeout")):
            logger.warning("Drain timeout: aborted %d generation(s) still running", count)

    async def shutdown(self) -> None:
        """The HTTP server has stopped: make sure the detach happened, then end background work."""
        self.stopping = True
        self.accepting = False
        if self.registrar is not None:
            if not self._detached.is_set():
                await self.registrar.detach_all(self.settings.neg_detach_budget)
                self._detached.set()
            # An attach call in flight when the stop began undoes itself when it returns; wait for it,
            # but only as long as the stop may take in all (detach budget + drain, less the engine's exit).
            budget = self.settings.neg_detach_budget + self.settings.drain_timeout - _ENGINE_EXIT_MARGIN
            await self.registrar.settle((self._stop_began or time.monotonic()) + budget)
        await self.cancel_tasks()

    async def stop_engine(self) -> None:
        await asyncio.to_thread(self.engine.shutdown)

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            if task.get_name() != "stop-sequence":
                task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
