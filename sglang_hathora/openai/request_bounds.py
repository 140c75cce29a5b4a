"""Where every request field that can reach the engine gets its bound: one table per endpoint,
``CHAT_RULES`` and ``COMPLETION_RULES``.

Each field of SGLang's ChatCompletionRequest and CompletionRequest has exactly one rule here
(tests/test_request_bounds.py fails when an SGLang upgrade adds a field without one, and at run
time a field the table does not know is refused, never passed through). Why a table and not
SGLang's own checks: on this machine ``top_k: 2147483648`` and completions ``logprobs: 1000000``
passed SGLang's checks and killed its scheduler (int32 overflow), which ends the process.

Bounds come from OpenAI's API reference where it documents one, else from the model (vocabulary
size for token ids, context length for lengths and counts). Fields no OpenAI client sends
(internal ids, hidden states, custom logit processors, LoRA, regex stops, routing) are refused
with 400 unless ALLOW_REQUEST_FIELDS names them. The same rules publish the bounds in
/openapi.json (``schema``), so schema-driven clients and fuzzers see what the server accepts.
"""

from __future__ import annotations

from typing import Any

from sglang_hathora.openai import response_checks
from sglang_hathora.openai.bound_checks import (
    MAX_GRAMMAR_BYTES,
    MAX_LOGIT_BIAS,
    MAX_SMALL_JSON_BYTES,
    MAX_STOP,
    MAX_STOP_CHARS,
    MAX_STOP_TOKEN_IDS,
    MAX_TEXT_CHARS,
    MAX_TOOLS,
    check_grammar,
    check_json_schema_text,
    check_logit_bias,
    check_max_tokens,
    check_messages,
    check_n,
    check_prompt,
    check_response_format,
    check_small_json,
    check_stop,
    check_stop_ids,
    check_template_kwargs,
    check_text,
    check_token_list,
    check_tools,
    check_top_k,
)
from sglang_hathora.openai.bound_kinds import (
    Custom,
    Free,
    Integer,
    Limits,
    Number,
    Problem,
    Refused,
    Rule,
    max_tokens_cap,
)


def _prompt_schema(limits: Limits) -> dict[str, Any]:
    token = {"minimum": 0, "maximum": limits.vocab_size - 1}
    return {"minLength": 1, "minItems": 1, "items": {"minLength": 1, "minItems": 1, **token, "items": token}}


# fmt: off
SAMPLING: dict[str, Rule] = {
    "temperature": Number(0, 2, "OpenAI"),
    "top_p": Number(0, 1, "OpenAI", low_open=True),
    "frequency_penalty": Number(-2, 2, "OpenAI"),
    "presence_penalty": Number(-2, 2, "OpenAI"),
    "n": Custom(check_n, "1..MAX_N; n x prompts counts as sequences", "OpenAI, MAX_N",
                lambda lim: {"minimum": 1, "maximum": lim.max_n}),
    "max_tokens": Custom(check_max_tokens, "1..min(context length, MAX_COMPLETION_TOKENS)", "model, setting",
                         lambda lim: {"minimum": 1, "maximum": lim.max_completion_tokens}),
    "seed": Integer(-(2**63), 2**63 - 1, "int64, SGLang"),
    "stop": Custom(check_stop, f"at most {MAX_STOP} strings of at most {MAX_STOP_CHARS} characters", "OpenAI",
                   lambda lim: {"maxItems": MAX_STOP, "maxLength": MAX_STOP_CHARS,
                                "items": {"maxLength": MAX_STOP_CHARS}}),
    "logit_bias": Custom(check_logit_bias, f"token ids in [0, vocab size), values in [-100, 100], at most "
                         f"{MAX_LOGIT_BIAS} entries", "OpenAI, model",
                         lambda lim: {"maxProperties": MAX_LOGIT_BIAS, "propertyNames": {"pattern": "^[0-9]{1,9}$"},
                                      "additionalProperties": {"minimum": -100, "maximum": 100}}),
    "top_k": Custom(check_top_k,
                    "-1 (off) or 1..vocab size", "model", lambda lim: {"minimum": -1, "maximum": lim.vocab_size - 1}),
    "min_p": Number(0, 1, "SGLang"),
    "min_tokens": Integer(0, max_tokens_cap, "model, setting"),
    # (0, 2] in SGLang, but 5e-324 turned logits into inf and the sampler's NaN killed the scheduler.
    "repetition_penalty": Number(0.01, 2, "SGLang; floor: this server"),
    "stop_token_ids": Custom(check_stop_ids, f"at most {MAX_STOP_TOKEN_IDS} ids in [0, vocab size)", "model",
                             lambda lim: {"maxItems": MAX_STOP_TOKEN_IDS,
                                          "items": {"minimum": 0, "maximum": lim.vocab_size - 1}}),
    "regex": Custom(check_grammar, f"at most {MAX_GRAMMAR_BYTES} bytes; counted repeats <= context length",
                    "this server"),
    "ebnf": Custom(check_grammar, f"at most {MAX_GRAMMAR_BYTES} bytes; counted repeats <= context length",
                   "this server"),
    "response_format": Custom(check_response_format, "text, json_object or json_schema (schema at most "
                              f"{MAX_GRAMMAR_BYTES} bytes, counts <= context length)", "OpenAI",
                              lambda lim: {"refs": ["ResponseFormat"]}),
    "ignore_eos": Free("flag"), "no_stop_trim": Free("flag"), "skip_special_tokens": Free("flag"),
    "stream": Free("flag"), "stream_options": Free("two flags"),
    "model": Custom(lambda n, v, lim: None, "the served name or 'sglang' (else 404)", "this server",
                    lambda lim: {"enum": list(lim.model_names)}),
    "user": Custom(check_text, f"at most {MAX_TEXT_CHARS} characters", "this server",
                   lambda lim: {"maxLength": MAX_TEXT_CHARS}),
    "cache_salt": Custom(check_text, f"one string of at most {MAX_TEXT_CHARS} characters", "this server",
                         lambda lim: {"maxLength": MAX_TEXT_CHARS}),
    "return_token_ids": Free("flag; output bounded by the context"),
    "return_cached_tokens_details": Free("flag"),
    # Not for clients: internal ids, routing, introspection, code, adapters.
    "rid": Refused("engine request ids are the server's; send X-Request-Id"),
    "extra_key": Refused("internal cache key"),
    "priority": Refused("priority scheduling is off"),
    "data_parallel_rank": Refused("internal routing"),
    "routed_dp_rank": Refused("internal routing"),
    "disagg_prefill_dp_rank": Refused("internal routing"),
    "bootstrap_host": Refused("internal routing"),
    "bootstrap_port": Refused("internal routing"),
    "bootstrap_room": Refused("internal routing"),
    "lora_path": Refused("LoRA is off"),
    "session_id": Refused("engine sessions are off"),
    "session_params": Refused("engine sessions are off"),
    "custom_logit_processor": Refused("custom logit processors are off"),
    "custom_params": Refused("custom logit processors are off"),
    "stop_regex": Refused("regex stops run in the scheduler at every step"),
    "return_hidden_states": Refused("hidden states are internal"),
    "return_routed_experts": Refused("internal"),
    "routed_experts_start_len": Refused("internal"),
    "return_spec_tokens_details": Refused("internal"),
    "watermark": Refused("watermarking is off"),
    "images_config": Refused("multimodal processor settings are the server's"),
    "mm_processor_kwargs": Refused("multimodal processor settings are the server's"),
}

TEMPLATE_KWARGS = Custom(check_template_kwargs, f"at most {MAX_SMALL_JSON_BYTES} bytes of JSON; no key the "
                         "template call sets itself (add_generation_prompt, tokenize, messages, tools, ...)",
                         "this server")

CHAT_RULES: dict[str, Rule] = {
    **SAMPLING,
    "messages": Custom(check_messages, "at most context-length messages; text checked against the context "
                       "before tokenizing", "model"),
    "max_completion_tokens": SAMPLING["max_tokens"],
    "logprobs": Free("flag"),
    "top_logprobs": Integer(0, 20, "OpenAI"),
    "tools": Custom(check_tools, f"at most {MAX_TOOLS}; names 1-64 of [A-Za-z0-9_-]; schemas as response_format",
                    "OpenAI", lambda lim: {"maxItems": MAX_TOOLS}),
    "tool_choice": Free("none/auto/required/a named function"),
    "parallel_tool_calls": Free("flag"),
    "reasoning_effort": Free("an effort level or a number in [0, 0.99]"),
    "thinking": Custom(check_small_json, f"at most {MAX_SMALL_JSON_BYTES} bytes of JSON", "this server"),
    "task": Free("one of six names"),
    "chat_template_kwargs": TEMPLATE_KWARGS,
    "continue_final_message": Free("flag"), "separate_reasoning": Free("flag"), "stream_reasoning": Free("flag"),
    "use_audio_in_video": Free("flag"),
    "return_prompt_token_ids": Free("flag; output bounded by the context"),
    "input_ids": Custom(check_token_list, "1 to context-length ids in [0, vocab size)", "model",
                        lambda lim: {"minItems": 1, "maxItems": lim.context_length,
                                     "items": {"minimum": 0, "maximum": lim.vocab_size - 1}}),
    "return_meta_info": Refused("internal"),
    "return_input_ids_in_sglext": Refused("internal"),
    "return_output_ids_in_sglext": Refused("internal"),
    "return_sampling_mask": Refused("a vocabulary-sized mask per token"),
    "sampling_logprobs_mode": Refused("full-support logprobs"),
    "return_flat_raw_output_top_logprobs": Refused("internal"),
    "return_flat_raw_top_logprobs_b64": Free("output encoding flag"),
    "max_dynamic_patch": Refused("multimodal processor settings are the server's"),
    "min_dynamic_patch": Refused("multimodal processor settings are the server's"),
    "video_config": Refused("multimodal processor settings are the server's"),
}

COMPLETION_RULES: dict[str, Rule] = {
    **SAMPLING,
    "prompt": Custom(check_prompt, "a string, strings, or token ids in [0, vocab size), none empty; "
                     "prompts x n <= MAX_N", "OpenAI, model, MAX_N", _prompt_schema),
    "logprobs": Integer(0, 5, "OpenAI"),
    "echo": Free("flag"),
    "best_of": Custom(lambda n, v, lim: None if v == 1 else Problem(n, "'best_of' other than 1 is not supported.",
                                                                    "unsupported_parameter"),
                      "1 only (SGLang does not implement it)", "this server", lambda lim: {"const": 1}),
    "suffix": Custom(lambda n, v, lim: Problem(n, "'suffix' is not supported by this model.", "unsupported_parameter"),
                     "refused (no fill-in-the-middle)", "this server", None),
    "custom_labels": Refused("metric labels are the server's"),
    "json_schema": Custom(check_json_schema_text, f"a JSON schema string of at most {MAX_GRAMMAR_BYTES} bytes",
                          "this server"),
}

# /v1/responses: the sampling fields it shares keep their rules; "input" and "instructions" are sized
# against the context like chat messages; stored-response ids are checked by the serving layer.
RESPONSES_RULES: dict[str, Rule] = {
    **{name: SAMPLING[name] for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "stop",
                                          "top_k", "min_p", "repetition_penalty", "model", "user", "cache_salt",
                                          "stream", "priority", "extra_key", "session_id", "data_parallel_rank",
                                          "routed_dp_rank", "disagg_prefill_dp_rank", "bootstrap_host",
                                          "bootstrap_port", "bootstrap_room")},
    "input": Custom(response_checks.check_input, "a string or at most context-length items, text only; "
                    "checked against the context before tokenizing", "model, this server"),
    "instructions": Free("text; checked against the context with the input"),
    "max_output_tokens": SAMPLING["max_tokens"],
    "max_tool_calls": Integer(0, MAX_TOOLS, "this server"),
    "top_logprobs": Integer(0, 20, "OpenAI"),
    "tools": Custom(response_checks.check_tools, f"at most {MAX_TOOLS} function tools; names 1-64 of "
                    "[A-Za-z0-9_-]; schemas as response_format", "OpenAI", lambda lim: {"maxItems": MAX_TOOLS}),
    "tool_choice": Free("none/auto/required/a named function"),
    "parallel_tool_calls": Free("flag"),
    "text": Custom(response_checks.check_text_config, "text, json_object or json_schema (as response_format)",
                   "OpenAI"),
    "metadata": Custom(response_checks.check_metadata, "at most 16 pairs; keys <= 64, values <= 512 characters",
                       "OpenAI"),
    "previous_response_id": Custom(check_text, f"one id of at most {MAX_TEXT_CHARS} characters; 404 unless "
                                   "stored in this process", "this server", lambda lim: {"maxLength": MAX_TEXT_CHARS}),
    "store": Free("flag; stored responses are bounded by RESPONSE_STORE_MAX_ITEMS/_MAX_AGE"),
    "include": Free("a list of known names"),
    "reasoning": Free("effort and summary (a typed object)"),
    "truncation": Free("auto or disabled"),
    "service_tier": Free("a tier name; one tier here"),
    "chat_template_kwargs": TEMPLATE_KWARGS,
    "background": Custom(lambda n, v, lim: None if not v else Problem(
        n, "'background' responses are not run on this server: a background generation would outlive its "
        "request's admission slot and the drain before a stop.", "unsupported_parameter"),
        "false only", "this server", lambda lim: {"const": False}),
    "request_id": Refused("response ids are the server's (they name the process that stores them)"),
}
# fmt: on

# Rules that take a field away from the published schema (refused ones, and suffix).
UNPUBLISHED = frozenset({"suffix"})
REFUSABLE = frozenset(
    name
    for rules in (CHAT_RULES, COMPLETION_RULES, RESPONSES_RULES)
    for name, r in rules.items()
    if isinstance(r, Refused)
)


def check_allowed_fields(names: list[str]) -> None:
    """ALLOW_REQUEST_FIELDS names only fields the table refuses (checked at start: a typo would
    otherwise leave the field refused with no word)."""
    unknown = sorted(set(names) - REFUSABLE - {"response_format.structural_tag"})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; choose from {', '.join(sorted(REFUSABLE))}")


def check_fields(request: Any, rules: dict[str, Rule], limits: Limits) -> Problem | None:
    """The first field the client set that breaks its rule, in table order; unknown fields are refused."""
    sent = request.model_fields_set
    for name in sent - rules.keys():
        return Problem(name, f"'{name}' is not supported on this server.", "unsupported_parameter")
    for name, rule in rules.items():
        if name not in sent:
            continue
        value = getattr(request, name)
        if value is None:
            continue
        if isinstance(rule, Refused) and value == type(request).model_fields[name].default:
            continue
        if problem := rule.check(name, value, limits):
            return problem
    return None


def sequences(request: Any) -> int:
    """How many sequences the engine runs for this request: prompts x n."""
    n = getattr(request, "n", None) or 1
    prompt = getattr(request, "prompt", None)
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt) * n
    return n


def markdown_table() -> str:
    """The README's bounds table: one row per field and rule (``python -m sglang_hathora.openai.request_bounds``)."""
    tables = (("chat", CHAT_RULES), ("completions", COMPLETION_RULES), ("responses", RESPONSES_RULES))
    rows = ["| field | endpoints | rule | source |", "|---|---|---|---|"]
    names = list(dict.fromkeys(name for _, rules in tables for name in rules))

    def refused(name: str) -> bool:
        return any(isinstance(rules.get(name), Refused) for _, rules in tables)

    for name in sorted(names, key=lambda n: (refused(n), n)):
        groups: dict[int, tuple[Rule, list[str]]] = {}
        for endpoint, rules in tables:
            if (rule := rules.get(name)) is not None:
                groups.setdefault(id(rule), (rule, []))[1].append(endpoint)
        for rule, endpoints in groups.values():
            where = "all" if len(endpoints) == len(tables) else ", ".join(endpoints)
            rows.append(f"| `{name}` | {where} | {rule.describe()} | {rule.source or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
