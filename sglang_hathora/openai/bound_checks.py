"""Checks of the fields whose bound is more than a range: token ids against the vocabulary, stop
sequences, logit_bias, grammars and JSON schemas against the context length, tools, free-form JSON.

Counted repetitions in a grammar ({n,m}, minLength, maxItems...) above the context length can never
be produced by a generation, and a grammar backend may expand them; they are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from sglang_hathora.openai.bound_kinds import Limits, Problem

MAX_STOP = 4  # OpenAI: "Up to 4 sequences"
MAX_STOP_CHARS = 1024
MAX_STOP_TOKEN_IDS = 64
MAX_LOGIT_BIAS = 1024
MAX_TOOLS = 128  # OpenAI: "A max of 128 functions are supported"
MAX_GRAMMAR_BYTES = 64 * 1024
MAX_SMALL_JSON_BYTES = 4096
MAX_TEXT_CHARS = 512
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # OpenAI: a-z, A-Z, 0-9, _ and -, at most 64
# Counted repetitions in a grammar ({n,m}, minLength, maxItems...) above the context length cannot
# be produced by any generation, and a grammar backend may expand them: refused.
_REPEAT = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")
_SCHEMA_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains")


def _token_ids(name: str, ids: list[int], limits: Limits, max_count: int, min_count: int = 0) -> Problem | None:
    if len(ids) < min_count:
        return Problem(name, f"'{name}' must hold at least {min_count} token id(s).")
    if len(ids) > max_count:
        return Problem(name, f"'{name}' holds {len(ids)} token ids; at most {max_count}.")
    for index, token in enumerate(ids):
        if not 0 <= token < limits.vocab_size:
            return Problem(
                f"{name}.{index}",
                f"Token id {token} in '{name}' is outside this model's vocabulary [0, {limits.vocab_size}).",
            )
    return None


def check_token_list(name: str, value: Any, limits: Limits) -> Problem | None:
    return _token_ids(name, value, limits, limits.context_length, min_count=1)


def check_stop_ids(name: str, value: Any, limits: Limits) -> Problem | None:
    return _token_ids(name, value, limits, MAX_STOP_TOKEN_IDS)


def check_stop(name: str, value: Any, limits: Limits) -> Problem | None:
    stops = [value] if isinstance(value, str) else value
    if len(stops) > MAX_STOP:
        return Problem(name, f"'{name}' holds {len(stops)} sequences; at most {MAX_STOP}.")
    for index, stop in enumerate(stops):
        if len(stop) > MAX_STOP_CHARS:
            return Problem(
                f"{name}.{index}" if not isinstance(value, str) else name,
                f"A stop sequence is {len(stop)} characters; at most {MAX_STOP_CHARS}.",
            )
    return None


def check_logit_bias(name: str, value: Any, limits: Limits) -> Problem | None:
    if len(value) > MAX_LOGIT_BIAS:
        return Problem(name, f"'{name}' has {len(value)} entries; at most {MAX_LOGIT_BIAS}.")
    for key, bias in value.items():
        if not key.strip().lstrip("-").isdigit() or not 0 <= int(key) < limits.vocab_size:
            return Problem(
                f"{name}.{key}", f"'{name}' keys must be token ids in [0, {limits.vocab_size}); got {key!r}."
            )
        if not (math.isfinite(bias) and -100 <= bias <= 100):
            return Problem(f"{name}.{key}", f"'{name}' values must be between -100 and 100; got {bias}.")
    return None


def check_top_k(name: str, value: Any, limits: Limits) -> Problem | None:
    if value == -1 or 1 <= value < limits.vocab_size:
        return None
    return Problem(name, f"'top_k' must be -1 (off) or between 1 and {limits.vocab_size - 1}; got {value}.")


def check_n(name: str, value: Any, limits: Limits) -> Problem | None:
    if not 1 <= value <= limits.max_n:
        return Problem(name, f"'n' must be between 1 and {limits.max_n} on this server; got {value}.")
    return None


def check_max_tokens(name: str, value: Any, limits: Limits) -> Problem | None:
    if value < 1:
        return Problem(name, f"'{name}' must be at least 1; got {value}.")
    if value > limits.max_completion_tokens:
        if limits.max_completion_tokens < limits.context_length:
            return Problem(name, f"'{name}' is {value}; this server allows at most {limits.max_completion_tokens}.")
        return Problem(
            name,
            f"'{name}' is {value}, more than this model's context length of {limits.context_length} tokens.",
            "context_length_exceeded",
        )
    return None


def _counts_fit(text: str, limit: int) -> bool:
    return all(int(low) <= limit and (not high or int(high) <= limit) for low, high in _REPEAT.findall(text))


def _schema_counts_fit(node: Any, limit: int) -> bool:
    if isinstance(node, dict):
        for key, item in node.items():
            if key in _SCHEMA_COUNTS and isinstance(item, int | float) and item > limit:
                return False
            if not _schema_counts_fit(item, limit):
                return False
    elif isinstance(node, list):
        return all(_schema_counts_fit(item, limit) for item in node)
    return True


def _grammar_problem(name: str, text: str, limits: Limits) -> Problem | None:
    if len(text.encode()) > MAX_GRAMMAR_BYTES:
        return Problem(name, f"'{name}' is {len(text.encode())} bytes; at most {MAX_GRAMMAR_BYTES}.")
    if not _counts_fit(text, limits.context_length):
        return Problem(
            name, f"'{name}' repeats something more than the context length ({limits.context_length}) allows."
        )
    return None


def check_grammar(name: str, value: Any, limits: Limits) -> Problem | None:
    return _grammar_problem(name, value, limits)


def check_json_schema_text(name: str, value: Any, limits: Limits) -> Problem | None:
    if problem := _grammar_problem(name, value, limits):
        return problem
    try:
        schema = orjson.loads(value)
    except orjson.JSONDecodeError:
        return Problem(name, f"'{name}' must be a JSON schema in a string; it is not valid JSON.")
    return schema_problem(name, schema, limits)


def schema_problem(name: str, schema: Any, limits: Limits) -> Problem | None:
    size = len(orjson.dumps(schema))
    if size > MAX_GRAMMAR_BYTES:
        return Problem(name, f"'{name}' is {size} bytes of JSON schema; at most {MAX_GRAMMAR_BYTES}.")
    if not _schema_counts_fit(schema, limits.context_length):
        return Problem(name, f"'{name}' asks for more items or characters than the context length allows.")
    patterns = []
    _collect(schema, "pattern", patterns)
    if not all(isinstance(p, str) and _counts_fit(p, limits.context_length) for p in patterns):
        return Problem(name, f"A pattern in '{name}' repeats something more than the context length allows.")
    return None


def _collect(node: Any, key: str, into: list) -> None:
    if isinstance(node, dict):
        for item_key, item in node.items():
            if item_key == key:
                into.append(item)
            _collect(item, key, into)
    elif isinstance(node, list):
        for item in node:
            _collect(item, key, into)


def check_response_format(name: str, value: Any, limits: Limits) -> Problem | None:
    kind = getattr(value, "type", None)
    if kind not in ("text", "json_object", "json_schema"):
        if "response_format.structural_tag" in limits.allowed_fields:
            return None
        return Problem(
            f"{name}.type", f"'{name}' type {kind!r} is not supported; use text, json_object or json_schema."
        )
    if kind == "json_schema" and value.json_schema is not None and value.json_schema.schema_ is not None:
        return schema_problem(f"{name}.json_schema.schema", value.json_schema.schema_, limits)
    return None


def check_tools(name: str, value: Any, limits: Limits) -> Problem | None:
    if len(value) > MAX_TOOLS:
        return Problem(name, f"'{name}' holds {len(value)} tools; at most {MAX_TOOLS}.")
    for index, tool in enumerate(value):
        if not TOOL_NAME.match(tool.function.name):
            return Problem(
                f"{name}.{index}.function.name", "Function names are 1-64 characters: letters, digits, _ and -."
            )
        if tool.function.parameters is not None and (
            problem := schema_problem(f"{name}.{index}.function.parameters", tool.function.parameters, limits)
        ):
            return problem
    return None


def check_small_json(name: str, value: Any, limits: Limits) -> Problem | None:
    if len(orjson.dumps(value, default=str)) > MAX_SMALL_JSON_BYTES:
        return Problem(name, f"'{name}' is larger than {MAX_SMALL_JSON_BYTES} bytes of JSON.")
    return None


# The arguments SGLang's call of the tokenizer's apply_chat_template passes itself (and the template's
# own variables): a chat_template_kwargs key among them made that call fail ("got multiple values",
# KeyError), a 500. chat_template is here too: a template is the server's (CHAT_TEMPLATE), not a client's.
# tests/test_request_bounds.py checks this list against the installed transformers' signature.
TEMPLATE_CALL_ARGUMENTS = frozenset({
    "conversation", "messages", "tools", "documents", "chat_template", "add_generation_prompt",
    "continue_final_message", "tokenize", "padding", "truncation", "max_length", "return_tensors", "return_dict",
    "return_assistant_tokens_mask", "tokenizer_kwargs", "processor_kwargs",
})  # fmt: skip


def check_template_kwargs(name: str, value: Any, limits: Limits) -> Problem | None:
    """Extra variables for the chat template: small, and none the template call sets itself."""
    for key in value or {}:
        if key in TEMPLATE_CALL_ARGUMENTS:
            return Problem(
                f"{name}.{key}",
                f"'{name}' may not set '{key}': the server passes it to the chat template itself.",
            )
    return check_small_json(name, value, limits)


def check_text(name: str, value: Any, limits: Limits) -> Problem | None:
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return Problem(name, f"'{name}' is {len(value)} characters; at most {MAX_TEXT_CHARS}.")
    if not isinstance(value, str):
        return Problem(name, f"'{name}' must be one string on this server.")
    return None


def check_messages(name: str, value: Any, limits: Limits) -> Problem | None:
    if not value:
        return Problem(name, "'messages' must hold at least one message.")
    # Each message costs at least one token of template, so more than the context cannot fit.
    if len(value) > limits.context_length:
        return Problem(
            name,
            f"'{name}' holds {len(value)} messages; this model's context holds {limits.context_length} tokens.",
            "context_length_exceeded",
        )
    return None


def check_prompt(name: str, value: Any, limits: Limits) -> Problem | None:
    single = isinstance(value, str) or (value and isinstance(value[0], int))
    prompts = [value] if single else value
    if not prompts:
        return Problem(name, "'prompt' is empty.")
    if len(prompts) > limits.max_n:
        return Problem(name, f"'prompt' holds {len(prompts)} prompts; at most {limits.max_n} sequences per request.")
    for index, prompt in enumerate(prompts):
        where = name if single else f"{name}.{index}"
        # A prompt of zero tokens crashed SGLang's scheduler (a 0-element reshape in attention).
        if not prompt:
            return Problem(where, "A prompt must not be empty.")
        if isinstance(prompt, list) and (problem := check_token_list(where, prompt, limits)):
            return problem
    return None
