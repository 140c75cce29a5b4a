"""engine/model_family.py: which SGLang parsers a model gets, from its own config.json.

The configs are the real files' identifying fields (architectures, model_type, vocab_size and the
neighbours that tell families apart), as published with each model; the bundled model's is read from
its converted folder when present.
"""

from __future__ import annotations

import json

import pytest

from sglang_hathora.engine.bundled_model import checkpoint_dir
from sglang_hathora.engine.model_family import (
    REASONING_PARSERS,
    TOOL_CALL_PARSERS,
    check_parser_names,
    choose_parsers,
    family_of,
)
from sglang_hathora.settings import Settings

LLAMA_31_8B_INSTRUCT = {
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_size": 4096,
    "max_position_embeddings": 131072,
    "model_type": "llama",
    "num_hidden_layers": 32,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "vocab_size": 128256,
}
QWEN25_7B_INSTRUCT = {
    "architectures": ["Qwen2ForCausalLM"],
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_size": 3584,
    "model_type": "qwen2",
    "num_hidden_layers": 28,
    "vocab_size": 152064,
}
QWEN3_8B = {
    "architectures": ["Qwen3ForCausalLM"],
    "eos_token_id": 151645,
    "hidden_size": 4096,
    "model_type": "qwen3",
    "num_hidden_layers": 36,
    "vocab_size": 151936,
}
MISTRAL_7B_INSTRUCT_V03 = {
    "architectures": ["MistralForCausalLM"],
    "hidden_size": 4096,
    "model_type": "mistral",
    "num_hidden_layers": 32,
    "sliding_window": None,
    "vocab_size": 32768,
}
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"],
    "hidden_size": 2880,
    "model_type": "gpt_oss",
    "num_hidden_layers": 24,
    "num_local_experts": 32,
    "vocab_size": 201088,
}
DEEPSEEK_R1 = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 129280}
SMOLLM2_135M = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152}


@pytest.mark.parametrize(
    ("config", "path", "tool", "reasoning"),
    [
        (LLAMA_31_8B_INSTRUCT, "meta-llama/Meta-Llama-3.1-8B-Instruct", "llama3", None),
        (QWEN25_7B_INSTRUCT, "Qwen/Qwen2.5-7B-Instruct", "qwen25", None),
        (QWEN3_8B, "Qwen/Qwen3-8B", "qwen25", "qwen3"),
        (MISTRAL_7B_INSTRUCT_V03, "mistralai/Mistral-7B-Instruct-v0.3", "mistral", None),
        (GPT_OSS_20B, "openai/gpt-oss-20b", "gpt-oss", "gpt-oss"),
        (DEEPSEEK_R1, "deepseek-ai/DeepSeek-R1", "deepseekv3", "deepseek-r1"),
        (SMOLLM2_135M, "SmolLM2-135M-Instruct", None, None),  # a llama, not a Llama 3: no parser
    ],
)
def test_the_family_table_on_real_configs(config: dict, path: str, tool: str | None, reasoning: str | None) -> None:
    parsers = choose_parsers(None, None, config, path)
    assert (parsers.tool_call_parser, parsers.reasoning_parser) == (tool, reasoning)
    assert parsers.tool_call_parser in TOOL_CALL_PARSERS | {None}
    assert parsers.reasoning_parser in REASONING_PARSERS | {None}


@pytest.mark.engine  # needs the converted model, which make test prepares and make test-fast does not
def test_the_bundled_models_own_config_has_no_family() -> None:
    folder = checkpoint_dir(Settings().model_cache_dir)
    assert (folder / "config.json").is_file(), "the bundled model is not converted yet: run `make model`"
    assert family_of(json.loads((folder / "config.json").read_text()), str(folder)) is None


def test_settings_win_and_say_so() -> None:
    parsers = choose_parsers("hermes", "off", QWEN3_8B, "Qwen/Qwen3-8B")
    assert (parsers.tool_call_parser, parsers.reasoning_parser) == ("hermes", None)
    assert parsers.why.startswith("TOOL_CALL_PARSER, REASONING_PARSER")
    assert choose_parsers(None, None, None, "x").why == "no known family in config.json"


def test_unknown_parser_names_are_configuration_errors() -> None:
    check_parser_names("llama3", "off")
    with pytest.raises(ValueError, match="TOOL_CALL_PARSER: unknown parser 'lama3'"):
        check_parser_names("lama3", None)
    with pytest.raises(ValueError, match="REASONING_PARSER"):
        check_parser_names(None, "qwen4")
