"""Logging (the seed's text format or JSON lines; stdout + a size-bounded rotating file), the
request id every log line about a request carries, and the per-generation timing summary."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import logging.config
import logging.handlers
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sglang_hathora.settings import Settings

if TYPE_CHECKING:
    from sglang_hathora.metrics import Metrics

LOGGER_NAME = "serve_hathora"
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"

logger = logging.getLogger(LOGGER_NAME)
# The id of the request being handled; set by the request middleware, inherited by its tasks.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# Control characters (and Unicode line separators) in anything logged are shown escaped, so that a
# request path such as "/x%0A2099-01-01 ... ERROR ..." cannot write a forged line into the log.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """The seed's text format, one line per record: the message escaped, traceback lines indented.
    Library loggers show as their package ("sglang", "uvicorn"), not their module path."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        name = record.name
        record.name = name.split(".", 1)[0] if name.startswith(("sglang.", "uvicorn.")) else name
        try:
            return super().formatMessage(record)
        finally:
            record.name = name

    def formatException(self, ei) -> str:
        return "\n".join("    " + escape_controls(line) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("    " + escape_controls(line) for line in stack_info.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the text format's fields, plus the request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": self.formatTime(record),
            "logger": record.name,
            "level": record.levelname,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# SGLang's start-up chatter, shown at DEBUG only: at INFO a start-up reads one line per phase
# (startup.py). server_args= alone is about 9,000 characters; the rest is expected on CPU.
_DEMOTED = (
    "server_args=",
    "Ignore import error when loading",
    "Signal handler is not added",
    "Fail to set RLIMIT_NOFILE",
    "Cuda graph is disabled",
    "Disable prefill CUDA graph",
    "Cannot detect CUDA architecture",
    "init_cpu_threads_env",
    "init_threads_binding",
    "Init parallel",
    "Memory baseline taken",
    "Using default HuggingFace chat template",
    "kill_process_tree called",
)


class DemoteNoise(logging.Filter):
    """On the root logger's handler, in this process and in SGLang's children (its logging config
    names this class): library warnings (warnings.warn) and SGLang's start-up chatter become DEBUG
    records, dropped below ``threshold``."""

    def __init__(self, threshold: str = "INFO") -> None:
        super().__init__()
        self.threshold = logging.getLevelName(threshold)
        logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger, in each process

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings" or (
            record.levelno < logging.ERROR and record.name.startswith("sglang") and str(record.msg).startswith(_DEMOTED)
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.threshold


def library_logging_config(settings: Settings) -> dict:
    """The root logger's configuration (uvicorn's and SGLang's lines, in every process): stdout, our
    format. SGLang's processes load it through SGLANG_LOGGING_CONFIG_PATH."""
    formatter = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.log_format == "json"
        else {
            "()": f"{__name__}.TextFormatter",
            "fmt": LOG_FORMAT,
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ours": formatter},
        "filters": {"demote": {"()": f"{__name__}.DemoteNoise", "threshold": settings.log_level}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "ours",
                "filters": ["demote"],
            }
        },
        # SGLang's own DEBUG is a flood (engine.py passes it "info" then); ours is the filter's threshold.
        "root": {"level": "INFO" if settings.log_level == "DEBUG" else settings.log_level, "handlers": ["stdout"]},
    }


def _share_with_sglang(config: dict) -> None:
    current = os.environ.get("SGLANG_LOGGING_CONFIG_PATH")
    if current and not current.startswith(_CONFIG_PREFIX):
        return  # the operator's own configuration for SGLang is kept
    with tempfile.NamedTemporaryFile("w", prefix=_CONFIG_PREFIX, suffix=".json", delete=False) as file:
        json.dump(config, file)
    atexit.register(lambda path=file.name: os.path.exists(path) and os.unlink(path))
    os.environ["SGLANG_LOGGING_CONFIG_PATH"] = file.name  # inherited by SGLang's children


def _quiet_children_warnings(level: str) -> None:
    # SGLang's children import their modules (and warn: AWQ, GGUF, Triton on CPU) before they load
    # the logging config, so their warnings bypass DemoteNoise: below DEBUG they are not shown.
    current = os.environ.get("PYTHONWARNINGS", "")
    entries = [entry for entry in current.split(",") if entry and entry != _IGNORE_USER_WARNINGS]
    if level != "DEBUG":
        entries.append(_IGNORE_USER_WARNINGS)
    os.environ["PYTHONWARNINGS"] = ",".join(entries)


_IGNORE_USER_WARNINGS = "ignore::UserWarning"


_CONFIG_PREFIX = os.path.join(tempfile.gettempdir(), "sglang-hathora-logging-")


def configure_logging(settings: Settings) -> None:
    """Idempotent: replaces the handlers it installed before (tests configure more than once)."""
    library_config = library_logging_config(settings)
    logging.config.dictConfig(library_config)
    _share_with_sglang(library_config)
    _quiet_children_warnings(settings.log_level)
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.log_file,
                maxBytes=settings.log_file_max_bytes,
                backupCount=settings.log_file_backup_count,
                encoding="utf-8",
            )
        )
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_RequestIdFilter())
        logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logger.propagate = False


@dataclass
class GenerationTimer:
    """Times one generation as seen at the HTTP boundary: the seed's summary line and the metrics."""

    request_id: str
    metrics: Metrics | None = None
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    last_token_at: float | None = None

    def mark_token(self) -> None:
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
            if self.metrics:
                self.metrics.ttft.observe(now - self.started)
        elif self.metrics and self.last_token_at is not None:
            self.metrics.itl.observe(now - self.last_token_at)
        self.last_token_at = now

    def finish(self, prompt_tokens: int | None, completion_tokens: int | None, finish_reason: str | None) -> None:
        elapsed = time.perf_counter() - self.started
        parts = [f"[{self.request_id}] Generation completed in {elapsed * 1000:.1f}ms"]
        parts.append(f"prompt_tokens={_or_unknown(prompt_tokens)}")
        parts.append(f"completion_tokens={_or_unknown(completion_tokens)}")
        if self.first_token_at is not None:
            ttft = self.first_token_at - self.started
            parts.append(f"ttft={ttft * 1000:.1f}ms")
            decode_time = elapsed - ttft
            if completion_tokens and completion_tokens > 1 and decode_time > 0:
                parts.append(f"decode_tokens_per_s={(completion_tokens - 1) / decode_time:.1f}")
        if completion_tokens and elapsed > 0:
            parts.append(f"tokens_per_s={completion_tokens / elapsed:.1f}")
        parts.append(f"finish_reason={finish_reason}")
        logger.info(", ".join(parts))
        if self.metrics:
            self.metrics.e2e.observe(elapsed)
            self.metrics.prompt_tokens.inc(prompt_tokens or 0)
            self.metrics.completion_tokens.inc(completion_tokens or 0)


def _or_unknown(value: int | None) -> str:
    return "unknown" if value is None else str(value)
