"""The bounds table against SGLang's own request models (no engine): every field has exactly one rule,
so an SGLang upgrade that adds a field fails here; the rules' checks; the published schema."""

from __future__ import annotations

import pytest

from sglang_hathora.engine import cpu_compat
from sglang_hathora.openai.bound_kinds import Limits, Refused
from sglang_hathora.openai.openapi_schema import request_schema
from sglang_hathora.openai.request_bounds import (
    CHAT_RULES,
    COMPLETION_RULES,
    REFUSABLE,
    RESPONSES_RULES,
    check_fields,
    sequences,
)
from sglang_hathora.openai.response_checks import response_texts

# In this process only, before SGLang's first import (its protocol module imports torchvision). An SGLang
# upgrade that moves the module fails here, at collection: that is what this file exists to catch.
cpu_compat.install_torchvision_fix()
from sglang.srt.entrypoints.openai import protocol  # noqa: E402

LIMITS = Limits(context_length=4096, vocab_size=49152, max_n=8, max_completion_tokens=4096, model_names=("m", "sglang"))


@pytest.mark.parametrize(
    ("model", "rules"),
    [
        (protocol.ChatCompletionRequest, CHAT_RULES),
        (protocol.CompletionRequest, COMPLETION_RULES),
        (protocol.ResponsesRequest, RESPONSES_RULES),
    ],
    ids=["chat", "completion", "responses"],
)
def test_every_field_has_exactly_one_rule(model, rules) -> None:
    fields, ruled = set(model.model_fields), set(rules)
    assert fields - ruled == set(), f"fields of SGLang's {model.__name__} without a bound: {fields - ruled}"
    assert ruled - fields == set(), f"rules for fields {model.__name__} does not have: {ruled - fields}"


def chat(**fields):
    return protocol.ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def completion(**fields):
    return protocol.CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"top_k": 2**31}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"repetition_penalty": 5e-324}, "repetition_penalty"),
        ({"logit_bias": {"-1": 1}}, "logit_bias.-1"),
        ({"logit_bias": {"x": 1}}, "logit_bias.x"),
        ({"logit_bias": {"7": float("inf")}}, "logit_bias.7"),
        ({"stop": ["a"] * 5}, "stop"),
        ({"stop": ["a", "b" * 2000]}, "stop.1"),
        ({"stop_token_ids": list(range(65))}, "stop_token_ids"),
        ({"regex": "(ab){5000}"}, "regex"),
        ({"ebnf": 'root ::= "a"{1,99999}'}, "ebnf"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 4097}, "max_completion_tokens"),
        ({"min_tokens": 5000}, "min_tokens"),
        ({"n": 9}, "n"),
        ({"input_ids": []}, "input_ids"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
        ({"chat_template_kwargs": {"x": "y" * 5000}}, "chat_template_kwargs"),
        ({"rid": "abc"}, "rid"),
        ({"session_params": {"id": "x"}}, "session_params"),
    ],
)
def test_chat_rules_refuse_with_the_field_named(request_fields, param) -> None:
    problem = check_fields(chat(**request_fields), CHAT_RULES, LIMITS)
    assert problem is not None and problem.param == param, problem


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"logprobs": 6}, "logprobs"),
        ({"prompt": ["a"] * 9}, "prompt"),
        ({"prompt": ["a", ""]}, "prompt.1"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": [[1], [49152]]}, "prompt.1.0"),
        ({"json_schema": '{"type": "array", "maxItems": 100000}'}, "json_schema"),
        ({"json_schema": "{not json"}, "json_schema"),
        ({"best_of": 3}, "best_of"),
        ({"custom_labels": {"a": "b"}}, "custom_labels"),
    ],
)
def test_completion_rules_refuse_with_the_field_named(request_fields, param) -> None:
    problem = check_fields(completion(**request_fields), COMPLETION_RULES, LIMITS)
    assert problem is not None and problem.param == param, problem


def response(**fields):
    return protocol.ResponsesRequest.model_validate({"model": "m", "input": "hi", **fields})


IMAGE = {"type": "input_image", "image_url": "http://169.254.169.254/latest/meta-data"}


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}, IMAGE]}]}, "input.0.content.1"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "file:///etc/passwd"}]}]},
         "input.0.content.0"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 4097}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"top_k": 2**31}, "top_k"),
        ({"background": True}, "background"),
        ({"request_id": "resp_mine"}, "request_id"),
        ({"priority": 5}, "priority"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools.0.name"),
        ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "string", "maxLength": 10**6}}]},
         "tools.0.parameters"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "array", "minItems": 10**6}}}},
         "text.format.schema"),
        ({"chat_template_kwargs": {"x": "y" * 5000}}, "chat_template_kwargs"),
        ({"previous_response_id": "r" * 600}, "previous_response_id"),
    ],
)  # fmt: skip
def test_responses_rules_refuse_with_the_field_named(request_fields, param) -> None:
    problem = check_fields(response(**request_fields), RESPONSES_RULES, LIMITS)
    assert problem is not None and problem.param == param, problem


def test_responses_texts_are_what_the_context_check_sizes() -> None:
    sane = response(
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
            {"type": "function_call_output", "call_id": "c", "output": "tool said 5"},
            {"role": "user", "content": [{"type": "input_text", "text": "And 3+3?"}]},
        ],
        max_output_tokens=100,
        metadata={"conversation": "42"},
        tools=[{"type": "function", "name": "add", "parameters": {"type": "object"}}],
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        store=True,
        background=False,
    )
    assert check_fields(sane, RESPONSES_RULES, LIMITS) is None
    assert response_texts(sane) == ["Be brief.", "What is 2+2?", "4", "tool said 5", "And 3+3?"]


def test_sane_requests_pass_and_defaults_of_refused_fields_are_fine() -> None:
    sane = chat(
        temperature=0.7,
        top_p=0.9,
        top_k=-1,
        stop=["\n"],
        logit_bias={"5": -100},
        max_tokens=100,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        return_hidden_states=False,
        rid=None,
        seed=-5,
        n=8,
    )
    assert check_fields(sane, CHAT_RULES, LIMITS) is None
    assert check_fields(completion(prompt=[[1, 2], [3]], n=4, logprobs=5), COMPLETION_RULES, LIMITS) is None


def test_allowed_fields_let_a_refused_one_through() -> None:
    request = chat(stop_regex="a+")
    assert check_fields(request, CHAT_RULES, LIMITS).param == "stop_regex"
    allowing = Limits(**{**LIMITS.__dict__, "allowed_fields": frozenset({"stop_regex"})})
    assert check_fields(request, CHAT_RULES, allowing) is None


def test_sequences_count_prompts_times_n() -> None:
    assert sequences(completion(prompt=["a", "b", "c"], n=2)) == 6
    assert sequences(completion(prompt=[1, 2, 3], n=2)) == 2
    assert sequences(chat(n=3)) == 3


def test_published_schema_has_the_bounds_and_not_the_refused_fields() -> None:
    schema, definitions = request_schema(protocol.ChatCompletionRequest, CHAT_RULES, LIMITS)
    properties = schema["properties"]
    assert properties["n"]["maximum"] == 8 and properties["n"]["minimum"] == 1
    assert properties["top_k"]["anyOf"][0] == {"type": "integer", "minimum": -1, "maximum": 49151}
    assert properties["model"]["enum"] == ["m", "sglang"]
    refused = {name for name, rule in CHAT_RULES.items() if isinstance(rule, Refused)}
    assert refused and not refused & set(properties)
    # Structural tags (recursive, refused) are not offered in response_format.
    assert "StructuralTag" not in definitions and "ResponseFormat" in definitions
    assert refused <= REFUSABLE


def test_template_kwargs_may_not_set_what_the_template_call_passes_itself() -> None:
    """The installed transformers' apply_chat_template: each named argument is refused as a key."""
    import inspect

    from transformers import PreTrainedTokenizerBase

    from sglang_hathora.openai.bound_checks import TEMPLATE_CALL_ARGUMENTS, check_template_kwargs

    signature = inspect.signature(PreTrainedTokenizerBase.apply_chat_template).parameters
    named = {name for name, p in signature.items() if name != "self" and p.kind is not p.VAR_KEYWORD}
    assert named <= TEMPLATE_CALL_ARGUMENTS, named - TEMPLATE_CALL_ARGUMENTS
    for key in sorted(TEMPLATE_CALL_ARGUMENTS):
        problem = check_template_kwargs("chat_template_kwargs", {key: True}, LIMITS)
        assert problem is not None and problem.param == f"chat_template_kwargs.{key}" and key in problem.message
    assert check_template_kwargs("chat_template_kwargs", {"enable_thinking": False}, LIMITS) is None
    assert check_template_kwargs("chat_template_kwargs", {"x": "y" * 5000}, LIMITS) is not None
