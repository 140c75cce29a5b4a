"""Where SGLang's tool-call and reasoning parsers are chosen for the served model: ``choose_parsers``.

TOOL_CALL_PARSER / REASONING_PARSER win when set ("off" turns one off); otherwise the model's own
``config.json`` names its family (table below), and a model outside it gets none. Without a tool-call
parser, ``tool_choice: "auto"`` cannot turn the model's native call format into ``tool_calls``
(forced calls still work: openai/tool_calls.py); without a reasoning parser a reasoning model's
thinking stays in ``content``. The choice and its reason go to the start-up log.

The names are SGLang 0.5.23's (``FunctionCallParser.ToolCallParserEnum`` and the reasoning parser's
detector map); a name SGLang does not know stops the process at start with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOL_CALL_PARSERS = frozenset(
    [
        "apertus2509",
        "beam",
        "cohere_command4",
        "deepseekv3",
        "deepseekv31",
        "deepseekv32",
        "deepseekv4",
        "deepseekv41",
        "dots",
        "gemma4",
        "gigachat3",
        "gigachat35",
        "glm",
        "glm45",
        "glm47",
        "gpt-oss",
        "hermes",
        "hunyuan",
        "inkling",
        "interns1",
        "iquest_q1",
        "k2_horizon",
        "kimi_k2",
        "kimi_k3",
        "lfm2",
        "ling3",
        "llama3",
        "mimo",
        "minicpm5",
        "minimax-m2",
        "minimax-m3",
        "mistral",
        "muse",
        "nanbeige",
        "poolside_v1",
        "pythonic",
        "qwen",
        "qwen25",
        "qwen3_coder",
        "response_template",
        "spark25",
        "step3",
        "step3p5",
        "trinity",
    ]
)
REASONING_PARSERS = frozenset(
    [
        "apertus2509",
        "beam",
        "cohere_command4",
        "deepseek-r1",
        "deepseek-v3",
        "deepseek-v4",
        "deepseek-v41",
        "dots",
        "gemma4",
        "gigachat35",
        "glm45",
        "gpt-oss",
        "granite_thinking_parser",
        "hunyuan",
        "inkling",
        "interns1",
        "iquest_q1",
        "k2_horizon",
        "kimi",
        "kimi_k2",
        "kimi_k3",
        "ling3",
        "mimo",
        "minimax",
        "minimax-append-think",
        "minimax-m3",
        "mistral",
        "muse",
        "nanbeige",
        "nemotron_3",
        "poolside_v1",
        "qwen3",
        "qwen3-thinking",
        "response_template",
        "step3",
        "step3p5",
    ]
)
OFF = "off"


@dataclass(frozen=True)
class Family:
    name: str
    tool_call_parser: str | None
    reasoning_parser: str | None


# model_type -> family. Llama 3.x shares model_type "llama" with older Llamas and with SmolLM2 (the
# bundled model): its 128256-token vocabulary tells it apart.
_BY_MODEL_TYPE = {
    "qwen2": Family("Qwen 2.5", "qwen25", None),
    "qwen2_moe": Family("Qwen 2.5 MoE", "qwen25", None),
    "qwen3": Family("Qwen 3", "qwen25", "qwen3"),
    "qwen3_moe": Family("Qwen 3 MoE", "qwen25", "qwen3"),
    "mistral": Family("Mistral", "mistral", None),
    "gpt_oss": Family("gpt-oss", "gpt-oss", "gpt-oss"),
    "deepseek_v3": Family("DeepSeek V3 / R1", "deepseekv3", None),
}
_LLAMA3 = Family("Llama 3.x", "llama3", None)
_LLAMA3_VOCAB = 128256


def family_of(config: dict[str, Any], model_path: str) -> Family | None:
    model_type = config.get("model_type")
    if model_type == "llama":
        return _LLAMA3 if config.get("vocab_size") == _LLAMA3_VOCAB else None
    family = _BY_MODEL_TYPE.get(str(model_type))
    if family is not None and model_type == "deepseek_v3" and "r1" in Path(model_path).name.lower():
        # R1 and V3 share the architecture; only R1 thinks in <think> blocks.
        return Family("DeepSeek R1", "deepseekv3", "deepseek-r1")
    return family


@dataclass(frozen=True)
class Parsers:
    tool_call_parser: str | None
    reasoning_parser: str | None
    why: str


def choose_parsers(
    tool_setting: str | None, reasoning_setting: str | None, config: dict | None, model_path: str
) -> Parsers:
    family = family_of(config, model_path) if config is not None else None
    source = f"the {family.name} family (config.json)" if family else "no known family in config.json"
    tool, reasoning = (family.tool_call_parser, family.reasoning_parser) if family else (None, None)
    reasons = []
    if tool_setting:
        tool = None if tool_setting == OFF else tool_setting
        reasons.append("TOOL_CALL_PARSER")
    if reasoning_setting:
        reasoning = None if reasoning_setting == OFF else reasoning_setting
        reasons.append("REASONING_PARSER")
    why = ", ".join([*reasons, source]) if reasons else source
    return Parsers(tool, reasoning, why)


def check_parser_names(tool_setting: str | None, reasoning_setting: str | None) -> None:
    """At start: a parser name SGLang does not know is a configuration error (ValueError, one line)."""
    for variable, value, known in (
        ("TOOL_CALL_PARSER", tool_setting, TOOL_CALL_PARSERS),
        ("REASONING_PARSER", reasoning_setting, REASONING_PARSERS),
    ):
        if value and value != OFF and value not in known:
            raise ValueError(f"{variable}: unknown parser {value!r}; choose from {', '.join(sorted(known))} or off")


def read_config(model_path: str) -> dict | None:
    """config.json of a local model folder, or of a Hugging Face model (its cache, else a download)."""
    local = Path(model_path) / "config.json"
    try:
        if local.is_file():
            return json.loads(local.read_text())
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model_path, "config.json")).read_text())
    except Exception:  # noqa: BLE001 - no config: no family, and SGLang's own load will say what is wrong
        return None
