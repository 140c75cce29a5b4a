"""Our wrapper around SGLang's own OpenAI serving layer (protocol, chat template, tools, usage...).

SGLang's OpenAIServingChat/OpenAIServingCompletion do the protocol; this module adds what is ours:
the checks of request_checks.py, admission after them, the "sglang" alias, engine request ids of
our own (a fresh uuid per request: a client's X-Request-Id can never equal or prefix another
request's engine id, and aborts match exactly), the request id as the response id, nested errors,
aborting abandoned generations at once, and the generation log line and metrics measured at the
HTTP boundary. SGLang is imported only once the engine exists (its import takes ~10 s and the port
must bind first).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from sglang_hathora.admission import RETRY_AFTER_SECONDS, TICKET_KEY, Ticket
from sglang_hathora.engine_rids import engine_rids_of_this_request, record_engine_rids
from sglang_hathora.errors import GRAMMAR_FIELDS, client_fault, error_response, from_sglang_error, streaming_error_event
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import GenerationTimer, logger
from sglang_hathora.prompt_size import PromptSizer
from sglang_hathora.request_checks import Checked, Kind, RequestChecker, limits_for
from sglang_hathora.request_limits import RequestProblem
from sglang_hathora.settings import Settings
from sglang_hathora.tokenized_checks import refuse_empty_token_lists

# How often a non-streaming request checks that its client is still there. SGLang's own check runs
# every 4 s; abandoned requests would hold engine slots that long.
_DISCONNECT_POLL_SECONDS = 0.1
ABORT_MESSAGES = {
    "drain_timeout": "The server is shutting down and its drain timeout ended this generation; retry.",
    "engine": "The engine aborted this generation.",
}


@dataclass(frozen=True)
class Endpoint:
    kind: Kind
    handler: Any  # an sglang OpenAIServingBase
    request_model: type[BaseModel]


class OpenAIServing:
    """The SGLang serving objects, mounted on our engine's tokenizer and template managers."""

    def __init__(self, engine: Any, settings: Settings, metrics: Metrics) -> None:
        from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest, CompletionRequest
        from sglang.srt.entrypoints.openai.serving_completions import OpenAIServingCompletion

        tokenizer_manager, template_manager = engine.tokenizer_manager, engine.template_manager
        self.settings = settings
        self.metrics = metrics
        self.tokenizer_manager = tokenizer_manager
        self.chat = Endpoint(
            "chat", tokenizer_manager.serving_chat_class(tokenizer_manager, template_manager), ChatCompletionRequest
        )
        self.completion = Endpoint(
            "completion", OpenAIServingCompletion(tokenizer_manager, template_manager), CompletionRequest
        )
        model_config = tokenizer_manager.model_config
        self.context_length: int = model_config.context_len
        self.limits = limits_for(settings, self.context_length, model_config.vocab_size)
        self.checker = RequestChecker(
            settings,
            self.limits,
            PromptSizer(tokenizer_manager.tokenizer, self.context_length),
            {"chat": ChatCompletionRequest, "completion": CompletionRequest},
        )
        self.abort_reasons: dict[str, str] = {}
        self.active: dict[str, list[str]] = {}  # request id -> its engine rids, admitted and not finished
        record_engine_rids(tokenizer_manager)
        refuse_empty_token_lists(tokenizer_manager)

    def openapi_bodies(self) -> dict[str, tuple[str, dict, dict]]:
        """The request bodies /openapi.json publishes: SGLang's models with our bounds."""
        from sglang_hathora.openapi_schema import request_schema

        bodies = {}
        for path, endpoint in (("/v1/chat/completions", self.chat), ("/v1/completions", self.completion)):
            schema, definitions = request_schema(endpoint.request_model, self.checker.rules[endpoint.kind], self.limits)
            bodies[path] = (endpoint.request_model.__name__, schema, definitions)
        return bodies

    # ---- engine requests ----
    def engine_rids(self, request_id: str) -> list[str]:
        """The engine's rids for one request that are still in the engine: exactly those SGLang registered."""
        states = self.tokenizer_manager.rid_to_state
        return [rid for rid in self.active.get(request_id, ()) if rid in states]

    def abort(self, request_id: str, reason: str) -> bool:
        rids = self.engine_rids(request_id)
        for rid in rids:
            self.tokenizer_manager.abort_request(rid=rid)
        if rids:
            self.abort_reasons[request_id] = reason
            self.metrics.aborted.labels(reason).inc()
            logger.info("[%s] Aborted in the engine (%s)", request_id, reason.replace("_", " "))
        return bool(rids)

    def abort_all(self, reason: str) -> int:
        return sum(self.abort(request_id, reason) for request_id in list(self.active))

    # ---- requests ----
    async def handle(self, endpoint: Endpoint, raw_request: Request) -> Response:
        request_id: str = raw_request.scope["state"]["request_id"]
        parsed = await self.checker.parse(endpoint.kind, raw_request)
        if isinstance(parsed, Checked) and request_id in self.active:
            parsed = RequestProblem(
                f"A request with X-Request-Id '{request_id}' is already in progress.", status=409, param="X-Request-Id"
            )
        if isinstance(parsed, RequestProblem):
            if parsed.status >= 499:
                logger.info("[%s] %s", request_id, parsed.message)
            # The rest of an unread body could never be skipped: end the connection after the answer.
            closing = {"Connection": "close"} if parsed.status in (408, 413) else None
            return error_response(parsed.message, parsed.status, param=parsed.param, code=parsed.code, headers=closing)
        ticket: Ticket | None = raw_request.scope["state"].get(TICKET_KEY)
        if ticket is not None and not ticket.take(parsed.sequences):
            limit = ticket.admission.limit
            return error_response(
                f"The server is at its limit of {limit} concurrent sequences; retry shortly.",
                429,
                code="rate_limit_exceeded",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        request = parsed.request
        # SGLang would read "sglang" as a LoRA adapter name; it only knows the served name.
        request.model = self.settings.model_name
        request.rid = uuid.uuid4().hex
        _log_request(request, request_id)
        logger.debug("[%s] engine rid %s", request_id, request.rid)
        self.active[request_id] = engine_rids_of_this_request()
        try:
            response = await self._generate(endpoint, request, raw_request, request_id)
        except BaseException:
            self.active.pop(request_id, None)
            raise
        if not isinstance(response, StreamingResponse):
            # A stream leaves when it ends (_observe_stream).
            self.active.pop(request_id, None)
            self.abort_reasons.pop(request_id, None)
        return response

    async def _generate(self, endpoint: Endpoint, request: Any, raw_request: Request, request_id: str) -> Response:
        client_wants_usage = False
        if request.stream:
            from sglang.srt.entrypoints.openai.protocol import StreamOptions

            # Ask SGLang for the final usage chunk always, for our log line and metrics; it is passed
            # on only when the client asked (older clients crash on a chunk with empty choices).
            client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
            options = request.stream_options or StreamOptions()
            options.include_usage = True
            request.stream_options = options

        timer = GenerationTimer(request_id, self.metrics)
        if request.stream:
            result = await endpoint.handler.handle_request(request, raw_request)
        else:
            result = await self._until_done_or_disconnected(endpoint, request, raw_request, request_id)
            if result is None:
                timer.finish(None, None, "abort")
                return Response(status_code=499)  # nobody is listening; the status is for the log line
        if isinstance(result, StreamingResponse):
            result.body_iterator = self._observe_stream(result.body_iterator, timer, request_id, client_wants_usage)
            # SGLang attaches a task that aborts the rid 2 s after the stream; _observe_stream aborts
            # at once when the stream is cut, and the delayed task kept each response open 2 s longer.
            result.background = None
            return result
        if isinstance(result, BaseModel):
            body = result.model_dump(mode="json", by_alias=True)
            body["id"] = request_id
            usage = body.get("usage") or {}
            reasons = [choice.get("finish_reason") for choice in body.get("choices", [])]
            timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), ",".join(map(str, reasons)))
            if "abort" in reasons:
                reason = self.abort_reasons.pop(request_id, "engine")
                return error_response(_abort_message(reason), 503, code=reason)
            return JSONResponse(body)
        if isinstance(result, Response) and result.status_code >= 400:
            logger.info("[%s] Rejected by the engine with status %d", request_id, result.status_code)
            return from_sglang_error(
                result.body,
                result.status_code,
                tuple(name for name in self.checker.rules[endpoint.kind] if name != "model"),
                _grammar_field(request) or ("messages" if endpoint.kind == "chat" else "prompt"),
            )
        return result

    async def _until_done_or_disconnected(
        self, endpoint: Endpoint, request: Any, raw_request: Request, request_id: str
    ) -> Any:
        """Run a non-streaming request; if its client goes away, abort it in the engine at once."""
        task = asyncio.ensure_future(endpoint.handler.handle_request(request, raw_request))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_SECONDS)
                if done:
                    return task.result()
                if await raw_request.is_disconnected():
                    self.abort(request_id, "client_disconnected")
                    return None
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _observe_stream(
        self, chunks: AsyncIterator[Any], timer: GenerationTimer, request_id: str, client_wants_usage: bool
    ) -> AsyncIterator[str]:
        # Chunks carry an engine rid as their id (SGLang's own uuid per sequence when n > 1); clients
        # get the request id. Engine rids are 32 hex digits, optionally with a _index suffix.
        engine_id = re.compile('"id":"[0-9a-f]{32}(?:_[0-9]+)?"')
        response_id = f'"id":"{request_id}"'
        usage: dict[str, Any] = {}
        finish_reason: str | None = None
        completed = False
        try:
            async for chunk in chunks:
                text = chunk if isinstance(chunk, str) else chunk.decode()
                event = _parse_event(text)
                if event is not None and isinstance(error := event.get("error"), dict):
                    # SGLang's own error event is flat-ish ("object", "type": "BAD_REQUEST", code 400).
                    status = error.get("code") if isinstance(error.get("code"), int) else 500
                    message, status = client_fault(str(error.get("message")), status)
                    text, finish_reason = streaming_error_event(message, status), "error"
                elif event is not None:
                    if event.get("usage") and not event.get("choices"):
                        usage = event["usage"]
                        if not client_wants_usage:
                            continue
                    for choice in event.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                            timer.mark_token()
                        finish_reason = choice.get("finish_reason") or finish_reason
                    if finish_reason == "abort":
                        # An engine-side abort is not a normal end: the client must see an error.
                        reason = self.abort_reasons.pop(request_id, "engine")
                        yield streaming_error_event(_abort_message(reason), 503, reason)
                        yield "data: [DONE]\n\n"
                        completed = True
                        return
                elif text.startswith("data: [DONE]"):
                    completed = True
                yield engine_id.sub(response_id, text, count=1)
        except Exception as exc:  # noqa: BLE001 - a failure mid-stream must reach the client as an error
            logger.exception("[%s] Stream failed", request_id)
            yield streaming_error_event(f"Generation failed: {type(exc).__name__}: {exc}")
            yield "data: [DONE]\n\n"
            finish_reason = "error"
            completed = True
        finally:
            if not completed:
                # The client went away: free the engine's slot now rather than let an abandoned
                # generation run on to max_tokens.
                self.abort(request_id, "client_disconnected")
                finish_reason = "abort"
            self.active.pop(request_id, None)
            self.abort_reasons.pop(request_id, None)
            timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), finish_reason)


def _abort_message(reason: str) -> str:
    return ABORT_MESSAGES.get(reason, ABORT_MESSAGES["engine"])


def _parse_event(text: str) -> dict[str, Any] | None:
    if not text.startswith("data: {"):
        return None
    try:
        event = orjson.loads(text[len("data: ") :])
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _log_request(request: Any, request_id: str) -> None:
    messages = getattr(request, "messages", None)
    max_tokens = getattr(request, "max_completion_tokens", None) or getattr(request, "max_tokens", None)
    if messages is not None:
        logger.info(
            "[%s] Chat completion request: model=%s, messages=%d, max_tokens=%s, stream=%s",
            request_id,
            request.model,
            len(messages),
            max_tokens,
            bool(request.stream),
        )
        logger.debug("[%s] messages: %s", request_id, [m.model_dump(exclude_none=True) for m in messages])
    else:
        logger.info(
            "[%s] Completion request: model=%s, max_tokens=%s, stream=%s",
            request_id,
            request.model,
            max_tokens,
            bool(request.stream),
        )
        logger.debug("[%s] prompt: %r", request_id, request.prompt)
    logger.info("[%s] Starting generation", request_id)


def _grammar_field(request: Any) -> str | None:
    """The grammar field a request sets (an engine error about its grammar names it)."""
    return next((name for name in GRAMMAR_FIELDS if getattr(request, name, None) not in (None, [])), None)
