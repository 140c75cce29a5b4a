"""Joining and leaving the GCP load balancer, end to end: a real ``python serve_hathora.py``
(real SGLang engine) with the REAL google-cloud-compute client, pointed at the fake Compute API."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass, field

import httpx
import openai
import pytest

from tests.fake_compute import FakeCompute, encode_key
from tests.hathora_support import (
    FQDN_ENDPOINT,
    PUBLIC_PORT,
    assert_no_orphans,
    health,
    registration_env,
    wait_for,
)
from tests.server_process import ServerProcess, ready_server

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]
DETACH_LATENCY = 0.5  # seconds the fake Compute API holds each detach in the first test


@dataclass
class Stream:
    """A streaming chat request running in a thread, as a client would see it."""

    base_url: str
    max_tokens: int
    first_chunk: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    finish_reason: str | None = None
    error: BaseException | None = None
    ended_at: float | None = None

    def start(self) -> Stream:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        client = openai.OpenAI(base_url=f"{self.base_url}/v1", api_key="x", max_retries=0, timeout=120)
        try:
            for chunk in client.chat.completions.create(
                model="sglang",
                messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
                max_tokens=self.max_tokens,
                temperature=0,
                stream=True,
                extra_body={"ignore_eos": True},
            ):
                if chunk.choices:
                    self.text += chunk.choices[0].delta.content or ""
                    self.finish_reason = chunk.choices[0].finish_reason or self.finish_reason
                    self.first_chunk.set()
        except BaseException as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.first_chunk.set()


def test_regional_two_negs_attach_after_ready_retry_503_and_detach_before_drain(
    fake_compute: FakeCompute, service_account, tmp_path
) -> None:
    scope = "regions/us-west1"
    for name in ("llm-serve-us-west1", "llm-serve-us-west1-b"):
        fake_compute.create_neg(scope, name)
    fake_compute.fail("attach", 503, times=2)
    fake_compute.latency["detach"] = 0.3  # room to see /health answer 503 while detaching
    env = registration_env(
        fake_compute, service_account, NEG_NAMES="llm-serve-{region},llm-serve-{region}-b", DRAIN_TIMEOUT="60"
    )
    with ready_server(tmp_path, **env) as server:
        loading_bodies = [body for code, body in server.health_codes if code == 503]
        assert loading_bodies and all(body["registration"]["state"] == "pending" for body in loading_bodies)
        wait_for(
            lambda: all(fake_compute.endpoints(scope, n) for n in ("llm-serve-us-west1", "llm-serve-us-west1-b")),
            30,
            "both NEGs attached",
        )
        # Nothing was registered while the engine was loading: the first call came after /health turned 200.
        assert min(call.at for call in fake_compute.calls) > server.last_unready_at
        for name in ("llm-serve-us-west1", "llm-serve-us-west1-b"):
            assert fake_compute.endpoints(scope, name) == [FQDN_ENDPOINT]  # attached once
        attaches = fake_compute.calls_of("attach")
        assert len(attaches) == 4  # 503, 503, success on the first NEG; success on the second
        assert len({call.query["requestId"][0] for call in attaches[:3]}) == 1  # one requestId across retries
        wait_for(lambda: health(server).json()["registration"]["state"] == "attached", 10, "attached in /health")
        assert fake_compute.rejected_auth == 0

        stream = Stream(server.base_url, max_tokens=200).start()  # outlasts the detach (about 4 s)
        assert stream.first_chunk.wait(60)
        children = server.descendants()
        # Each detach is held DETACH_LATENCY: one after the other, they would arrive that far apart or more.
        fake_compute.latency["detach"] = DETACH_LATENCY
        sigterm_at = time.monotonic()
        server.signal(signal.SIGTERM)
        during = health(server)
        assert during.status_code == 503 and during.json()["engine_status"] in ("detaching", "draining")
        detached_at = wait_for(
            lambda: not any(fake_compute.endpoints(scope, n) for n in ("llm-serve-us-west1", "llm-serve-us-west1-b")),
            10,
            "both NEGs detached",
        )
        assert detached_at - sigterm_at < 2.0
        assert server.wait(timeout=120) == 0
        # The stream in flight at SIGTERM completed normally, after the detach.
        assert stream.error is None and stream.finish_reason == "length"
        assert stream.ended_at > detached_at
        detaches = [call for call in fake_compute.arrived if call.verb == "detach"]
        assert {call.neg for call in detaches} == {"llm-serve-us-west1", "llm-serve-us-west1-b"}
        # In parallel: the second arrived while the first was still held.
        assert max(call.at for call in detaches) - min(call.at for call in detaches) < DETACH_LATENCY
        assert_no_orphans(children)
    log = server.log_file.read_text()
    assert "NEG detach done" in log and "Exited with status 0" in log


def test_global_already_attached_and_second_sigterm_ends_the_drain(
    fake_compute: FakeCompute, service_account, tmp_path
) -> None:
    fake_compute.create_neg("global", "llm-serve-us-west1", [FQDN_ENDPOINT])  # left by a crashed run
    env = registration_env(fake_compute, service_account, NEG_MODE="global", DRAIN_TIMEOUT="120")
    with ready_server(tmp_path, **env) as server:
        wait_for(lambda: health(server).json()["registration"]["state"] == "attached", 30, "attached")
        assert min(call.at for call in fake_compute.calls) > server.last_unready_at  # only once ready
        assert fake_compute.calls_of("attach") == []  # listed first: already there, nothing to do
        assert fake_compute.endpoints("global", "llm-serve-us-west1") == [FQDN_ENDPOINT]

        stream = Stream(server.base_url, max_tokens=1000).start()  # about a minute on 2 cores
        assert stream.first_chunk.wait(60)
        children = server.descendants()
        sigterm_at = time.monotonic()
        server.signal(signal.SIGTERM)
        detached_at = wait_for(lambda: not fake_compute.endpoints("global", "llm-serve-us-west1"), 10, "detached")
        assert detached_at - sigterm_at < 2.0
        time.sleep(1.0)
        assert server.proc.poll() is None  # draining: the stream is still running
        second_at = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert time.monotonic() - second_at < 15
        assert_no_orphans(children)
    assert "second SIGTERM: ending the drain now" in server.log_file.read_text()


def test_zonal_api_down_keeps_serving_then_attaches_and_sigterm_detaches(
    fake_compute: FakeCompute, service_account, tmp_path
) -> None:
    # The zonal (GCE_VM_IP_PORT) form: HATHORA_HOSTNAME resolves to the instance's external IP.
    fake_compute.instances = {
        "us-west1-b": [{"name": "gpu-vm-7", "networkInterfaces": [{"accessConfigs": [{"natIP": "127.0.0.1"}]}]}]
    }
    fake_compute.create_neg("zones/us-west1-b", "llm-serve-us-west1-b")
    fake_compute.down = True
    env = registration_env(fake_compute, service_account, NEG_MODE="zonal", HATHORA_HOSTNAME="localhost")
    with ready_server(tmp_path, **env) as server:
        # The first pass retries the instance lookup for up to its 30 s budget before it reports
        # "retrying" (a 30 s wait here lost that race by 0.3 s in one CI run).
        wait_for(lambda: health(server).json()["registration"]["state"] == "retrying", 90, "retrying")
        body = health(server).json()
        # /health is public: the error's class, never GCP's text (project, NEG names); that goes to the log.
        assert body["status"] == "ok" and body["registration"]["error"] == "ServiceUnavailable"
        assert "llm-serve" not in json.dumps(body) and "503" in server.log_file.read_text()
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
        answer = client.chat.completions.create(
            model="sglang",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            temperature=0,
            max_tokens=20,
        )
        assert "Paris" in answer.choices[0].message.content  # serving while the API is down

        fake_compute.down = False
        wait_for(lambda: fake_compute.endpoints("zones/us-west1-b", "llm-serve-us-west1-b"), 60, "attached")
        assert fake_compute.endpoints("zones/us-west1-b", "llm-serve-us-west1-b") == [
            {"instance": "gpu-vm-7", "port": PUBLIC_PORT}
        ]
        wait_for(lambda: health(server).json()["registration"]["state"] == "attached", 10, "attached in /health")
        assert min(call.at for call in fake_compute.calls) > server.last_unready_at  # only once ready

        children = server.descendants()
        sigterm_at = time.monotonic()
        server.signal(signal.SIGTERM)
        detached_at = wait_for(
            lambda: not fake_compute.endpoints("zones/us-west1-b", "llm-serve-us-west1-b"), 10, "detached"
        )
        assert detached_at - sigterm_at < 2.0
        assert server.wait(timeout=60) == 0
        assert_no_orphans(children)


def test_engine_death_still_detaches_then_exits_non_zero(fake_compute: FakeCompute, service_account, tmp_path) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    env = registration_env(fake_compute, service_account)
    with ready_server(tmp_path, **env) as server:
        wait_for(lambda: fake_compute.endpoints("regions/us-west1", "llm-serve-us-west1"), 30, "attached")
        # Serve a request first: SGLang re-arms its own signal handlers on requests, not only at warm-up.
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
        client.chat.completions.create(model="sglang", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        # A plain and a streamed request in flight when the engine dies: each gets OpenAI's error shape.
        body = {"model": "sglang", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2000}
        answers: dict[str, object] = {}
        plain = threading.Thread(
            target=lambda: answers.update(
                plain=httpx.post(
                    f"{server.base_url}/v1/chat/completions", json={**body, "ignore_eos": True}, timeout=60
                )
            )
        )
        plain.start()
        stream = client.chat.completions.create(**body, stream=True, extra_body={"ignore_eos": True})
        next(iter(stream))
        wait_for(
            lambda: "sglang_hathora_engine_requests 2.0" in httpx.get(f"{server.base_url}/metrics").text,
            30,
            "two requests in the engine",
        )
        children = server.descendants()
        scheduler = next(c for c in children if "sglang::schedul" in " ".join(c.cmdline()) + c.name())
        scheduler.kill()  # SGLang's watchdog notices within about a second and signals SIGQUIT
        with pytest.raises(openai.APIError) as raised:
            for _chunk in stream:
                pass
        assert "engine failed" in str(raised.value)
        plain.join(timeout=60)
        assert answers["plain"].status_code == 503
        assert answers["plain"].json()["error"]["code"] == "engine_failed"
        assert server.wait(timeout=60) == 1
        assert fake_compute.endpoints("regions/us-west1", "llm-serve-us-west1") == []
        assert_no_orphans(children)
    assert "An engine process died" in server.log_file.read_text()


def test_required_registration_that_keeps_failing_exits_non_zero(
    fake_compute: FakeCompute, service_account, tmp_path
) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    fake_compute.down = True
    env = registration_env(fake_compute, service_account, NEG_REGISTRATION_REQUIRED="true", NEG_ATTACH_DEADLINE="3")
    with ready_server(tmp_path, **env) as server:
        assert server.wait(timeout=120) == 1
    assert "NEG_REGISTRATION_REQUIRED is set: exiting" in server.log_file.read_text()


@pytest.mark.parametrize(
    "bad_key", ["bm90LWEta2V5LXNlY3JldG1hdGVyaWFs", "{secretmaterial}", encode_key({"type": "secretmaterial"})]
)
def test_bad_key_stops_at_start_without_printing_it(fake_compute: FakeCompute, service_account, tmp_path, bad_key):
    env = registration_env(fake_compute, service_account, GCP_SERVICE_ACCOUNT_KEY_BASE64=bad_key)
    server = ServerProcess(log_file=tmp_path / "serve.log", extra_env=env).start()
    try:
        assert server.wait(timeout=60) == 2
    finally:
        server.stop()
    output = server.output() + (server.log_file.read_text() if server.log_file.exists() else "")
    assert "invalid configuration: " in output
    assert bad_key not in output and "secretmaterial" not in output and "bm90LWEta2V5" not in output
    assert "Traceback" not in output
    assert fake_compute.calls == []
