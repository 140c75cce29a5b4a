"""All configuration, read from the environment in one place: the ``Settings`` class.

Nothing else in the project reads os.environ. Invalid values stop the process at start with one
line naming the variable (``configuration.load_settings_or_exit``), never a traceback.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
Device = Literal["auto", "cuda", "cpu"]
NegMode = Literal["regional", "global", "zonal"]

# What the seed's client examples send as the model name; accepted beside the served name.
MODEL_ALIAS = "sglang"


def _doc(description: str, shown_default: str) -> dict:
    """A field's row in the docs, with its default as the docs show it where it is computed elsewhere."""
    return {"description": description, "json_schema_extra": {"docs_default": shown_default}}


class Settings(BaseSettings):
    # env_ignore_empty: `docker run -e X=` and .env files produce empty strings; they mean "not set".
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, env_ignore_empty=True)

    # Each field's description is its row in docs/configuration.md (scripts/docs_tables.py); a default
    # computed elsewhere is written for the docs with ``_doc``.

    # --- Hathora (injected by Hathora; all optional when running locally) ---
    hathora_hostname: str | None = Field(None, description="Public hostname of this process (injected by Hathora).")
    hathora_default_port: int | None = Field(
        None, ge=1, le=65535, description="Public port Hathora maps to `PORT`; advertised, never listened on."
    )
    hathora_region: str | None = Field(
        None, description="Hathora region (`Seattle`, `London`, ...); in `/health` and `X-Hathora-Region`."
    )
    hathora_process_id: str | None = Field(
        None, description="Hathora process id, in the start-up log line and `X-Hathora-Process-Id`."
    )
    gcp_service_account_key_base64: SecretStr | None = Field(
        None, description="Base64 of a GCP service-account JSON key (NEG registration); never logged."
    )

    # --- GCP network endpoint group (NEG) registration; on when HATHORA_HOSTNAME,
    # HATHORA_DEFAULT_PORT and GCP_SERVICE_ACCOUNT_KEY_BASE64 are all set ---
    neg_mode: NegMode = Field(
        "regional",
        description="`regional` or `global` (`INTERNET_FQDN_PORT`: hostname and port) or `zonal` "
        "(`GCE_VM_IP_PORT`: a VM of your project); see [Deploying](deploying.md#3-the-gcp-side).",
    )
    neg_names: str | None = Field(
        None, **_doc("NEG names, comma-separated; `{region}` (`{zone}` if zonal) filled in.", "`llm-serve-{region}`")
    )
    gcp_project_id: str | None = Field(None, **_doc("Project of the NEGs.", "the key's `project_id`"))
    gcp_region: str | None = Field(None, **_doc("Region of the NEGs.", "mapped from `HATHORA_REGION`"))
    gcp_api_endpoint: str | None = Field(
        None, description="Compute API endpoint override (tests); unset in production."
    )
    neg_registration_required: bool = Field(
        False, description="Exit non-zero when the attach keeps failing for `NEG_ATTACH_DEADLINE` seconds."
    )
    neg_attach_deadline: float = Field(
        60.0, gt=0, description="Seconds of failed attaching before a required registration gives up."
    )
    neg_detach_budget: float = Field(2.0, gt=0, le=30, description="Seconds for detaching from all NEGs at stop.")
    neg_call_timeout: float = Field(10.0, gt=0, le=600, description="Timeout of one Compute API call, in seconds.")
    neg_recheck_interval: float = Field(
        60.0, ge=0, description="Seconds between checks that the endpoint is still attached (0: never)."
    )

    # --- Model and engine ---
    model_path: str | None = Field(
        None,
        **_doc(
            "A local checkpoint folder, a Hugging Face id, or a Cloud Storage folder (`gs://bucket/path`: the "
            "weights streamed, [Deploying](deploying.md#weights-from-cloud-storage)).",
            "the bundled SmolLM2-135M-Instruct",
        ),
    )
    served_model_name: str | None = Field(
        None, **_doc("The name in `/v1/models` and in responses; requests may also say `sglang`.", "`MODEL_PATH`")
    )
    tp_size: int = Field(1, ge=1, le=64, description="Tensor-parallel degree (GPUs per model).")
    max_total_tokens: int | None = Field(
        None,
        ge=256,
        **_doc("KV-cache pool shared by **all** requests, in tokens (not per request).", "SGLang's; 4096 on CPU"),
    )
    context_length: int | None = Field(
        None, ge=16, **_doc("Longest prompt + completion of one request, in tokens.", "the model's; 4096 on CPU")
    )
    mem_fraction_static: float | None = Field(
        None,
        gt=0,
        lt=1,
        **_doc("Share of memory for weights + KV cache (host RAM on CPU).", "SGLang's on GPU; 0.25 on CPU"),
    )
    device: Device = Field(
        "auto",
        description="`auto`, `cuda` or `cpu`; `auto` is the CPU at once where no GPU driver device file exists, "
        "else torch decides.",
    )
    sleep_on_idle: bool = Field(True, description="Let the idle engine sleep instead of busy-polling a core.")
    random_seed: int | None = Field(None, description="Engine random seed.")
    deterministic_inference: bool = Field(
        False,
        description="The same text for the same request at temperature 0, whatever traffic came before: SGLang's "
        "deterministic mode on GPU; on CPU the prefix cache off (see [the API](api.md#reproducible-answers-at-"
        "temperature-0)).",
    )
    engine_forkserver: Literal["auto", "on", "off"] = Field(
        "auto",
        description="`auto`, `on` or `off`: SGLang's scheduler and detokenizer forked from a forkserver that "
        "imported SGLang while the server did, instead of fresh interpreters that import it again (see "
        "[Start-up](lifecycle.md#start-up)); `auto` is on for the CPU only (a fork after CUDA's initialisation "
        "cannot work, and the GPU path is not verified).",
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "sglang-hathora",
        **_doc("Where the bundled model is converted and kept.", "`~/.cache/sglang-hathora`"),
    )

    # --- HTTP server ---
    host: str = Field("0.0.0.0", description="Listen address.")
    port: int = Field(8000, ge=1, le=65535, description="Listen (container) port.")
    drain_timeout: float = Field(
        8.0, ge=0, le=3600, description="Seconds in-flight requests may take to finish after SIGTERM."
    )
    tool_call_parser: str | None = Field(
        None,
        **_doc("SGLang's tool-call parser (`llama3`, `qwen25`, `mistral`, ...) or `off`.", "by the model's family"),
    )
    reasoning_parser: str | None = Field(
        None,
        **_doc("SGLang's reasoning parser (`qwen3`, `deepseek-r1`, `gpt-oss`, ...) or `off`.", "by the model's family"),
    )
    chat_template: str | None = Field(
        None, **_doc("A Jinja file (must exist at start) or a chat template name SGLang knows.", "the model's")
    )
    # 120 s: the longest silence with work pending is one long prefill (watchdog.py has the figures).
    engine_stall_timeout: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Stall watchdog: seconds without engine output while requests are pending, or for an idle "
        "one-token canary to answer; then `/health` 503 `stalled`, detach, exit 1. `0` turns it off.",
    )
    engine_canary_interval: float = Field(
        30.0, ge=0, le=3600, description="Idle seconds between one-token canaries (`0`: no canary)."
    )
    keep_alive_timeout: int = Field(
        620,
        ge=1,
        description="HTTP keep-alive in seconds, above the GCP load balancer's 600 s backend keep-alive (a shorter "
        "one gives sporadic 502s on reused connections).",
    )
    api_keys: SecretStr | None = Field(
        None, **_doc("Comma-separated keys; when set, `/v1/*` needs `Authorization: Bearer <key>`.", "unset (open)")
    )
    cors_allow_origins: str | None = Field(
        None, **_doc("Comma-separated origins allowed by CORS (`*` for any).", "unset (CORS off)")
    )
    max_concurrent_requests: int = Field(
        256, ge=1, description="Sequences admitted at once (running + queued; `n` x prompts each); more get 429."
    )
    max_n: int = Field(
        8, ge=1, le=128, description="Most sequences one request may ask for: `n` x prompts (of a completions batch)."
    )
    max_completion_tokens: int | None = Field(
        None,
        ge=1,
        **_doc("Largest `max_tokens` a request may ask for (400 above), and its default.", "the context length"),
    )
    allow_request_fields: str | None = Field(
        None,
        description="Comma-separated request fields refused by default to let through (the refused rows of "
        "[the bounds table](request-bounds.md)).",
    )
    max_request_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body in bytes; larger get 413."
    )
    request_body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a request body may take to arrive; then 408."
    )
    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a connection may take to send a request's headers; then it is closed."
    )
    max_connections: int = Field(2048, ge=16, description="Open connections + running requests; past it 503 at once.")
    sglang_extensions: bool = Field(
        False,
        description="Keep SGLang's own response fields that collide with OpenAI's (weight versions in `metadata`) "
        "under the key `sglext`; off, they are left out.",
    )
    enable_engine_metrics: bool = Field(False, description="Add SGLang's own engine metrics to `/metrics`.")
    response_store_max_items: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Stored Responses kept for retrieve and `previous_response_id`; the oldest go first.",
    )
    response_store_max_age: float = Field(3600.0, gt=0, le=7 * 86400, description="Seconds a stored Response is kept.")

    # --- Logging ---
    log_level: LogLevel = Field(
        "INFO", description="`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` (`DEBUG` also logs prompts)."
    )
    log_format: LogFormat = Field(
        "text", description="`text` or `json` (one object per line, with `request_id`); [Logging](observability.md)."
    )
    log_file: Path | None = Field(Path("serve_hathora.log"), description="Rotating log file; empty for stdout only.")
    log_file_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Size in bytes at which the log file rotates."
    )
    log_file_backup_count: int = Field(3, ge=0, description="Rotated log files kept.")

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
