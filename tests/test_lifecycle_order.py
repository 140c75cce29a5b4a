"""The lifecycle's order of life, fast: a fake engine (tests/fake_engine.py), the real NegRegistrar
with the real google-cloud-compute client against the fake Compute API over HTTP, no HTTP server.
The real-engine versions of these are in test_lifecycle_stop.py and test_hathora_lifecycle.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from sglang_hathora.engine.startup import StartupPhases
from sglang_hathora.gcp.registration import NegRegistrar, plan_registration
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.lifecycle.state import TRANSITIONS, State, StateMachine
from sglang_hathora.metrics import Metrics
from sglang_hathora.settings import Settings
from tests.fake_compute import FakeCompute, encode_key
from tests.fake_engine import FakeEngine, FakeServing
from tests.hathora_support import FQDN_ENDPOINT, HOSTNAME, PUBLIC_PORT

SCOPE, NEG = "regions/us-west1", "llm-serve-us-west1"


def make_lifecycle(engine: FakeEngine, fake: FakeCompute | None = None, service_account=None, **extra) -> Lifecycle:
    values = {"log_file": None, "hathora_region": "Seattle", "drain_timeout": 2, **extra}
    if fake is not None:
        values.update(
            hathora_hostname=HOSTNAME,
            hathora_default_port=PUBLIC_PORT,
            gcp_service_account_key_base64=encode_key(service_account[0]),
            gcp_api_endpoint=fake.url,
        )
    settings = Settings(**values)
    plan = plan_registration(settings)
    registrar = NegRegistrar(plan, settings) if plan else None
    startup = StartupPhases()
    return Lifecycle(settings, engine, Metrics(), startup, registrar, make_serving=lambda _adapter: FakeServing())


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_transitions_allow_only_the_order_of_life() -> None:
    machine = StateMachine()
    assert not machine.to(State.DRAINING)  # no drain before a detach
    assert machine.to(State.READY) and machine.to(State.DETACHING) and machine.to(State.DRAINING)
    assert not machine.to(State.READY)  # a stop is never undone
    assert machine.to(State.STALLED) and not machine.to(State.FAILED) and machine.to(State.STOPPED)
    assert TRANSITIONS[State.STOPPED] == frozenset()
    assert all(State.STOPPED in TRANSITIONS[state] for state in State if state is not State.STOPPED)


def test_ready_then_attached_then_a_stop_detaches_before_the_exit_and_the_engine_last(
    fake_compute: FakeCompute, service_account
) -> None:
    fake_compute.create_neg(SCOPE, NEG)
    engine = FakeEngine(load_seconds=0.2)
    lifecycle = make_lifecycle(engine, fake_compute, service_account)

    async def run() -> None:
        async with lifecycle:
            assert lifecycle.state is State.LOADING and not lifecycle.serving_requests
            await until(lambda: lifecycle.ready)
            await until(lambda: fake_compute.endpoints(SCOPE, NEG) == [FQDN_ENDPOINT])
            lifecycle.begin_stop("SIGTERM")
            assert lifecycle.state is State.DETACHING and lifecycle.serving_requests  # still served meanwhile
            await until(lambda: lifecycle.exit_request is not None)
            assert lifecycle.exit_request is False  # graceful: the drain runs
            assert lifecycle.state is State.DRAINING and not lifecycle.serving_requests
            assert fake_compute.endpoints(SCOPE, NEG) == []  # detached before the server was asked to exit
        assert lifecycle.state is State.STOPPED and lifecycle.exit_code == 0

    asyncio.run(run())
    detached_at = fake_compute.calls_of("detach")[-1].at
    shutdown_at = dict(engine.events)["shutdown"]
    assert detached_at < shutdown_at


def test_a_stop_during_the_load_ends_it_and_exits_0() -> None:
    engine = FakeEngine(load_seconds=60)  # waited for, the load would hold the stop a minute
    lifecycle = make_lifecycle(engine)

    async def run() -> None:
        async with lifecycle:
            await asyncio.sleep(0.1)
            lifecycle.begin_stop("SIGTERM")
            assert lifecycle.state is State.DETACHING and engine.load_cancelled == "SIGTERM"
            await until(lambda: lifecycle.exit_request is not None)

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 20  # ended, not awaited: a generous bound far below the load's 60 s
    assert lifecycle.exit_code == 0 and lifecycle.state is State.STOPPED


def test_a_failed_load_shows_failed_and_exits_1() -> None:
    lifecycle = make_lifecycle(FakeEngine(fails="no such model"))

    async def run() -> None:
        async with lifecycle:
            await until(lambda: lifecycle.exit_request is not None)
            assert lifecycle.state is State.FAILED

    asyncio.run(run())
    assert lifecycle.exit_code == 1


@pytest.mark.parametrize("fault", ["died", "stalled"])
def test_an_engine_fault_detaches_and_exits_1_at_once(fault: str, fake_compute: FakeCompute, service_account) -> None:
    fake_compute.create_neg(SCOPE, NEG)
    engine = FakeEngine()
    lifecycle = make_lifecycle(engine, fake_compute, service_account)

    async def run() -> None:
        async with lifecycle:
            await until(lambda: fake_compute.endpoints(SCOPE, NEG) == [FQDN_ENDPOINT])
            if fault == "died":
                lifecycle.engine_died()
            else:
                lifecycle.engine_stalled("no output for 9 s with 1 pending")
            assert lifecycle.state is (State.FAILED if fault == "died" else State.STALLED)
            await until(lambda: lifecycle.exit_request is not None)
            assert lifecycle.exit_request is True  # no drain: the engine cannot finish anything
            assert fake_compute.endpoints(SCOPE, NEG) == []
            assert lifecycle.state is not State.DRAINING  # /health keeps saying why

    asyncio.run(run())
    assert lifecycle.exit_code == 1


def test_time_the_process_did_not_run_is_not_the_engines_silence() -> None:
    """A blocked event loop stands for a frozen process (SIGSTOP, a paused container): for 4.5 s, more
    than twice the stall timeout, nothing of this process runs, SGLang's outputs included. The engine
    answers once the loop runs again: no stall (counted: the 0.5 s before, at most two 0.4-s intervals
    for the freeze, the moment after; margins for a loaded machine). Silence while the loop runs is
    still one."""
    engine = FakeEngine()
    lifecycle = make_lifecycle(engine, engine_stall_timeout=2.0, engine_canary_interval=0)

    async def run() -> None:
        async with lifecycle:
            await until(lambda: lifecycle.ready)
            engine.adapter.pending_rids.append("a-request")
            await asyncio.sleep(0.5)  # the watchdog has seen the request
            time.sleep(4.5)  # the whole process stopped
            await asyncio.sleep(0.05)  # resumed: the engine's next output arrives
            engine.adapter.last_output_stamp = time.time()
            await asyncio.sleep(0.5)
            assert lifecycle.state is State.READY
            await until(lambda: lifecycle.state is State.STALLED, timeout=10)  # and now it stays silent

    asyncio.run(run())
    assert lifecycle.exit_code == 1


def test_the_watchdog_stalls_a_wedged_engine_while_idle() -> None:
    engine = FakeEngine()
    lifecycle = make_lifecycle(engine, engine_stall_timeout=0.5, engine_canary_interval=0.2)

    async def run() -> None:
        async with lifecycle:
            await until(lambda: lifecycle.ready)
            engine.adapter.answers = False  # the next canary never comes back
            await until(lambda: lifecycle.state is State.STALLED, timeout=5)
            await until(lambda: lifecycle.exit_request is not None)

    asyncio.run(run())
    assert lifecycle.exit_code == 1
