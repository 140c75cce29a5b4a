"""Where our policy wraps SGLang's OpenAI serving: ``OpenAIServing``.

SGLang's serving classes do the protocol (chat template, tools, usage, streaming), reached through
the adapter (engine/sglang_adapter.py). What is ours is here: the checks of request_checks.py,
admission after them (weighted by sequences), the "sglang" alias, a fresh engine rid per request (a
client's X-Request-Id can never equal or prefix another request's engine id), the request id as the
response id, a 409 for an id already in progress, SGLang's errors in OpenAI's shape, aborting
abandoned generations at once, and the generation log line and metrics measured at the HTTP boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from sglang_hathora.engine import conformance
from sglang_hathora.engine.sglang_adapter import Kind, SGLangAdapter
from sglang_hathora.errors import GRAMMAR_FIELDS, ApiError, from_sglang_error
from sglang_hathora.metrics import Metrics
from sglang_hathora.observability import GenerationTimer, logger
from sglang_hathora.openai import tool_calls
from sglang_hathora.openai.admission import RETRY_AFTER_SECONDS, TICKET_KEY, Ticket
from sglang_hathora.openai.in_flight import InFlightTable
from sglang_hathora.openai.prompt_size import PromptSizer
from sglang_hathora.openai.request_checks import RequestChecker, limits_for
from sglang_hathora.openai.response_store import API_KEY_STATE, ResponseIds, ResponseStore
from sglang_hathora.openai.streams import observe_response_stream, observe_stream
from sglang_hathora.settings import Settings


class OpenAIServing:
    def __init__(self, adapter: SGLangAdapter, settings: Settings, metrics: Metrics) -> None:
        self.adapter = adapter
        self.settings = settings
        self.metrics = metrics
        self.context_length = adapter.context_length
        self.limits = limits_for(settings, self.context_length, adapter.vocab_size)
        sizer = PromptSizer(adapter.tokenizer, self.context_length)
        self.checker = RequestChecker(settings, self.limits, sizer, adapter.request_models)
        self.in_flight = InFlightTable(adapter, metrics)
        self.stored = ResponseStore(settings.response_store_max_items, settings.response_store_max_age)
        self.response_ids = ResponseIds(settings.hathora_process_id or "unknown", self.stored)
        if adapter.responses_unavailable is None:
            adapter.use_response_store(self.stored.responses, self.stored.messages)

    def openapi_bodies(self) -> dict[str, tuple[str, dict, dict]]:
        """The request bodies /openapi.json publishes: SGLang's models with our bounds."""
        from sglang_hathora.openai.openapi_schema import request_schema

        bodies = {}
        for path, kind in (("/v1/chat/completions", "chat"), ("/v1/completions", "completion")):
            model = self.adapter.request_models[kind]
            schema, definitions = request_schema(model, self.checker.rules[kind], self.limits)
            bodies[path] = (model.__name__, schema, definitions)
        return bodies

    async def handle(self, kind: Kind, raw_request: Request) -> Response:
        """One generation request, checked and admitted; raises ApiError for what a client did wrong."""
        request_id: str = raw_request.scope["state"]["request_id"]
        if kind == "response" and self.adapter.responses_unavailable:
            raise ApiError(f"The Responses API is unavailable here: {self.adapter.responses_unavailable}", 501)
        checked = await self.checker.parse(kind, raw_request)
        if request_id in self.in_flight:
            message = f"A request with X-Request-Id '{request_id}' is already in progress."
            raise ApiError(message, 409, param="X-Request-Id")
        ticket: Ticket | None = raw_request.scope["state"].get(TICKET_KEY)
        if ticket is not None and not ticket.take(checked.sequences):
            raise ApiError(
                f"The server is at its limit of {ticket.admission.limit} concurrent sequences; retry shortly.",
                429,
                code="rate_limit_exceeded",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        request = checked.request
        # SGLang would read "sglang" as a LoRA adapter name; it only knows the served name.
        request.model = self.settings.model_name
        if kind == "response":
            api_key = _api_key(raw_request)
            if request.previous_response_id:
                self.response_ids.require_here(request.previous_response_id, "previous_response_id", api_key)
            self.adapter.set_response_id(request, self.response_ids.new(api_key))  # also its engine rid
        else:
            request.rid = self.adapter.new_rid()
        _log_request(request, request_id)
        logger.debug("[%s] engine rid %s", request_id, getattr(request, "rid", None) or request.request_id)
        self.in_flight.add(request_id)
        try:
            response = await self._generate(kind, request, raw_request, request_id)
        except BaseException:
            self.in_flight.remove(request_id)
            raise
        if not isinstance(response, StreamingResponse):
            self.in_flight.remove(request_id)  # a stream leaves the table when it ends (observe_stream)
        return response

    async def _generate(self, kind: Kind, request: Any, raw_request: Request, request_id: str) -> Response:
        # Streams always end with SGLang's usage chunk, for our log line and metrics.
        client_wants_usage = request.stream and kind != "response" and self.adapter.always_report_usage(request)
        timer = GenerationTimer(request_id, self.metrics)
        if request.stream:
            result = await self.adapter.generate(kind, request, raw_request)
        else:
            result = await self._until_done_or_disconnected(kind, request, raw_request, request_id)
            if result is None:
                timer.finish(None, None, "abort")
                return Response(status_code=499)  # nobody is listening; the status is for the log line
        forced_tool_call = kind == "chat" and tool_calls.forced(request)
        if kind == "response":
            return self._response_result(result, request, request_id, timer)
        if isinstance(result, StreamingResponse):
            chunks = tool_calls.rewrite_stream(result.body_iterator) if forced_tool_call else result.body_iterator
            conform = conformance.chat_chunk if kind == "chat" else conformance.completion_chunk
            result.body_iterator = observe_stream(
                chunks, request_id, self.in_flight, timer, client_wants_usage, conform
            )
            return result
        if isinstance(result, BaseModel):
            body = result.model_dump(mode="json", by_alias=True)
            body["id"] = request_id
            if forced_tool_call:
                tool_calls.rewrite_response(body)
            usage = body.get("usage") or {}
            reasons = [choice.get("finish_reason") for choice in body.get("choices", [])]
            timer.finish(usage.get("prompt_tokens"), usage.get("completion_tokens"), ",".join(map(str, reasons)))
            if any(map(conformance.is_abort, reasons)):
                code, message = self.in_flight.abort_reason(request_id)
                raise ApiError(message, 503, code=code)
            conform = conformance.chat_body if kind == "chat" else conformance.completion_body
            return JSONResponse(conform(body, self.settings.sglang_extensions))
        if isinstance(result, Response) and result.status_code >= 400:
            logger.info("[%s] Rejected by the engine with status %d", request_id, result.status_code)
            raise from_sglang_error(
                result.body,
                result.status_code,
                tuple(name for name in self.checker.rules[kind] if name != "model"),
                _grammar_field(request) or ("messages" if kind == "chat" else "prompt"),
            )
        return result

    def _response_result(self, result: Any, request: Any, request_id: str, timer: GenerationTimer) -> Response:
        """What SGLang's Responses serving returned, as our response (its id names this process)."""
        if isinstance(result, StreamingResponse):
            result.body_iterator = observe_response_stream(result.body_iterator, request_id, self.in_flight, timer)
            return result
        if isinstance(result, BaseModel):
            body = result.model_dump(mode="json")
            usage = body.get("usage") or {}
            timer.finish(usage.get("input_tokens"), usage.get("output_tokens"), body.get("status"))
            if body.get("status") == "failed" and (reason := self.in_flight.abort_reason(request_id))[0] != "engine":
                raise ApiError(reason[1], 503, code=reason[0])
            return JSONResponse(conformance.response_body(body))
        raise from_sglang_error(result.body, result.status_code, tuple(self.checker.rules["response"]), "input")

    async def retrieve(self, response_id: str, raw_request: Request) -> Response:
        """GET /v1/responses/{id}: from this process's store, else the 404 that says why."""
        self.response_ids.require_here(response_id, "response_id", _api_key(raw_request))
        return self._stored(await self.adapter.retrieve_response(response_id))

    async def cancel(self, response_id: str, raw_request: Request) -> Response:
        """POST /v1/responses/{id}/cancel: every response here ran in the foreground, so it is over:
        the stored response comes back unchanged."""
        self.response_ids.require_here(response_id, "response_id", _api_key(raw_request))
        return self._stored(await self.adapter.cancel_response(response_id))

    def _stored(self, result: Any) -> Response:
        if isinstance(result, BaseModel):
            return JSONResponse(conformance.response_body(result.model_dump(mode="json")))
        raise from_sglang_error(result.body, result.status_code, ("response_id",))

    async def _until_done_or_disconnected(self, kind: Kind, request: Any, raw_request: Request, request_id: str) -> Any:
        """Run a non-streaming request; if its client goes away, abort it in the engine at once (SGLang's
        own check runs every 4 s: an abandoned request would hold its engine slot that long)."""
        task = asyncio.ensure_future(self.adapter.generate(kind, request, raw_request))
        gone = asyncio.ensure_future(_client_gone(raw_request))
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            self.in_flight.abort(request_id, "client_disconnected")
            return None
        finally:
            for pending in (gone, task):
                if not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pending


async def _client_gone(raw_request: Request) -> None:
    """Returns when the client has disconnected. The body is read by now, so the server's next ASGI
    message is ``http.disconnect``, sent when the connection closes: one wait, where polling
    ``is_disconnected`` every 0.1 s cost the HTTP process 5.6 ms of CPU per 1.3-s request (sequential
    one-token requests on this machine: 14.0 ms per request, 8.4 ms with this wait, launch_server 7.1)."""
    while (await raw_request.receive())["type"] != "http.disconnect":
        pass


def _api_key(raw_request: Request) -> int | None:
    """The API key (its index) a request came with; stored responses belong to it."""
    return raw_request.scope.get("state", {}).get(API_KEY_STATE)


def _log_request(request: Any, request_id: str) -> None:
    messages = getattr(request, "messages", None)
    max_tokens = next(
        (
            value
            for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")
            if (value := getattr(request, name, None))
        ),
        None,
    )
    if messages is not None:
        what = f"Chat completion request: model={request.model}, messages={len(messages)}"
    elif hasattr(request, "input"):
        items = 1 if isinstance(request.input, str) else len(request.input)
        what = f"Response request: model={request.model}, input items={items}, id={request.request_id}"
    else:
        what = f"Completion request: model={request.model}"
    logger.info("[%s] %s, max_tokens=%s, stream=%s", request_id, what, max_tokens, bool(request.stream))
    if messages is not None:
        logger.debug("[%s] messages: %s", request_id, [m.model_dump(exclude_none=True) for m in messages])
    elif hasattr(request, "input"):
        logger.debug("[%s] instructions: %r, input: %r", request_id, request.instructions, request.input)
    else:
        logger.debug("[%s] prompt: %r", request_id, request.prompt)
    logger.info("[%s] Starting generation", request_id)


def _grammar_field(request: Any) -> str | None:
    """The grammar field a request sets (an engine error about its grammar names it)."""
    return next((name for name in GRAMMAR_FIELDS if getattr(request, name, None) not in (None, [])), None)
