"""The order of life, owned by one object: ``Lifecycle``. It is the app's lifespan (an async context
manager), holds the server's one state (state.py), its signal handlers and its background work.

Start: bind the port (uvicorn) -> load and warm the engine -> READY (/health 200) -> attach to the NEGs.
Stop (SIGTERM/SIGINT, a required registration that failed, the engine dying or stalling):
  DETACHING (/health 503 at once; leave every NEG in about 2 s, in parallel, while requests the load
  balancer still routes are served) -> DRAINING (new requests 503; in-flight ones finish, up to
  DRAIN_TIMEOUT) -> engine shutdown -> STOPPED -> exit. A second signal skips the drain, never the detach.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any

from sglang_hathora.engine.service import EngineService, end_children
from sglang_hathora.engine.startup import StartupPhases
from sglang_hathora.engine.watchdog import EngineWatchdog
from sglang_hathora.gcp.registration import NegRegistrar
from sglang_hathora.lifecycle.state import State, StateMachine
from sglang_hathora.lifecycle.tasks import GenerationTasks
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import logger
from sglang_hathora.openai.serving import OpenAIServing
from sglang_hathora.settings import Settings

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Seconds before the drain timeout at which still-running generations are aborted (at most half the
# drain): the abort goes to the scheduler and back before each client's error event can be sent, and
# with the 2 cores busy (a build beside the tests) 1 s was not always enough: the stream was cut bare.
_DRAIN_ABORT_MARGIN = 3.0
# Seconds kept for the engine's shutdown and the exit after a stop (measured 0.3-0.6 s on CPU).
_ENGINE_EXIT_MARGIN = 1.0


class Lifecycle:
    def __init__(
        self,
        settings: Settings,
        engine: EngineService,
        metrics: Metrics,
        startup: StartupPhases,
        registrar: NegRegistrar | None = None,
        make_serving: Callable[[Any], OpenAIServing] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.startup = startup
        self.registrar = registrar
        self._make_serving = make_serving or (lambda adapter: OpenAIServing(adapter, settings, metrics))
        self.machine = StateMachine()
        self.generations = GenerationTasks()
        self.serving: OpenAIServing | None = None
        self.started_at = time.time()
        self.exit_code = 0
        # Read by the HTTP server on every tick: None = serve on, False = stop gracefully, True = at once.
        self.exit_request: bool | None = None
        self._stop_began: float | None = None  # monotonic time of the first stop request
        self._force = False
        self._detached = asyncio.Event()
        # Background work, each held here (a task nobody holds may be garbage-collected mid-run).
        self._loading: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None
        self._registration: asyncio.Task | None = None
        self._stopping: asyncio.Task | None = None
        self._drain_deadline: asyncio.Task | None = None
        metrics.watch_state(self._metric_state)

    # ---- what /health, the routes and the metrics read ----
    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def serving_requests(self) -> bool:
        return self.state in (State.READY, State.DETACHING) and self.serving is not None

    @property
    def stopping(self) -> bool:
        return self._stop_began is not None

    def _metric_state(self) -> dict:
        adapter = self.engine.adapter if self.engine.loaded else None
        startup = self.startup
        return {
            "ready": 1 if self.ready else 0,
            "engine_requests": len(adapter.pending_rids) if adapter is not None else 0,
            "negs": self.registrar.status()["negs"] if self.registrar is not None else [],
            "startup": {**startup.phases, "total": startup.ready_after} if startup.ready_after else startup.phases,
            "port_bound_after": startup.port_bound_after,
        }

    # ---- the app's lifespan ----
    async def __aenter__(self) -> None:
        # uvicorn binds the port only after lifespan startup returns: start loading, don't await it.
        self._loading = asyncio.create_task(self._load(), name="engine-load")

    async def __aexit__(self, *_: object) -> None:
        """The HTTP server has stopped: make sure the detach happened, end background work, stop the engine."""
        self._stop_began = self._stop_began or time.monotonic()
        if self.registrar is not None:
            if not self._detached.is_set():
                await self.registrar.detach_all(self.settings.neg_detach_budget)
                self._detached.set()
            # An attach call in flight when the stop began undoes itself when it returns; wait for it,
            # but only as long as the stop may take in all (detach budget + drain, less the engine's exit).
            budget = self.settings.neg_detach_budget + self.settings.drain_timeout - _ENGINE_EXIT_MARGIN
            await self.registrar.settle(self._stop_began + budget)
        for task in (self._registration, self._watchdog, self._drain_deadline, self._loading):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await asyncio.to_thread(self.engine.shutdown)
        self.machine.to(State.STOPPED)

    def finish(self) -> int:
        """After the HTTP server returned (uvicorn skips the lifespan exit on a forced stop): the engine
        down, no child process left behind (a failed, stalled or cancelled load may leave some), the code."""
        self.engine.shutdown()
        if leftover := end_children():
            logger.warning("Ended leftover child process(es): %s", leftover)
        self.machine.to(State.STOPPED)
        return self.exit_code

    # ---- signals ----
    def take_signals(self) -> None:
        """SIGTERM/SIGINT stop us; SIGQUIT is what SGLang's children send their parent when they fail
        (its default action would end us with no word and no detach). Called when the loop starts and
        again by the engine's warm-up, in the step where SGLang installs its own (it drains, then calls
        sys.exit, skipping our stop; on SIGQUIT it SIGKILLs the whole tree, us included)."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._stop_signal, sig)
        loop.add_signal_handler(signal.SIGQUIT, self.engine_died)

    def _stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stopping:
            self.force_stop(f"second {name}")
        else:
            self.begin_stop(name)

    # ---- start ----
    async def _load(self) -> None:
        try:
            await self.engine.start(take_signals=self.take_signals)
            self.serving = self._make_serving(self.engine.adapter)
            if self.settings.enable_engine_metrics:
                self.metrics.add_engine_metrics()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any load failure must end the process clearly
            if self.engine.load_cancelled:
                logger.info("Load ended by the stop (%s)", self.engine.load_cancelled)
                return
            self._failed_to_load(self.engine.failure or f"{type(exc).__name__}: {exc}", force=False)
            return
        if not self.machine.to(State.READY):
            return  # a stop came first
        logger.info("%s", ready_line(self.settings))
        if self.settings.engine_stall_timeout > 0:
            watchdog = EngineWatchdog(self.engine.adapter, self.settings, on_stall=self.engine_stalled)
            self._watchdog = asyncio.create_task(watchdog.run(), name="engine-watchdog")
        if self.registrar is not None:
            registration = self.registrar.run(give_up=self._registration_failed)
            self._registration = asyncio.create_task(registration, name="neg-registration")

    def _failed_to_load(self, reason: str, force: bool) -> None:
        logger.error("Engine failed to load, exiting: %s", reason)
        self.exit_code = 1
        self.machine.to(State.FAILED)
        if force:
            self.force_stop("engine failed to load")
        else:
            self.begin_stop("engine failed to load")

    def _registration_failed(self, reason: str) -> None:
        logger.error("%s; NEG_REGISTRATION_REQUIRED is set: exiting", reason)
        self.exit_code = 1
        self.begin_stop("registration required but failed")

    # ---- faults ----
    def engine_died(self) -> None:
        """SIGQUIT: SGLang's scheduler or detokenizer died (its children signal the parent so)."""
        if not self.engine.loaded:
            if not self.engine.load_cancelled:  # else our own stop ended the children
                self.engine.failure = "an engine process died during the load (SIGQUIT from a child)"
                self._failed_to_load(self.engine.failure, force=True)
            return
        self.exit_code = 1
        logger.error("An engine process died: detaching and exiting")
        self._fail_engine(State.FAILED, "The engine failed while handling this request", "engine_failed")
        self.force_stop("engine died")

    def engine_stalled(self, detail: str) -> None:
        """The watchdog saw no progress: leave the load balancer and exit so Hathora replaces us."""
        if self.state in (State.FAILED, State.STALLED, State.STOPPED):
            return
        logger.error("Engine stalled (%s): detaching and exiting", detail)
        self.exit_code = 1
        self._fail_engine(State.STALLED, "The engine stopped making progress", "engine_stalled")
        self.force_stop("engine stalled")

    def _fail_engine(self, state: State, what: str, code: str) -> None:
        self.machine.to(state)
        answered = self.generations.fail_all(f"{what}; this server process is restarting. Retry.", code)
        if answered:
            logger.error("Answered %d in-flight request(s) with an %s error", answered, code)

    # ---- stop ----
    def begin_stop(self, reason: str) -> None:
        if self.stopping:
            return
        self._stop_began = time.monotonic()
        self.machine.to(State.DETACHING)  # a FAILED or STALLED state stays: /health says why
        logger.info("Stopping (%s): /health is 503 from now on", reason)
        self.engine.cancel_load(reason)  # a stop during the load ends it (nothing when loaded)
        self._stopping = asyncio.create_task(self._stop_sequence(), name="stop-sequence")

    def force_stop(self, reason: str) -> None:
        """A second stop request: skip the drain (the detach still runs, it is bounded)."""
        logger.warning("%s: ending the drain now", reason)
        self._force = True
        if not self.stopping:
            self.begin_stop(reason)
        elif self._detached.is_set():
            self.exit_request = True

    async def _stop_sequence(self) -> None:
        if self._registration is not None:
            self._registration.cancel()
        if self.registrar is not None:
            try:
                await self.registrar.detach_all(self.settings.neg_detach_budget)
            except Exception:  # noqa: BLE001 - the stop must go on
                logger.exception("NEG detach failed")
        self._detached.set()
        self.machine.to(State.DRAINING)
        if self.generations.failure is not None:
            await self.generations.wait_answered(1.0)  # let each one's error reach its client before the exit
        if not self._force and self.serving is not None:
            logger.info("No new requests; draining in-flight ones for up to %.0f s", self.settings.drain_timeout)
            self._drain_deadline = asyncio.create_task(self._abort_at_drain_deadline(), name="drain-deadline")
        self.exit_request = self._force

    async def _abort_at_drain_deadline(self) -> None:
        # uvicorn cancels whatever still runs when the drain timeout ends, which would cut streams
        # mid-flight with no word; aborting in the engine just before lets each client get an error event.
        drain = self.settings.drain_timeout
        await asyncio.sleep(drain - min(_DRAIN_ABORT_MARGIN, drain / 2))
        if self.serving is not None and (count := self.serving.in_flight.abort_all("drain_timeout")):
            logger.warning("Drain timeout: aborted %d generation(s) still running", count)


def ready_line(settings: Settings) -> str:
    """Where to send the first request, as one line a person can copy from the terminal."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    url = f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
    auth = ' -H "Authorization: Bearer $API_KEY"' if settings.api_keys else ""
    question = '[{"role": "user", "content": "What is the capital of France?"}]'
    body = f'{{"model": "sglang", "messages": {question}, "temperature": 0, "max_tokens": 64}}'
    headers = f"-H 'Content-Type: application/json'{auth}"
    return f"Ready on {url} - try: curl -s {url}/v1/chat/completions {headers} -d '{body}'"
