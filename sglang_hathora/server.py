"""Process entry: settings -> logging -> uvicorn, with our own signal handling.

Why not uvicorn's signal handling as is:
- after a signal-driven shutdown uvicorn re-raises the signal, so SIGTERM would end the process
  with status 143 even after a clean drain; we exit 0;
- a stop must detach from the load balancer BEFORE the listener closes (lifecycle.py);
- SGLang installs its own SIGTERM and SIGQUIT handlers on the serving loop at its first request
  (it drains, then calls sys.exit, skipping our shutdown; on SIGQUIT it SIGKILLs the whole process
  tree, us included); we take them back once the engine has run its warm-up request.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Generator
from types import FrameType

import uvicorn

from sglang_hathora.app import create_app
from sglang_hathora.engine import end_children
from sglang_hathora.gcp_auth import ServiceAccountKeyError
from sglang_hathora.http_protocol import protocol_with_timeout
from sglang_hathora.lifecycle import Lifecycle
from sglang_hathora.observability import configure_logging, logger
from sglang_hathora.regions import UnknownRegionError
from sglang_hathora.registration import NegRegistrar, RegistrationConfigError, plan_registration
from sglang_hathora.settings import Settings, load_settings_or_exit
from sglang_hathora.startup import StartupPhases

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class HathoraServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Called by uvicorn inside serve(), on the running loop: handlers run as loop callbacks.
        loop = asyncio.get_running_loop()
        self.install_signal_handlers()
        try:
            yield
        finally:
            for sig in (*STOP_SIGNALS, signal.SIGQUIT):
                loop.remove_signal_handler(sig)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        # SGLang's children SIGQUIT their parent when they fail, during the load too (its default
        # action would end us with no word and no detach).
        loop.add_signal_handler(signal.SIGQUIT, self.lifecycle.engine_died)

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.lifecycle.startup.port_bound()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name = signal.Signals(sig).name
        if self.lifecycle.stopping:
            self.lifecycle.force_stop(f"second {name}")
        else:
            self.lifecycle.begin_stop(name)

    def reclaim_signals(self) -> None:
        """Undo SGLang's SIGTERM/SIGINT/SIGQUIT takeover (done at the engine's first request)."""
        self.install_signal_handlers()

    def request_exit(self, force: bool) -> None:
        self.should_exit = True
        if force:
            self.force_exit = True


def build_server(
    settings: Settings, registrar: NegRegistrar | None = None, startup: StartupPhases | None = None
) -> HathoraServer:
    lifecycle = Lifecycle(settings, registrar, startup)
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
        http=protocol_with_timeout(settings.header_timeout),
        # Connections + running requests; past it uvicorn answers 503 (slow or stalled clients are
        # ended by HEADER_TIMEOUT and REQUEST_BODY_TIMEOUT, so they cannot hold these for long).
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
    )
    server = HathoraServer(config, lifecycle)
    lifecycle.request_server_exit = server.request_exit
    lifecycle.on_engine_ready = server.reclaim_signals
    return server


def main() -> int:
    # SGLang's serving layer still returns FastAPI's deprecated ORJSONResponse; nothing for us to act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    startup = StartupPhases()
    settings = load_settings_or_exit()
    configure_logging(settings)
    startup.advance("configuration")
    try:
        plan = plan_registration(settings)
    except (ServiceAccountKeyError, UnknownRegionError, RegistrationConfigError) as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    logger.info(
        "Starting sglang-hathora on %s:%d (model %s, region %s, process %s, NEG registration %s)",
        settings.host,
        settings.port,
        settings.model_path or "bundled SmolLM2-135M-Instruct",
        settings.hathora_region or "none",
        settings.hathora_process_id or "none",
        f"{plan.mode} for {settings.hathora_hostname}:{settings.hathora_default_port}" if plan else "off",
    )
    server = build_server(settings, NegRegistrar(plan, settings) if plan else None, startup)
    engine = server.lifecycle.engine
    try:
        server.run()
    finally:
        # uvicorn skips the lifespan shutdown on a forced exit; shutdown() is idempotent.
        engine.shutdown()
        # The engine's shutdown ends its children; this catches what a failed, stalled or cancelled load
        # left behind, so that no process outlives us.
        if leftover := end_children():
            logger.warning("Ended leftover child process(es): %s", leftover)
    code = server.lifecycle.exit_code
    logger.info("Exited with status %d", code)
    return code


def exit_now(code: int) -> None:
    """End the process once main() is done, skipping the interpreter's teardown.

    Measured: after the last log line, freeing the modules and objects of torch, SGLang and
    transformers kept the process alive 3.5-4 s more (py-spy: unicode_dealloc), time a stop does not
    have (Hathora sends SIGKILL 10 s after SIGTERM). Also, after a stop during the load a load step
    may still run in a daemon thread; a normal exit would wait on it or race with it. Everything that
    must be done is done by now: engine children ended, NEG detached, logs flushed below.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
