"""Our wrapper around SGLang's own OpenAI serving layer (protocol, chat template, tools, usage...).

SGLang's OpenAIServingChat/OpenAIServingCompletion do the protocol; this module adds what is ours:
accepting the "sglang" alias, one request id used as the engine rid and the response id, nested
errors, and a generation log line with TTFT and tokens/s measured at the HTTP boundary. SGLang is
imported only once the engine exists (it takes ~10 s to import; the port must bind first).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from sglang_hathora.errors import error_response, from_sglang_error, streaming_error_event
from sglang_hathora.observability import GenerationTimer, logger
from sglang_hathora.settings import Settings


@dataclass(frozen=True)
class Endpoint:
    handler: Any  # an sglang OpenAIServingBase
    request_model: type[BaseModel]
    id_prefix: str


class OpenAIServing:
    """The SGLang serving objects, mounted on our engine's tokenizer and template managers."""

    def __init__(self, engine: Any, settings: Settings) -> None:
        from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest, CompletionRequest
        from sglang.srt.entrypoints.openai.serving_completions import OpenAIServingCompletion

        tokenizer_manager, template_manager = engine.tokenizer_manager, engine.template_manager
        self.settings = settings
        self.tokenizer_manager = tokenizer_manager
        self.chat = Endpoint(
            tokenizer_manager.serving_chat_class(tokenizer_manager, template_manager),
            ChatCompletionRequest,
            "chatcmpl-",
        )
        self.completion = Endpoint(
            OpenAIServingCompletion(tokenizer_manager, template_manager), CompletionRequest, "cmpl-"
        )
        self.context_length: int = tokenizer_manager.model_config.context_len

    async def handle(self, endpoint: Endpoint, raw_request: Request) -> Response:
        parsed = await parse_body(raw_request, endpoint.request_model)
        if isinstance(parsed, Response):
            return parsed
        request = parsed
        if request.model not in self.settings.accepted_model_names():
            return error_response(
                f"The model '{request.model}' does not exist; this server serves "
                f"'{self.settings.model_name}' (alias 'sglang').",
                404,
                param="model",
                code="model_not_found",
            )
        # SGLang would read "sglang" as a LoRA adapter name; it only knows the served name.
        request.model = self.settings.model_name
        request_id = f"{endpoint.id_prefix}{uuid.uuid4().hex}"
        request.rid = request_id
        _log_request(request, request_id)

        client_wants_usage = False
        if request.stream:
            from sglang.srt.entrypoints.openai.protocol import StreamOptions

            # Ask SGLang for the final usage chunk always, for our log line; it is passed on only
            # when the client asked (older clients crash on a chunk with empty choices).
            client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
            options = request.stream_options or StreamOptions()
            options.include_usage = True
            request.stream_options = options

        timer = GenerationTimer(request_id, stream=bool(request.stream))
        result = await endpoint.handler.handle_request(request, raw_request)
        if isinstance(result, StreamingResponse):
            result.body_iterator = self._observe_stream(result.body_iterator, timer, request_id, client_wants_usage)
            # SGLang attaches a task that aborts the rid 2 s after the stream; _observe_stream aborts
            # at once when the stream is cut, and the delayed task kept each response open 2 s longer.
            result.background = None
            return result
        if isinstance(result, BaseModel):
            body = result.model_dump(mode="json", by_alias=True)
            usage = body.get("usage") or {}
            reasons = [choice.get("finish_reason") for choice in body.get("choices", [])]
            timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), ",".join(map(str, reasons)))
            return JSONResponse(body)
        if isinstance(result, Response) and result.status_code >= 400:
            logger.info("[%s] Rejected with status %d", request_id, result.status_code)
            return from_sglang_error(result.body, result.status_code)
        return result

    async def _observe_stream(
        self, chunks: AsyncIterator[Any], timer: GenerationTimer, request_id: str, client_wants_usage: bool
    ) -> AsyncIterator[str]:
        usage: dict[str, Any] = {}
        finish_reason: str | None = None
        completed = False
        try:
            async for chunk in chunks:
                text = chunk if isinstance(chunk, str) else chunk.decode()
                event = _parse_event(text)
                if event is not None:
                    if event.get("usage") and not event.get("choices"):
                        usage = event["usage"]
                        if not client_wants_usage:
                            continue
                    for choice in event.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                            timer.mark_token()
                        finish_reason = choice.get("finish_reason") or finish_reason
                elif text.startswith("data: [DONE]"):
                    completed = True
                yield text
        except Exception as exc:  # noqa: BLE001 - a failure mid-stream must reach the client as an error
            logger.exception("[%s] Stream failed", request_id)
            yield streaming_error_event(f"Generation failed: {type(exc).__name__}: {exc}")
            yield "data: [DONE]\n\n"
            finish_reason = "error"
        finally:
            if not completed and finish_reason != "error":
                # The client went away (or the server is stopping): free the engine's slot now
                # rather than let an abandoned generation run on to max_tokens.
                self.tokenizer_manager.abort_request(rid=request_id)
                finish_reason = "abort"
            timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), finish_reason)


def _parse_event(text: str) -> dict[str, Any] | None:
    if not text.startswith("data: {"):
        return None
    try:
        event = orjson.loads(text[len("data: ") :])
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


async def parse_body(raw_request: Request, model: type[BaseModel]) -> BaseModel | Response:
    """JSON object -> pydantic request, or a 400 in OpenAI's shape naming the bad field."""
    try:
        payload = orjson.loads(await raw_request.body())
    except orjson.JSONDecodeError as exc:
        return error_response(f"The request body is not valid JSON: {exc}", 400)
    if not isinstance(payload, dict):
        return error_response("The request body must be a JSON object.", 400)
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        return error_response(f"Invalid value for '{param}': {first['msg']}", 400, param=param)


def _log_request(request: Any, request_id: str) -> None:
    messages = getattr(request, "messages", None)
    max_tokens = getattr(request, "max_completion_tokens", None) or getattr(request, "max_tokens", None)
    if messages is not None:
        logger.info(
            "Chat completion request: model=%s, messages=%d, max_tokens=%s, stream=%s",
            request.model,
            len(messages),
            max_tokens,
            bool(request.stream),
        )
        logger.debug("[%s] messages: %s", request_id, [m.model_dump(exclude_none=True) for m in messages])
    else:
        logger.info(
            "Completion request: model=%s, max_tokens=%s, stream=%s", request.model, max_tokens, bool(request.stream)
        )
        logger.debug("[%s] prompt: %r", request_id, request.prompt)
    logger.info("[%s] Starting generation", request_id)
