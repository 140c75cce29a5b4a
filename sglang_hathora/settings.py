"""All configuration, read from the environment in one place: the ``Settings`` class.

Nothing else in the project reads os.environ. Invalid values stop the process at start with one
line naming the variable (``load_settings_or_exit``), never a traceback.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
Device = Literal["auto", "cuda", "cpu"]
NegMode = Literal["regional", "global", "zonal"]

# What the seed's client examples send as the model name; accepted beside the served name.
MODEL_ALIAS = "sglang"


class Settings(BaseSettings):
    # env_ignore_empty: `docker run -e X=` and .env files produce empty strings; they mean "not set".
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, env_ignore_empty=True)

    # --- Hathora (injected by Hathora; all optional when running locally) ---
    hathora_hostname: str | None = Field(None, description="Public hostname of this process.")
    hathora_default_port: int | None = Field(
        None, ge=1, le=65535, description="Public port Hathora maps to PORT; advertised, never listened on."
    )
    hathora_region: str | None = Field(None, description="Hathora region, e.g. Seattle.")
    hathora_process_id: str | None = Field(
        None, description="Hathora process id, in the start-up log line and X-Hathora-Process-Id."
    )
    gcp_service_account_key_base64: SecretStr | None = Field(
        None, description="Base64 of a GCP service-account JSON key (NEG registration)."
    )

    # --- GCP network endpoint group (NEG) registration; on when HATHORA_HOSTNAME,
    # HATHORA_DEFAULT_PORT and GCP_SERVICE_ACCOUNT_KEY_BASE64 are all set ---
    neg_mode: NegMode = Field(
        "regional", description="regional/global INTERNET_FQDN_PORT (fqdn+port) or zonal GCE_VM_IP_PORT (instance)."
    )
    neg_names: str | None = Field(
        None, description="Comma-separated NEG names; {region}/{zone} placeholders. Default llm-serve-{region|zone}."
    )
    gcp_project_id: str | None = Field(None, description="GCP project; default: the key's project_id.")
    gcp_region: str | None = Field(None, description="GCP region; default: mapped from HATHORA_REGION.")
    gcp_api_endpoint: str | None = Field(
        None, description="Compute API endpoint override (tests); unset in production."
    )
    neg_registration_required: bool = Field(False, description="Exit non-zero if the NEG attach keeps failing.")
    neg_attach_deadline: float = Field(
        60.0, gt=0, description="Seconds of failed attach attempts before REQUIRED registration gives up."
    )
    neg_detach_budget: float = Field(2.0, gt=0, le=30, description="Seconds for detaching from all NEGs on stop.")
    neg_call_timeout: float = Field(10.0, gt=0, le=600, description="Timeout of one Compute API call, seconds.")
    neg_recheck_interval: float = Field(
        60.0, ge=0, description="Seconds between checks that the endpoint is still attached (0: never)."
    )

    # --- Model and engine ---
    model_path: str | None = Field(
        None, description="Local checkpoint or Hugging Face id; unset: the bundled SmolLM2-135M-Instruct."
    )
    served_model_name: str | None = Field(None, description="Name in /v1/models; default MODEL_PATH.")
    tp_size: int = Field(1, ge=1, le=64, description="Tensor-parallel degree (GPUs).")
    max_total_tokens: int | None = Field(
        None, ge=256, description="Size of the KV-cache pool shared by ALL requests (not per request)."
    )
    context_length: int | None = Field(None, ge=16, description="Longest prompt + completion, in tokens.")
    mem_fraction_static: float | None = Field(
        None, gt=0, lt=1, description="Fraction of memory for weights + KV cache (host RAM on CPU)."
    )
    device: Device = Field("auto", description="auto picks cuda when a GPU is visible, else cpu.")
    sleep_on_idle: bool = Field(True, description="Let the idle scheduler sleep instead of busy-polling.")
    random_seed: int | None = Field(None, description="Engine random seed.")
    deterministic_inference: bool = Field(
        False,
        description="The same text for the same request at temperature 0, whatever traffic came before: SGLang's "
        "deterministic mode (batch-invariant kernels) on GPU; on CPU, where SGLang has none, the prefix cache off.",
    )
    engine_forkserver: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Start SGLang's scheduler and detokenizer as forks of a forkserver that preloaded their "
        "modules, not as fresh interpreters (ready in about half the time); auto: on for the CPU only, since a "
        "fork after CUDA's initialisation cannot work and the GPU path is not verified.",
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "sglang-hathora", description="Where the bundled model is prepared."
    )

    # --- HTTP server ---
    host: str = Field("0.0.0.0", description="Listen address.")
    port: int = Field(8000, ge=1, le=65535, description="Listen (container) port.")
    drain_timeout: float = Field(
        8.0, ge=0, le=3600, description="Seconds in-flight requests may take to finish after SIGTERM."
    )
    tool_call_parser: str | None = Field(
        None,
        description="SGLang's tool-call parser (llama3, qwen25, mistral, ...; 'off'); unset: chosen from the "
        "model's config.json for known families (engine/model_family.py), else none.",
    )
    reasoning_parser: str | None = Field(
        None, description="SGLang's reasoning parser (qwen3, deepseek-r1, gpt-oss, ...; 'off'); unset: by family."
    )
    chat_template: str | None = Field(
        None,
        description="A chat template for SGLang: a Jinja file, or a template name SGLang knows; unset: the model's.",
    )
    # Stall watchdog (watchdog.py). 120 s: the longest silence with work pending is one long prefill
    # alone; the first 4,000-token prefill after start took 37 s on 2 CPU cores (SmolLM2-135M; 7.3 s
    # later), a GPU prefill of a 128k-token prompt on a 70B model tens of seconds; SGLang's own
    # watchdog waits 300 s.
    engine_stall_timeout: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Seconds without engine output while requests are pending (or for an idle canary to "
        "answer) before the engine counts as stalled: /health 503, detach, exit 1. 0 turns the watchdog off.",
    )
    engine_canary_interval: float = Field(
        30.0, ge=0, le=3600, description="Idle seconds between one-token canary generations; 0: no canary."
    )
    keep_alive_timeout: int = Field(620, ge=1, description="HTTP keep-alive (s); above GCP's 600 s backend keep-alive.")
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated API keys; when set, /v1/* needs 'Authorization: Bearer <key>'."
    )
    cors_allow_origins: str | None = Field(
        None, description="Comma-separated CORS origins ('*' for any); off if unset."
    )
    max_concurrent_requests: int = Field(
        256, ge=1, description="Generation requests admitted at once (running + queued); more get 429."
    )
    max_n: int = Field(
        8, ge=1, le=128, description="Most sequences one request may ask for: n x prompts (completions batches)."
    )
    max_completion_tokens: int | None = Field(
        None, ge=1, description="Largest max_tokens a request may ask for; default: the context length."
    )
    allow_request_fields: str | None = Field(
        None,
        description="Comma-separated request fields refused by default to let through (e.g. stop_regex); "
        "checked against the bounds table at start (openai/request_bounds.py).",
    )
    max_request_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Larger bodies get 413.")
    request_body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a request body may take to arrive; then 408."
    )
    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a connection may take to send its request headers; then closed."
    )
    max_connections: int = Field(
        2048, ge=16, description="Open connections + running requests before new ones get 503 (uvicorn)."
    )
    sglang_extensions: bool = Field(
        False,
        description="Keep SGLang's own response fields that collide with OpenAI's (the weight versions it puts in "
        "metadata) under the key sglext; off: left out, as OpenAI's spec has no place for them.",
    )
    enable_engine_metrics: bool = Field(False, description="Add SGLang's own engine metrics to /metrics.")
    response_store_max_items: int = Field(
        1000, ge=1, le=1_000_000, description="Stored Responses kept (retrieve, previous_response_id); oldest go first."
    )
    response_store_max_age: float = Field(3600.0, gt=0, le=7 * 86400, description="Seconds a stored Response is kept.")

    # --- Logging ---
    log_level: LogLevel = Field("INFO", description="DEBUG also logs prompt text.")
    log_format: LogFormat = Field("text", description="text (the seed's format) or json (one object per line).")
    log_file: Path | None = Field(Path("serve_hathora.log"), description="Rotating log file; empty: none.")
    log_file_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    log_file_backup_count: int = Field(3, ge=0)

    @field_validator("chat_template")
    @classmethod
    def _template_file_exists(cls, value: str | None) -> str | None:
        # A name ("chatml", ...) is SGLang's to know; a path must be there now, not fail the load later.
        if value and (value.endswith((".jinja", ".json")) or "/" in value) and not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("log_level", "device", "neg_mode", "log_format", "engine_forkserver", mode="before")
    @classmethod
    def _normalise_case(cls, value: object, info) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("model_cache_dir", "log_file")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("model_path")
    @classmethod
    def _local_model_path_exists(cls, value: str | None) -> str | None:
        # A hub id ("org/name") is checked by the engine; a filesystem path can be checked now.
        if value and value.startswith(("/", "./", "../", "~")) and not Path(value).expanduser().is_dir():
            raise ValueError(f"no such model folder: {value}")
        return str(Path(value).expanduser()) if value and value.startswith("~") else value

    @field_validator("api_keys")
    @classmethod
    def _some_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _split(value.get_secret_value()):
            raise ValueError("holds no key (comma-separated keys expected); unset it to turn authentication off")
        return value

    @cached_property
    def model_name(self) -> str:
        """The name clients see in /v1/models and in responses."""
        if self.served_model_name:
            return self.served_model_name
        return self.model_path or "SmolLM2-135M-Instruct"

    def accepted_model_names(self) -> frozenset[str]:
        return frozenset({self.model_name, MODEL_ALIAS})

    def api_key_list(self) -> list[bytes]:
        if self.api_keys is None:
            return []
        return [key.encode() for key in _split(self.api_keys.get_secret_value())]

    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_allow_origins or "")

    def allowed_request_fields(self) -> list[str]:
        return _split(self.allow_request_fields or "")

    def neg_name_templates(self) -> list[str]:
        if self.neg_names:
            return _split(self.neg_names)
        return ["llm-serve-{zone}" if self.neg_mode == "zonal" else "llm-serve-{region}"]

    def registration_missing(self) -> list[str]:
        """The variables that registration needs and that are not set (empty: registration is on)."""
        needed = {
            "HATHORA_HOSTNAME": self.hathora_hostname,
            "HATHORA_DEFAULT_PORT": self.hathora_default_port,
            "GCP_SERVICE_ACCOUNT_KEY_BASE64": self.gcp_service_account_key_base64,
        }
        return [name for name, value in needed.items() if value is None]


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad variable, what was wrong and what it got (never secret values)."""
    parts = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        got = "" if "secret" in name.lower() or "key" in name.lower() else f" (got {item.get('input')!r})"
        parts.append(f"{name}: {item['msg']}{got}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        print(describe_validation_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
