"""Logging set-up (the seed's format, stdout + a size-bounded rotating file) and generation logs."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from dataclasses import dataclass, field

from sglang_hathora.settings import Settings

LOGGER_NAME = "serve_hathora"
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"

logger = logging.getLogger(LOGGER_NAME)


def configure_logging(settings: Settings) -> None:
    """Idempotent: replaces the handlers it installed before (tests configure more than once)."""
    formatter = logging.Formatter(LOG_FORMAT)
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
        logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logger.propagate = False


@dataclass
class GenerationTimer:
    """Times one generation as seen at the HTTP boundary and logs the seed's summary line."""

    request_id: str
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None

    def mark_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

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


def _or_unknown(value: int | None) -> str:
    return "unknown" if value is None else str(value)
