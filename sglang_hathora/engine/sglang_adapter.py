"""Where this server touches SGLang's insides: ``SGLangAdapter``, the one module that knows the
tokenizer manager, engine request ids, aborts, SGLang's OpenAI serving classes and the text of its
SSE chunks. Our policy (limits, ids, metrics, errors) is kept out of it; an SGLang upgrade that moves
any of these should touch this file only. SGLang is imported here only once the engine exists (its
import takes ~13 s here, and the port must bind first).

Two of SGLang's private methods are wrapped, each for a measured reason:
- ``_init_req_state``: for n > 1 and for batches SGLang replaces our rid with fresh uuids of its own,
  one per sequence (``_handle_batch_request``), so neither our rid nor a prefix of it finds them. The
  registration runs in the request's own task, so a context variable carries that request's list
  there, and aborts then name exactly its rids and nothing else.
- ``_validate_one_request``: some text has no tokens at all (SmolLM2's byte-level BPE has no token
  for 32 of the 256 bytes, 0x06 for one, and drops them), and a zero-token extend kills the
  scheduler ("cannot reshape tensor of 0 elements"; found by the schema-driven fuzz run). Only the ids
  can tell; SGLang validates them there on every path (single, batch, n > 1), and the ValueError
  raised becomes its serving layer's 400.

In the scheduler processes, one more is wrapped (engine/grammar_guard.py: ``GrammarMask.apply``, for a
grammar that allows no token) and, in this process, SGLang's start method (engine/forkserver.py).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import AsyncIterator, Iterable, MutableMapping
from typing import Any, Literal

import orjson
from starlette.responses import StreamingResponse

Kind = Literal["chat", "completion", "response"]
EMPTY_PROMPT = (
    "The prompt is empty once tokenized: none of its characters maps to a token of this model. "
    "Send text the model can read."
)
# The engine rids SGLang registers while serving the current request (see collect_rids).
_engine_rids: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("engine_rids", default=None)


class SGLangAdapter:
    def __init__(self, engine: Any) -> None:
        from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest, CompletionRequest, StreamOptions
        from sglang.srt.entrypoints.openai.serving_completions import OpenAIServingCompletion

        self.engine = engine
        manager, templates = engine.tokenizer_manager, engine.template_manager
        self._manager = manager
        self._stream_options = StreamOptions
        self._handlers: dict[Kind, Any] = {
            "chat": manager.serving_chat_class(manager, templates),
            "completion": OpenAIServingCompletion(manager, templates),
        }
        self.request_models: dict[Kind, type] = {"chat": ChatCompletionRequest, "completion": CompletionRequest}
        self.responses_unavailable = _mount_responses(self, manager, templates)
        self.context_length: int = manager.model_config.context_len
        self.vocab_size: int = manager.model_config.vocab_size
        self.tokenizer = manager.tokenizer
        _record_engine_rids(manager)
        _refuse_empty_token_lists(manager)

    def bind_receive_loop(self) -> None:
        """Start SGLang's receive loop on the running event loop (a first request on any other loop would
        hang forever). On the main thread SGLang also puts its own SIGTERM and SIGQUIT handlers on the
        loop here (drain then sys.exit; SIGKILL of the whole tree, this process included): the caller
        must put its own back before its next await, so that no signal ever reaches SGLang's."""
        self._manager.auto_create_handle_loop()

    # ---- requests ----
    @staticmethod
    def new_rid() -> str:
        """A fresh engine rid: a client's X-Request-Id never becomes one, nor a prefix of one."""
        return uuid.uuid4().hex

    @staticmethod
    def collect_rids() -> list[str]:
        """A fresh list that collects the rids SGLang registers from here on in this request's task."""
        rids: list[str] = []
        _engine_rids.set(rids)
        return rids

    def live(self, rids: Iterable[str]) -> list[str]:
        """Those of ``rids`` still in the engine."""
        states = self._manager.rid_to_state
        return [rid for rid in rids if rid in states]

    def abort(self, rid: str) -> None:
        self._manager.abort_request(rid=rid)

    def always_report_usage(self, request: Any) -> bool:
        """Make a streaming request end with SGLang's usage chunk; whether its client asked for it."""
        client_asked = bool(request.stream_options and request.stream_options.include_usage)
        options = request.stream_options or self._stream_options()
        options.include_usage = True
        request.stream_options = options
        return client_asked

    async def generate(self, kind: Kind, request: Any, raw_request: Any) -> Any:
        """SGLang's own serving of one OpenAI request: a pydantic response, a Response, or a stream."""
        if kind == "response":
            _exact_max_output_tokens(request)
            result = await self._handlers[kind].create_responses(request, raw_request)
            if isinstance(result, AsyncIterator):  # SGLang's route wraps its event generator like this
                return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
            return result
        result = await self._handlers[kind].handle_request(request, raw_request)
        if getattr(result, "body_iterator", None) is not None:
            # SGLang attaches a task that aborts the rid 2 s after the stream; our stream observer
            # aborts at once when a stream is cut, and the delayed task kept each response open 2 s longer.
            result.background = None
        return result

    # ---- stored Responses ----
    def use_response_store(self, responses: MutableMapping[str, Any], messages: MutableMapping[str, Any]) -> None:
        """Replace SGLang's two unbounded dicts (responses, their input histories) with ours."""
        handler = self._handlers["response"]
        handler.response_store, handler.msg_store = responses, messages

    def set_response_id(self, request: Any, response_id: str) -> None:
        """SGLang uses a Responses request's id as its engine rid, response id and store key."""
        request.request_id = response_id

    async def retrieve_response(self, response_id: str) -> Any:
        return await self._handlers["response"].retrieve_responses(response_id)

    async def cancel_response(self, response_id: str) -> Any:
        return await self._handlers["response"].cancel_responses(response_id)

    # ---- progress, for the watchdog and the metrics ----
    @property
    def pending_rids(self) -> list[str]:
        return list(self._manager.rid_to_state)

    @property
    def last_output_stamp(self) -> float:
        """Bumped by SGLang's receive loop on every message from the detokenizer."""
        return self._manager.last_receive_tstamp

    async def one_token(self, rid: str) -> None:
        await self.engine.async_generate(
            input_ids=[0], sampling_params={"max_new_tokens": 1, "temperature": 0.0}, rid=rid
        )


# ---- the text of SGLang's SSE chunks ----
def parse_event(text: str) -> dict[str, Any] | None:
    """The JSON object of one ``data: {...}`` chunk, or None (``[DONE]``, comments, bad JSON)."""
    if not text.startswith("data: {"):
        return None
    try:
        event = orjson.loads(text[len("data: ") :])
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def parse_typed_event(text: str) -> dict[str, Any] | None:
    """The JSON object of one ``event: <type>\ndata: {...}`` Responses event, or None."""
    _, found, data = text.partition("data: ")
    if not found:
        return None
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def event_text(event: dict[str, Any]) -> str:
    """One ``data: {...}`` chunk, as SGLang writes them (compact JSON)."""
    return f"data: {orjson.dumps(event).decode()}\n\n"


def typed_event_text(event: dict[str, Any]) -> str:
    """One ``event: <type>\ndata: {...}`` Responses event."""
    return f"event: {event.get('type')}\ndata: {orjson.dumps(event).decode()}\n\n"


def startup_parts(engine: Any) -> dict | None:
    """SGLang's own start-up figures (load_weight, scheduler_e2e, ...), where it exposes them."""
    return getattr(engine.tokenizer_manager, "startup_time", None)


def _mount_responses(adapter: SGLangAdapter, manager: Any, templates: Any) -> str | None:
    """SGLang's /v1/responses serving, or why it is unavailable (SGLang's own server treats it as
    optional too: gpt-oss's harmony vocabulary, for one, is downloaded when it is built)."""
    try:
        from sglang.srt.entrypoints.openai.protocol import ResponsesRequest
        from sglang.srt.entrypoints.openai.serving_responses import OpenAIServingResponses

        adapter._handlers["response"] = OpenAIServingResponses(manager, templates, enable_prompt_tokens_details=True)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the other endpoints serving
        return f"{type(exc).__name__}: {exc}"
    adapter.request_models["response"] = ResponsesRequest
    return None


def _exact_max_output_tokens(request: Any) -> None:
    """SGLang 0.5.23 takes 2 off ``max_output_tokens`` ("headroom for BOS/EOS"): 8 gave at most 6
    tokens here, 2 gave none and 1 a 400 ("max_new_tokens must be at least 0, got -1"). A client gets
    what it asked for; the scheduler still clamps the budget to the room left in the context."""
    to_sampling_params = request.to_sampling_params

    def exact(*args: Any, **kwargs: Any) -> dict:
        params = to_sampling_params(*args, **kwargs)
        if request.max_output_tokens is not None:
            params["max_new_tokens"] = request.max_output_tokens
        return params

    object.__setattr__(request, "to_sampling_params", exact)  # this request only; pydantic allows no attribute


def _record_engine_rids(manager: Any) -> None:
    register = manager._init_req_state

    def recording(obj: Any, *args: Any, **kwargs: Any) -> Any:
        result = register(obj, *args, **kwargs)
        if (rids := _engine_rids.get()) is not None:
            rids.extend(obj.rid if isinstance(obj.rid, list) else [obj.rid])
        return result

    manager._init_req_state = recording


def _refuse_empty_token_lists(manager: Any) -> None:
    validate = manager._validate_one_request

    def validating(obj: Any, input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        if input_ids is not None and len(input_ids) == 0 and getattr(obj, "input_embeds", None) is None:
            raise ValueError(EMPTY_PROMPT)
        return validate(obj, input_ids, *args, **kwargs)

    manager._validate_one_request = validating
