"""Python clients against the server, each used as its own docs show: pydantic-ai (it re-validates every
body with the openai SDK's types), the OpenAI Agents SDK (its default Responses model and a function
tool), and the current openai SDK. It runs in its own virtual environment (.venv-clients, from
requirements/clients-lock.txt), apart from the server's; tests/test_clients.py runs it with SERVER_URL
set and reads the one JSON line it prints: each case, ok with what it returned, or the error it raised.
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel

BASE_URL = os.environ["SERVER_URL"] + "/v1"
API_KEY = os.environ.get("API_KEY", "unused")
QUESTION = "What is the capital of France?"


class City(BaseModel):
    city: str
    country: str


def pydantic_ai_agent(output_type: Any = str, max_tokens: int = 40) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("sglang", provider=OpenAIProvider(base_url=BASE_URL, api_key=API_KEY))
    return Agent(model, output_type=output_type, model_settings={"temperature": 0, "max_tokens": max_tokens})


async def pydantic_ai_plain() -> dict[str, Any]:
    result = await pydantic_ai_agent().run(QUESTION)
    return {"output": result.output, "usage": result.usage.output_tokens}


async def pydantic_ai_typed() -> dict[str, Any]:
    # The output tool's arguments: a small model can ramble inside a JSON string, so a larger budget.
    result = await pydantic_ai_agent(City, max_tokens=200).run("Name the capital of France and its country.")
    return {"output": result.output.model_dump(), "type": type(result.output).__name__}


async def pydantic_ai_stream() -> dict[str, Any]:
    async with pydantic_ai_agent().run_stream(QUESTION) as result:
        text = "".join([delta async for delta in result.stream_text(delta=True)])
    return {"output": text}


def agents_setup() -> None:
    from agents import set_default_openai_client, set_tracing_disabled
    from openai import AsyncOpenAI

    set_default_openai_client(AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY), use_for_tracing=False)
    set_tracing_disabled(True)


async def agents_default_model() -> dict[str, Any]:
    from agents import Agent, ModelSettings, Runner
    from agents.models.openai_provider import OpenAIProvider

    agents_setup()
    agent = Agent(name="geographer", instructions="Answer in one sentence.", model="sglang",
                  model_settings=ModelSettings(temperature=0, max_tokens=24))  # fmt: skip
    result = await Runner.run(agent, QUESTION)
    # The model class the Runner picks for a model name: the Responses API by default.
    return {"output": result.final_output, "model": type(OpenAIProvider().get_model("sglang")).__name__}


async def agents_required_tool() -> dict[str, Any]:
    from agents import Agent, ModelSettings, Runner, function_tool

    agents_setup()
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny, 21 C in {city}."

    agent = Agent(
        name="forecaster",
        instructions="Use the tool, then answer.",
        model="sglang",
        tools=[get_weather],
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=40),
    )
    result = await Runner.run(agent, "What is the weather in Paris?", max_turns=4)
    kinds = [item.type for item in result.new_items]
    return {"calls": calls, "items": kinds, "output": result.final_output}


async def openai_sdk() -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    plain = await client.chat.completions.create(model="sglang", messages=messages, temperature=0, max_tokens=12)
    chunks = [
        chunk
        async for chunk in await client.chat.completions.create(
            model="sglang", messages=messages, temperature=0, max_tokens=12, stream=True,
            stream_options={"include_usage": True},
        )
    ]  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    parsed = await client.chat.completions.parse(
        model="sglang", messages=[{"role": "user", "content": "Name the capital of France and its country."}],
        response_format=City, temperature=0, max_tokens=40,
    )  # fmt: skip
    response = await client.responses.create(model="sglang", input=QUESTION, temperature=0, max_output_tokens=12)
    return {
        "version": version("openai"),
        "chat": plain.choices[0].message.content,
        "stream": streamed,
        "stream_usage": chunks[-1].usage.completion_tokens if chunks[-1].usage else None,
        "parsed": parsed.choices[0].message.parsed.model_dump(),
        "responses": response.output_text,
    }


async def openai_sdk_types() -> dict[str, Any]:
    """Every body re-validated with the SDK's own pydantic types, as validating clients do
    (pydantic-ai before its lenient copy of ChatCompletion; the SDK itself only constructs)."""
    from openai import AsyncOpenAI
    from openai.types import Completion
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response

    client = AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    chat = await client.chat.completions.with_raw_response.create(
        model="sglang", messages=messages, max_tokens=8, logprobs=True, top_logprobs=2
    )
    ChatCompletion.model_validate(chat.http_response.json())
    completion = await client.completions.with_raw_response.create(model="sglang", prompt="Paris is", max_tokens=4)
    Completion.model_validate(completion.http_response.json())
    response = await client.responses.with_raw_response.create(model="sglang", input=QUESTION, max_output_tokens=8)
    Response.model_validate(response.http_response.json())
    stream = await client.chat.completions.create(
        model="sglang", messages=messages, max_tokens=8, stream=True, logprobs=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = [ChatCompletionChunk.model_validate(chunk.to_dict()) async for chunk in stream]
    return {"validated": 3 + len(chunks)}


CASES: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "pydantic_ai_plain": pydantic_ai_plain,
    "pydantic_ai_typed": pydantic_ai_typed,
    "pydantic_ai_stream": pydantic_ai_stream,
    "agents_default_model": agents_default_model,
    "agents_required_tool": agents_required_tool,
    "openai_sdk": openai_sdk,
    "openai_sdk_types": openai_sdk_types,
}


async def main() -> None:
    results: dict[str, Any] = {}
    for name, case in CASES.items():
        try:
            results[name] = {"ok": True, **(await case())}
        except Exception as exc:  # noqa: BLE001 - every failure is reported, with its type and text
            error = f"{type(exc).__name__}: {exc}"
            results[name] = {"ok": False, "error": error, "trace": traceback.format_exc()[-3000:]}
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
