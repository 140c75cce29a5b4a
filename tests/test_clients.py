"""The clients people point at an OpenAI-compatible server, pinned and each used as its own docs show,
against the real engine: pydantic-ai, the OpenAI Agents SDK and the openai 3.x SDK (tests/clients/
python_clients.py, in their own virtual environment), and Vercel's AI SDK (tests/clients/js, from its
lock file). Validating clients reject a body with a field of the wrong type, so these fail when a body
departs from OpenAI's spec in a way that matters to them. ``make clients`` installs both sides."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import PROJECT_DIR, ServerProcess

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

CLIENTS = PROJECT_DIR / "tests" / "clients"
CLIENTS_PYTHON = PROJECT_DIR / ".venv-clients" / "bin" / "python"
JS_MODULES = CLIENTS / "js" / "node_modules"


def run_clients(command: list[str], server: ServerProcess, needs: Path) -> dict[str, Any]:
    assert needs.exists(), f"{needs} is missing: run `make clients` (make test does)"
    env = {"SERVER_URL": server.base_url, "PATH": "/usr/local/bin:/usr/bin:/bin", "NO_PROXY": "127.0.0.1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=CLIENTS)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    failed = {name: result for name, result in results.items() if not result["ok"]}
    assert failed == {}, json.dumps(failed, indent=1)[-6000:]
    return results


@pytest.fixture(scope="module")
def python_results(server: ServerProcess) -> dict[str, Any]:
    return run_clients([str(CLIENTS_PYTHON), "python_clients.py"], server, CLIENTS_PYTHON)


@pytest.fixture(scope="module")
def js_results(server: ServerProcess) -> dict[str, Any]:
    return run_clients(["node", "js/ai_sdk.mjs"], server, JS_MODULES)


def test_pydantic_ai_plain_streamed_and_typed_output(python_results: dict[str, Any]) -> None:
    assert "Paris" in python_results["pydantic_ai_plain"]["output"]
    assert python_results["pydantic_ai_plain"]["usage"] > 0
    assert python_results["pydantic_ai_stream"]["output"] == python_results["pydantic_ai_plain"]["output"]
    typed = python_results["pydantic_ai_typed"]
    assert typed["type"] == "City" and set(typed["output"]) == {"city", "country"}, typed
    assert all(isinstance(value, str) for value in typed["output"].values())


def test_openai_agents_sdk_default_responses_model_and_a_required_function_tool(python_results) -> None:
    default = python_results["agents_default_model"]
    assert default["model"] == "OpenAIResponsesModel" and "Paris" in default["output"], default
    loop = python_results["agents_required_tool"]
    # The model called the tool, the SDK ran it and sent its output back, and the model answered.
    assert len(loop["calls"]) >= 1 and all(isinstance(city, str) for city in loop["calls"]), loop
    assert loop["items"][:2] == ["tool_call_item", "tool_call_output_item"], loop
    assert loop["items"][-1] == "message_output_item" and loop["output"], loop


def test_the_current_openai_sdk(python_results: dict[str, Any]) -> None:
    sdk = python_results["openai_sdk"]
    assert sdk["version"].startswith("3."), sdk
    assert "Paris" in sdk["chat"] and sdk["stream"] == sdk["chat"] and sdk["stream_usage"] > 0, sdk
    assert set(sdk["parsed"]) == {"city", "country"}, sdk  # .parse() validated the JSON into the model
    assert "Paris" in sdk["responses"], sdk
    # Chat, completion, response and every chunk of a stream, through the SDK's own pydantic types.
    assert python_results["openai_sdk_types"]["validated"] > 3


def test_vercel_ai_sdk_openai_compatible_and_openai_responses(js_results: dict[str, Any]) -> None:
    plain, streamed = js_results["generateText"], js_results["streamText"]
    assert "Paris" in plain["text"] and streamed["text"] == plain["text"], (plain, streamed)
    assert plain["finishReason"] == streamed["finishReason"] == "stop"
    assert plain["usage"]["outputTokens"] > 0 and streamed["usage"]["outputTokens"] > 0
    tool = js_results["requiredTool"]
    assert [call["name"] for call in tool["toolCalls"]] == ["get_weather"], tool
    assert isinstance(tool["toolCalls"][0]["input"]["city"], str) and tool["finishReason"] == "tool-calls"
    assert tool["toolResults"][0].startswith("Sunny"), tool  # the SDK ran the tool on the parsed input
    structured = js_results["structuredObject"]["object"]
    assert set(structured) == {"city", "country"}, structured
    for name in ("responsesGenerateText", "responsesStreamText"):
        assert "Paris" in js_results[name]["text"], js_results[name]
