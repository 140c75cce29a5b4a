"""The CPU image for real: ``make docker-cpu`` builds it, ``docker run`` serves the bundled model.

Skipped, with one line, only where no Docker engine answers. The container shares the host's
network (``--network host``) so that it listens on a free loopback port and reaches the fake
Compute API on 127.0.0.1, like every other test here; it is removed by name at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable

import httpx
import openai
import pytest

from tests import image_builds
from tests.fake_compute import FakeCompute
from tests.hathora_support import FQDN_ENDPOINT, registration_env, wait_for
from tests.server_process import free_port

IMAGE = "sglang-hathora:cpu"
STANDIN_BASE, STANDIN_IMAGE = "local/sglang-standin:v0.5.23", "sglang-hathora:standin"
BUILD_TIMEOUT = 1800  # cold, both images took about 11 min here (base image, wheelhouse, installs)
# A bound that catches hangs only: under .ci/run the containers run at the least CPU weight beside the
# engine lane (tests/run_order.py) and get only its idle CPU: one took 159 s for SGLang's import alone.
READY_TIMEOUT = 600
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(BUILD_TIMEOUT + 600),  # the first one may wait for the background build
]
NO_ENGINE = "no Docker engine answers `docker info` here"


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    """Skipped on a developer's machine without Docker; under CI (CI=true, as .ci/run is run) a failure:
    .ci/run installs and starts the engine, so a CI run with no container test run is a broken run."""
    if image_builds.docker_engine_answers():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{NO_ENGINE}, and CI=true: .ci/run starts dockerd (see /tmp/ci-dockerd.log)", pytrace=False)
    pytest.skip(NO_ENGINE)


# Both images are built in the background from the start of the session (tests/image_builds.py).
@pytest.fixture(scope="module")
def image() -> str:
    image_builds.wait(BUILD_TIMEOUT)
    return IMAGE


@pytest.fixture(scope="module")
def standin_image() -> str:
    image_builds.wait(BUILD_TIMEOUT)
    return STANDIN_IMAGE


class Container:
    def __init__(self, image: str, env: dict[str, str], extra: tuple[str, ...] = ()) -> None:
        self.name = f"sglang-hathora-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.env = {"HOST": "127.0.0.1", "PORT": str(self.port), "NO_PROXY": "127.0.0.1,localhost", **env}
        flags = [item for key, value in self.env.items() for item in ("-e", f"{key}={value}")]
        docker("run", "-d", "--name", self.name, "--network", "host", *flags, *extra, image)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < READY_TIMEOUT:
            assert self.state("{{.State.Running}}") == "true", self.logs()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=5).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in {READY_TIMEOUT} s:\n{self.logs()}")

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        """Hang-catching only, like READY_TIMEOUT: what follows the ready state runs starved too. The attach
        after ready passed a 60-s bound once there (CI run of c131377, the engine lane's greedy burst
        beside it): its first call imports google-cloud-compute, 1-6 CPU-seconds on its own."""
        try:
            wait_for(predicate, READY_TIMEOUT, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; running: {self.state('{{.State.Running}}')}\n{self.logs()}") from None

    def state(self, template: str) -> str:
        return docker("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


def serve_and_stop(container: Container) -> None:
    """Paris, a stream equal to it, the server as PID 1 with uid 10001, healthy, docker stop -> 0."""
    try:
        container.wait_ready()
        client = openai.OpenAI(base_url=f"{container.base_url}/v1", api_key="x", max_retries=0, timeout=120)
        answer = client.chat.completions.create(model="sglang", messages=QUESTION, temperature=0, max_tokens=8)
        text = answer.choices[0].message.content
        assert "Paris" in text, text
        stream = client.chat.completions.create(
            model="sglang", messages=QUESTION, temperature=0, max_tokens=8, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == text

        # PID 1 is the server itself, as uid 10001 (no shell, no init in between).
        command = docker("exec", container.name, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; id -u").stdout
        assert command.split("\n")[:2] == ["python3 serve_hathora.py ", "10001"], command
        container.wait_for(lambda: container.state("{{.State.Health.Status}}") == "healthy", "HEALTHCHECK healthy")

        stopped_at = time.monotonic()
        docker("stop", "-t", "30", container.name, timeout=60)
        assert time.monotonic() - stopped_at < 30  # within the grace period, not killed at its end
        assert container.state("{{.State.ExitCode}}") == "0", container.logs()
        assert "Exited with status 0" in container.logs()
    finally:
        container.remove()


def test_cpu_image_serves_as_pid_1_non_root_healthy_and_stops_with_0(image: str) -> None:
    serve_and_stop(Container(image, {}))


def system_packages(image: str) -> list[str]:
    """pip's list of the image's system Python (not our virtual environment)."""
    result = docker(
        "run", "--rm", "--entrypoint", "python3", "-e", "PATH=/usr/local/bin:/usr/bin:/bin", image,
        "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check",
    )  # fmt: skip
    return result.stdout.splitlines()


def test_hathora_image_on_the_standin_leaves_sglangs_packages_alone(standin_image: str) -> None:
    before, after = system_packages(STANDIN_BASE), system_packages(standin_image)
    assert "sglang==0.5.23" in before and after == before
    where = docker(
        "run", "--rm", "--entrypoint", "python3", standin_image, "-c",
        "import sys, importlib.util as u;"  # found, not imported: sglang's import needs the CPU fixes
        "print(sys.prefix, *(u.find_spec(m).origin for m in ('sglang', 'torch', 'pydantic_settings')))",
    ).stdout.split()  # fmt: skip
    prefix, sglang_at, torch_at, ours_at = where
    assert prefix == "/opt/hathora" and ours_at.startswith("/opt/hathora/"), where
    assert not sglang_at.startswith("/opt/hathora/") and not torch_at.startswith("/opt/hathora/"), where


def test_hathora_image_on_the_standin_serves_its_baked_model_as_pid_1_non_root_and_stops_with_0(
    standin_image: str,
) -> None:
    # No volume, no MODEL_PATH: the image's own weights (baked at build time, Dockerfile.hathora).
    serve_and_stop(Container(standin_image, {}))


# Asked from inside the container: with --network none nothing outside it, this test included, can reach it.
ASK_INSIDE = """
import json, os, time, urllib.request
base = "http://127.0.0.1:" + os.environ.get("PORT", "8000")
deadline = time.monotonic() + float(os.environ["READY_TIMEOUT"])
while True:
    try:
        urllib.request.urlopen(base + "/health", timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(1)
models = json.load(urllib.request.urlopen(base + "/v1/models", timeout=30))
question = json.loads(os.environ["QUESTION"])
body = json.dumps({"model": "sglang", "messages": question, "temperature": 0, "max_tokens": 8})
request = urllib.request.Request(base + "/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=120))
print(json.dumps({"models": [m["id"] for m in models["data"]], "text": answer["choices"][0]["message"]["content"]}))
"""


def test_hathora_image_serves_under_network_none_with_no_hub_and_no_token_inside(standin_image: str) -> None:
    name, secret = f"sglang-hathora-test-{uuid.uuid4().hex[:8]}", image_builds.BUILD_SECRET
    docker("run", "-d", "--name", name, "--network", "none", standin_image)
    try:
        result = docker(
            "exec", "-e", f"READY_TIMEOUT={READY_TIMEOUT}", "-e", f"QUESTION={json.dumps(QUESTION)}",
            name, "python3", "-c", ASK_INSIDE, timeout=READY_TIMEOUT + 180, check=False,
        )  # fmt: skip
        logs = docker("logs", name, check=False)
        assert result.returncode == 0, (result.stderr + logs.stdout + logs.stderr)[-4000:]
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["models"][0] == "SmolLM2-135M-Instruct", seen
        assert "Paris" in seen["text"], seen
        environment = docker("exec", name, "env").stdout.splitlines()
        assert {"MODEL_PATH=/app/model", "HF_HUB_OFFLINE=1"} <= set(environment), environment
        # The build was given a token (a BuildKit secret) and saw it; it is in no file the step that had
        # it could write (the weights' folder, the home and temporary folders, /etc) and in no history line.
        # Not `docker save | grep` over all 4.2 GB: once, while it streamed, a scheduler of the engine
        # lane beside it made no progress for 93 s (page-cache eviction is the likely cause, not proven).
        assert "token given: yes" in docker("exec", name, "cat", "/app/model/.baked").stdout
        places = ["/app", "/root", "/home", "/tmp", "/etc", "/opt/hathora/bin"]
        # As root: the image's user may not read /root or /etc/shadow (grep exits 2 on those, CI run of 00a5188).
        found = docker("exec", "-u", "0", name, "grep", "-rlF", "-D", "skip", secret, *places, check=False, timeout=300)
        assert found.returncode == 1 and not found.stdout, found  # grep: 1 = nothing found, 0 = found, 2 = error
    finally:
        docker("rm", "-f", name, check=False)
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", standin_image).stdout
    assert "bake_model.py" in history and secret not in history
    assert secret not in docker("inspect", standin_image).stdout


def test_cpu_image_attaches_after_ready_and_detaches_on_docker_stop(
    image: str, fake_compute: FakeCompute, service_account
) -> None:
    scope, neg = "regions/us-west1", "llm-serve-us-west1"
    fake_compute.create_neg(scope, neg)
    container = Container(image, registration_env(fake_compute, service_account))
    try:
        container.wait_ready()
        container.wait_for(lambda: fake_compute.endpoints(scope, neg) == [FQDN_ENDPOINT], "attached")
        docker("stop", "-t", "30", container.name, timeout=60)
        assert fake_compute.endpoints(scope, neg) == []  # detached before the process ended
        assert fake_compute.calls_of("detach")
        assert container.state("{{.State.ExitCode}}") == "0", container.logs()
    finally:
        container.remove()


def test_cpu_image_with_a_bad_port_exits_2_with_one_line(image: str) -> None:
    result = docker("run", "--rm", "-e", "PORT=abc", image, check=False, timeout=120)
    assert result.returncode == 2, result
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "PORT" in lines[0], lines
