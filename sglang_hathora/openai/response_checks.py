"""Where the Responses API's own fields get their bounds (the rules that use them are in
request_bounds.py, ``RESPONSES_RULES``): ``input`` items, ``tools``, ``text.format``, ``metadata``.

``input`` is a string or a list of items of some thirty types. What can reach the engine from it is
text, and images or files by URL or data, which SGLang would fetch and decode for a multimodal model
(a fetch from a server facing the internet: refused here, as the served models read text). Texts are
collected for the context check (``response_texts``) the same way chat messages are.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sglang_hathora.openai.bound_checks import MAX_TOOLS, TOOL_NAME, schema_problem
from sglang_hathora.openai.bound_kinds import Limits, Problem

MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512  # OpenAI's documented limits
# Content a model would have to fetch or decode: not text.
_NOT_TEXT = frozenset({"input_image", "input_file", "input_audio", "image_url", "image", "file", "audio"})
_TEXT_KEYS = ("text", "content", "output", "arguments", "instructions")


def plain(value: Any) -> Any:
    """Pydantic models (SGLang's and the openai SDK's item types) as plain JSON-like values."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def check_input(name: str, value: Any, limits: Limits) -> Problem | None:
    if isinstance(value, str):
        return None if value else Problem(name, f"'{name}' is empty.")
    if not value:
        return Problem(name, f"'{name}' holds no items.")
    if len(value) > limits.context_length:
        return Problem(
            name,
            f"'{name}' holds {len(value)} items; the context holds {limits.context_length} tokens.",
            "context_length_exceeded",
        )
    for index, item in enumerate(plain(value)):
        if where := _not_text(item, f"{name}.{index}"):
            message = f"'{where}' is not text: this server's models read text only."
            return Problem(where, message, "unsupported_parameter")
    return None


def _not_text(node: Any, where: str) -> str | None:
    if isinstance(node, dict):
        if node.get("type") in _NOT_TEXT or {"image_url", "file_data", "file_url", "file_id"} & node.keys():
            return where
        for key, item in node.items():
            if found := _not_text(item, f"{where}.{key}"):
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if found := _not_text(item, f"{where}.{index}"):
                return found
    return None


def response_texts(request: Any) -> list[str]:
    """Every text of a Responses request that becomes prompt tokens (instructions and input)."""
    texts = [request.instructions] if request.instructions else []
    _collect_texts(plain(request.input), texts)
    return texts


def _collect_texts(node: Any, into: list[str]) -> None:
    if isinstance(node, str):
        into.append(node)
    elif isinstance(node, list):
        for item in node:
            _collect_texts(item, into)
    elif isinstance(node, dict):
        for key in _TEXT_KEYS:
            if key in node:
                _collect_texts(node[key], into)


def check_tools(name: str, value: Any, limits: Limits) -> Problem | None:
    if len(value) > MAX_TOOLS:
        return Problem(name, f"'{name}' holds {len(value)} tools; at most {MAX_TOOLS}.")
    for index, tool in enumerate(value):
        if tool.type not in ("function", "custom"):
            return Problem(
                f"{name}.{index}.type",
                f"Tool type {tool.type!r} is not supported on this server; use function tools.",
                "unsupported_parameter",
            )
        if not TOOL_NAME.match(tool.name or ""):
            return Problem(f"{name}.{index}.name", "Function names are 1-64 characters: letters, digits, _ and -.")
        if tool.parameters is not None and (
            problem := schema_problem(f"{name}.{index}.parameters", tool.parameters, limits)
        ):
            return problem
    return None


def check_text_config(name: str, value: Any, limits: Limits) -> Problem | None:
    form = value.format
    if form is not None and form.type == "json_schema":
        return schema_problem(f"{name}.format.schema", form.schema_, limits)
    return None


def check_metadata(name: str, value: Any, limits: Limits) -> Problem | None:
    if len(value) > MAX_METADATA_PAIRS:
        return Problem(name, f"'{name}' holds {len(value)} pairs; at most {MAX_METADATA_PAIRS}.")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            return Problem(name, f"'{name}' keys are at most {MAX_METADATA_KEY} characters.")
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE:
            return Problem(f"{name}.{key}", f"'{name}' values are strings of at most {MAX_METADATA_VALUE} characters.")
    return None
