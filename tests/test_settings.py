"""Settings: every variable read in one class; bad values stop the process with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from sglang_hathora.configuration import describe_validation_error
from sglang_hathora.settings import Settings
from tests.server_process import ENTRY, PROJECT_DIR, free_port, server_env


def make(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_defaults_follow_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PORT", "TP_SIZE", "LOG_LEVEL", "MODEL_PATH", "HATHORA_REGION", "MAX_TOTAL_TOKENS"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.port == 8000
    assert settings.tp_size == 1
    assert settings.log_level == "INFO"
    assert settings.model_path is None and settings.model_name == "SmolLM2-135M-Instruct"
    assert settings.hathora_hostname is None and settings.hathora_default_port is None
    assert settings.keep_alive_timeout > 600  # above GCP's backend keep-alive


def test_values_are_parsed_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(
        monkeypatch,
        LOG_LEVEL="debug",
        DEVICE="CPU",
        PORT="9001",
        HATHORA_DEFAULT_PORT="7777",
        MODEL_PATH="meta-llama/Meta-Llama-3.1-8B-Instruct",
        MAX_TOTAL_TOKENS="",
        TP_SIZE="2",
    )
    assert settings.log_level == "DEBUG" and settings.device == "cpu"
    assert settings.port == 9001 and settings.hathora_default_port == 7777  # listen vs advertised
    assert settings.model_name == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert settings.accepted_model_names() == {"meta-llama/Meta-Llama-3.1-8B-Instruct", "sglang"}
    assert settings.max_total_tokens is None  # empty means unset
    assert settings.tp_size == 2


def test_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(monkeypatch, GCP_SERVICE_ACCOUNT_KEY_BASE64="c2VjcmV0LWtleS10ZXh0")
    assert "c2VjcmV0" not in repr(settings) and "c2VjcmV0" not in str(settings.model_dump())
    with pytest.raises(ValidationError) as raised:
        Settings(gcp_service_account_key_base64=123456789)  # type: ignore[arg-type]
    assert "123456789" not in describe_validation_error(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("PORT", "abc", "PORT: Input should be a valid integer"),
        ("TP_SIZE", "0", "TP_SIZE: Input should be greater than or equal to 1"),
        ("HATHORA_DEFAULT_PORT", "70000", "HATHORA_DEFAULT_PORT: Input should be less than or equal to 65535"),
        ("DEVICE", "tpu", "DEVICE: Input should be 'auto', 'cuda' or 'cpu'"),
        ("API_KEYS", " , ", "API_KEYS: Value error, holds no key"),
        ("ALLOW_REQUEST_FIELDS", "rid,pixie_dust", "ALLOW_REQUEST_FIELDS: unknown field(s) pixie_dust"),
        ("REQUEST_BODY_TIMEOUT", "0", "REQUEST_BODY_TIMEOUT: Input should be greater than 0"),
        ("TOOL_CALL_PARSER", "lama3", "TOOL_CALL_PARSER: unknown parser 'lama3'"),
        ("CHAT_TEMPLATE", "/no/such/template.jinja", "CHAT_TEMPLATE: Value error, no such file"),
    ],
)
def test_bad_configuration_exits_with_one_clear_line(tmp_path, variable: str, value: str, expected: str) -> None:
    env = server_env(free_port(), tmp_path / "log", **{variable: value})
    result = subprocess.run(
        [sys.executable, str(ENTRY)], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("invalid configuration: ") and expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_local_model_folder_is_a_configuration_error(tmp_path) -> None:
    env = server_env(free_port(), tmp_path / "log", MODEL_PATH=str(tmp_path / "no-such-model"))
    result = subprocess.run(
        [sys.executable, str(ENTRY)], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"invalid configuration: MODEL_PATH: Value error, no such model folder: "
        f"{tmp_path / 'no-such-model'} (got '{tmp_path / 'no-such-model'}')"
    )


def test_env_example_lists_every_setting() -> None:
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert listed == {name.upper() for name in Settings.model_fields}


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(monkeypatch, MODEL_CACHE_DIR="~/models-cache")
    assert "~" not in str(settings.model_cache_dir) and settings.model_cache_dir.is_absolute()
