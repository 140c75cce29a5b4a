"""Thin OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sglang_hathora.dependencies import LifecycleDep, SettingsDep
from sglang_hathora.errors import error_response
from sglang_hathora.lifecycle import Lifecycle

router = APIRouter(prefix="/v1", tags=["OpenAI"])

_BODY_DOC = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}}


def _not_serving(lifecycle: Lifecycle) -> Response | None:
    if lifecycle.serving_requests:
        return None
    lifecycle.metrics.rejected.labels("not_ready").inc()
    return error_response(
        f"The server is not ready ({lifecycle.engine_status}); retry shortly.",
        503,
        code="service_unavailable",
        headers={"Retry-After": "5"},
    )


@router.post("/chat/completions", openapi_extra=_BODY_DOC, summary="Create a chat completion (SSE with stream=true)")
async def chat_completions(raw_request: Request, lifecycle: LifecycleDep) -> Response:
    if (unavailable := _not_serving(lifecycle)) is not None:
        return unavailable
    serving = lifecycle.serving
    return await serving.handle(serving.chat, raw_request)


@router.post("/completions", openapi_extra=_BODY_DOC, summary="Create a text completion")
async def completions(raw_request: Request, lifecycle: LifecycleDep) -> Response:
    if (unavailable := _not_serving(lifecycle)) is not None:
        return unavailable
    serving = lifecycle.serving
    return await serving.handle(serving.completion, raw_request)


@router.get("/models", summary="List the served model")
async def list_models(settings: SettingsDep, lifecycle: LifecycleDep) -> dict:
    context_length = lifecycle.serving.context_length if lifecycle.serving is not None else None
    return {
        "object": "list",
        "data": [
            {
                "id": settings.model_name,
                "object": "model",
                "created": int(lifecycle.started_at),
                "owned_by": "sglang-hathora",
                "root": lifecycle.engine.model_path,
                "max_model_len": context_length,
            }
        ],
    }
