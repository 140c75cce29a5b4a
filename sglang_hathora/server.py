"""Process entry: settings -> logging -> uvicorn, with our own signal handling.

Why not uvicorn's signal handling as is:
- after a signal-driven shutdown uvicorn re-raises the signal, so SIGTERM would end the process
  with status 143 even after a clean drain; we exit 0;
- SGLang installs its own SIGTERM handler on the serving loop at the first request (it drains and
  then calls sys.exit, skipping our shutdown); we take SIGTERM back once the engine has run one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Generator
from types import FrameType

import psutil
import uvicorn

from sglang_hathora.app import create_app
from sglang_hathora.lifecycle import Lifecycle
from sglang_hathora.observability import configure_logging, logger
from sglang_hathora.settings import Settings, load_settings_or_exit

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class HathoraServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            # A second signal during the drain: stop waiting for in-flight requests.
            logger.warning("Second %s: ending the drain now", signal.Signals(sig).name)
            self.force_exit = True
            return
        self.lifecycle.begin_stop(signal.Signals(sig).name)

    def reclaim_signals(self) -> None:
        """Undo SGLang's SIGTERM/SIGINT takeover (it happens on the engine's first request)."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)


def build_server(settings: Settings) -> HathoraServer:
    lifecycle = Lifecycle(settings)
    app = create_app(settings, lifecycle)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our logging configuration
        log_level=settings.log_level.lower(),
        access_log=False,  # TimingMiddleware writes the request lines
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.drain_timeout,
    )
    server = HathoraServer(config, lifecycle)

    def request_exit() -> None:
        server.should_exit = True

    lifecycle.request_server_exit = request_exit
    lifecycle.on_engine_ready = server.reclaim_signals
    return server


def _end_leftover_children() -> None:
    # The engine's shutdown kills its children; this only catches what a failed or interrupted
    # load left behind, so that no process outlives us.
    children = psutil.Process().children(recursive=True)
    alive = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:  # zombies are only reaped below
                alive.append(f"{child.pid} ({child.name()})")
                child.kill()
    if alive:
        logger.warning("Ended leftover child process(es): %s", ", ".join(alive))
    psutil.wait_procs(children, timeout=10)


def main() -> int:
    # SGLang's serving layer still returns FastAPI's deprecated ORJSONResponse; nothing for us to act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    settings = load_settings_or_exit()
    configure_logging(settings)
    logger.info(
        "Starting sglang-hathora on %s:%d (model %s, region %s)",
        settings.host,
        settings.port,
        settings.model_path or "bundled SmolLM2-135M-Instruct",
        settings.hathora_region or "none",
    )
    server = build_server(settings)
    try:
        server.run()
    finally:
        # uvicorn skips the lifespan shutdown on a forced exit; shutdown() is idempotent.
        server.lifecycle.engine.shutdown()
        _end_leftover_children()
    logger.info("Exited with status %d", server.lifecycle.exit_code)
    return server.lifecycle.exit_code


if __name__ == "__main__":
    sys.exit(main())
