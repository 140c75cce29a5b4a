"""Where a generation request is turned from bytes into a checked SGLang request, in this order:
body (type, size, deadline) -> refused headers -> counts checked on the raw JSON (before pydantic
builds thousands of objects on the loop) -> SGLang's pydantic model -> served model name -> the
bounds table (request_bounds.py) -> sequences (prompts x n) -> size against the context
(prompt_size.py). Nothing reaches the engine before all of it passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel

from sglang_hathora.engine.sglang_adapter import Kind
from sglang_hathora.errors import ApiError
from sglang_hathora.openai.prompt_size import PromptSizer, chat_texts, completion_prompts
from sglang_hathora.openai.request_bounds import (
    CHAT_RULES,
    COMPLETION_RULES,
    RESPONSES_RULES,
    Limits,
    Problem,
    Rule,
    check_fields,
    sequences,
)
from sglang_hathora.openai.request_limits import read_json_object, validate_model
from sglang_hathora.openai.response_checks import response_texts
from sglang_hathora.settings import Settings

# SGLang lets these headers set engine fields (request_headers.py): a client could pick another
# request's engine id or a routing target. They are for a router in front of SGLang, not clients.
_REFUSED_HEADER_PREFIX = "x-override-"
_MAX_TOKEN_FIELDS = frozenset({"max_tokens", "max_completion_tokens"})


@dataclass(frozen=True)
class Checked:
    request: Any
    sequences: int


def limits_for(settings: Settings, context_length: int, vocab_size: int) -> Limits:
    cap = settings.max_completion_tokens or context_length
    return Limits(
        context_length=context_length,
        vocab_size=vocab_size,
        max_n=settings.max_n,
        max_completion_tokens=min(cap, context_length),
        allowed_fields=frozenset(settings.allowed_request_fields()),
        model_names=tuple(sorted(settings.accepted_model_names())),
    )


class RequestChecker:
    def __init__(self, settings: Settings, limits: Limits, sizer: PromptSizer, models: dict[Kind, type[BaseModel]]):
        self.settings = settings
        self.limits = limits
        self.sizer = sizer
        self.models = models
        self.rules: dict[Kind, dict[str, Rule]] = {
            "chat": CHAT_RULES,
            "completion": COMPLETION_RULES,
            "response": RESPONSES_RULES,
        }

    async def parse(self, kind: Kind, raw_request: Request) -> Checked:
        """The checked request, or ApiError with the first thing wrong with it."""
        settings = self.settings
        for name in raw_request.headers:
            if name.lower().startswith(_REFUSED_HEADER_PREFIX):
                raise ApiError(f"The header '{name}' is not accepted by this server.", param=name)
        payload = await read_json_object(raw_request, settings.max_request_body_bytes, settings.request_body_timeout)
        if problem := self._raw_counts(payload):
            raise _as_error(problem)
        request = validate_model(payload, self.models[kind])
        if "model" not in request.model_fields_set:
            request.model = settings.model_name  # one model here: a request may leave it out
        if request.model not in settings.accepted_model_names():
            raise ApiError(
                f"The model '{request.model}' does not exist; this server serves "
                f"'{settings.model_name}' (alias 'sglang').",
                404,
                param="model",
                code="model_not_found",
            )
        if problem := check_fields(request, self.rules[kind], self.limits):
            raise _as_error(problem)
        count = sequences(request)
        if count > self.limits.max_n:
            raise ApiError(
                f"This request asks for {count} sequences (prompts x n); at most {self.limits.max_n} per request.",
                param="n" if (request.n or 1) > 1 else "prompt",
            )
        if problem := await self._size(kind, request):
            raise _as_error(problem)
        if kind == "response":
            if settings.max_completion_tokens and request.max_output_tokens is None:
                request.max_output_tokens = self.limits.max_completion_tokens
            return Checked(request, count)
        asked = [request.__dict__.get(name) for name in _MAX_TOKEN_FIELDS]  # __dict__: max_tokens is deprecated
        if settings.max_completion_tokens and (kind == "completion" or not any(asked)):
            # The server's cap is also the default: otherwise a chat runs until EOS or a full context,
            # and a completion asks SGLang's default of 16.
            cap = min(settings.max_completion_tokens, self.limits.max_completion_tokens)
            if kind == "chat":
                request.max_completion_tokens = cap
            elif "max_tokens" not in request.model_fields_set:
                request.max_tokens = min(cap, request.max_tokens)
        return Checked(request, count)

    def _raw_counts(self, payload: dict) -> Problem | None:
        """List lengths checked before pydantic validates each item (100k messages fit in 8 MiB)."""
        prompt = payload.get("prompt")
        for name in ("messages", "input"):
            items = payload.get(name)
            if isinstance(items, list) and len(items) > self.limits.context_length:
                return Problem(
                    name,
                    f"'{name}' holds {len(items)} {'messages' if name == 'messages' else 'items'}; "
                    f"the context holds {self.limits.context_length} tokens.",
                    "context_length_exceeded",
                )
        if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) and len(prompt) > self.limits.max_n:
            return Problem("prompt", f"'prompt' holds {len(prompt)} prompts; at most {self.limits.max_n} per request.")
        return None

    async def _size(self, kind: Kind, request: Any) -> Problem | None:
        if kind == "response":
            return await self.sizer.check(response_texts(request), "input")
        if kind == "chat":
            if request.input_ids is not None:
                return None  # bounded by the table: at most context-length ids
            return await self.sizer.check(chat_texts(request), "messages")
        for prompt in completion_prompts(request):
            if problem := await self.sizer.check([prompt], "prompt"):
                return problem
        return None


def _as_error(problem: Problem) -> ApiError:
    """A bounds rule's verdict (a plain value, so the rules stay pure) as the error a client gets."""
    return ApiError(problem.message, param=problem.param, code=problem.code)
