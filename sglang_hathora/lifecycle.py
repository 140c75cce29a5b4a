"""The order of life: bind -> load and warm the engine -> ready; stop -> drain -> engine down.

One object holds the process-wide state the routes and /health read (is the engine ready, are we
still accepting work) and runs the start-up and shut-down steps in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sglang_hathora.engine import EngineService, EngineStatus
from sglang_hathora.observability import logger
from sglang_hathora.serving import OpenAIServing
from sglang_hathora.settings import Settings


class Lifecycle:
    def __init__(self, settings: Settings, engine: EngineService | None = None) -> None:
        self.settings = settings
        self.engine = engine or EngineService(settings)
        self.serving: OpenAIServing | None = None
        self.started_at = time.time()
        self.accepting = True  # False from the first stop signal on: /health 503, new work 503
        self.exit_code = 0
        # Set by the server runner: asks the HTTP server to stop (drain and exit).
        self.request_server_exit: Callable[[], None] = lambda: None
        # Set by the server runner: called once the engine's first request has run (see server.py).
        self.on_engine_ready: Callable[[], None] = lambda: None

    @property
    def engine_status(self) -> str:
        if not self.accepting and self.engine.status in (EngineStatus.READY, EngineStatus.LOADING):
            return "draining"
        return self.engine.status.value

    @property
    def ready(self) -> bool:
        return self.accepting and self.engine.ready and self.serving is not None

    async def start(self) -> None:
        """Runs as a background task once the port is bound."""
        try:
            await self.engine.start()
            self.serving = OpenAIServing(self.engine.engine, self.settings)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            logger.error("Engine failed to load, exiting: %s", self.engine.failure or exc)
            logger.debug("Engine failure detail", exc_info=True)
            self.exit_code = 1
            self.accepting = False
            self.request_server_exit()
            return
        self.on_engine_ready()

    def begin_stop(self, reason: str) -> None:
        if not self.accepting:
            return
        logger.info(
            "Stopping (%s): no new requests; draining in-flight ones for up to %.0f s",
            reason,
            self.settings.drain_timeout,
        )
        self.accepting = False
        self.request_server_exit()

    async def stop_engine(self) -> None:
        await asyncio.to_thread(self.engine.shutdown)
