"""Process entry: settings -> logging -> the parts, built once and given to each other -> uvicorn.

Why uvicorn's own signal handling is not used: after a signal-driven shutdown uvicorn re-raises the
signal, so SIGTERM would end the process with status 143 even after a clean drain (we exit 0), and a
stop must detach from the load balancer BEFORE the listener closes. The lifecycle owns the signals
and the order of the stop (lifecycle/lifecycle.py); this server's exit flags are read from it
(``exit_request``), and it tells the lifecycle when the port is bound.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Generator

import uvicorn

from sglang_hathora.configuration import load_settings_or_exit
from sglang_hathora.engine.model_family import check_parser_names
from sglang_hathora.engine.service import EngineService, adopt_orphans
from sglang_hathora.engine.startup import StartupPhases
from sglang_hathora.gcp.auth import ServiceAccountKeyError
from sglang_hathora.gcp.regions import UnknownRegionError
from sglang_hathora.gcp.registration import NegRegistrar, RegistrationConfigError, plan_registration
from sglang_hathora.http.app import create_app
from sglang_hathora.http.protocol import protocol_with_timeout
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import configure_logging, logger
from sglang_hathora.openai.request_bounds import check_allowed_fields
from sglang_hathora.settings import Settings


class HathoraServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        super().__init__(config)

    # uvicorn polls these (every 0.1 s while serving, and in its drain loop): the lifecycle asks for
    # the exit once the detach is done, gracefully or at once (a second signal during the drain).
    @property
    def should_exit(self) -> bool:
        return self._should_exit or self.lifecycle.exit_request is not None

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value

    @property
    def force_exit(self) -> bool:
        return self._force_exit or self.lifecycle.exit_request is True

    @force_exit.setter
    def force_exit(self, value: bool) -> None:
        self._force_exit = value

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Called by uvicorn inside serve(), on the running loop: the lifecycle's handlers, not uvicorn's.
        self.lifecycle.take_signals()
        yield

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.lifecycle.startup.port_bound()


def build_server(
    settings: Settings, registrar: NegRegistrar | None = None, startup: StartupPhases | None = None
) -> HathoraServer:
    startup = startup or StartupPhases()
    lifecycle = Lifecycle(settings, EngineService(settings, startup), Metrics(), startup, registrar)
    config = uvicorn.Config(
        create_app(settings, lifecycle),
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
    return HathoraServer(config, lifecycle)


def main(settings: Settings | None = None) -> int:
    # SGLang's serving layer still returns FastAPI's deprecated ORJSONResponse; nothing for us to act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    startup = StartupPhases()
    settings = settings or load_settings_or_exit()
    configure_logging(settings)
    startup.advance("configuration")
    try:
        check_allowed_fields(settings.allowed_request_fields())
    except ValueError as exc:
        print(f"invalid configuration: ALLOW_REQUEST_FIELDS: {exc}", file=sys.stderr)
        return 2
    try:
        check_parser_names(settings.tool_call_parser, settings.reasoning_parser)
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
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
    adopt_orphans()
    try:
        server.run()
    finally:
        code = server.lifecycle.finish()
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
