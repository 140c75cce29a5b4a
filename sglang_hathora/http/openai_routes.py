"""Thin OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/responses, /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sglang_hathora.http.dependencies import LifecycleDep, ServingDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["OpenAI"])

_BODY_DOC = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}}


@router.post("/chat/completions", openapi_extra=_BODY_DOC, summary="Create a chat completion (SSE with stream=true)")
async def chat_completions(raw_request: Request, serving: ServingDep) -> Response:
    return await serving.handle("chat", raw_request)


@router.post("/completions", openapi_extra=_BODY_DOC, summary="Create a text completion")
async def completions(raw_request: Request, serving: ServingDep) -> Response:
    return await serving.handle("completion", raw_request)


@router.post("/responses", openapi_extra=_BODY_DOC, summary="Create a response (typed SSE events with stream=true)")
async def create_response(raw_request: Request, serving: ServingDep) -> Response:
    return await serving.handle("response", raw_request)


@router.get("/responses/{response_id}", summary="Retrieve a stored response (404 if another process stored it)")
async def retrieve_response(response_id: str, raw_request: Request, serving: ServingDep) -> Response:
    return await serving.retrieve(response_id, raw_request)


@router.post("/responses/{response_id}/cancel", summary="Cancel a response (all run in the foreground here)")
async def cancel_response(response_id: str, raw_request: Request, serving: ServingDep) -> Response:
    return await serving.cancel(response_id, raw_request)


@router.get("/models", summary="List the served model (503 until it can serve)")
async def list_models(settings: SettingsDep, lifecycle: LifecycleDep, serving: ServingDep) -> Response:
    # ServingDep: clients such as sglang.bench_serving take a 200 here as "ready", so 503 until then.
    context_length = serving.context_length
    body = {
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
    return JSONResponse(body)
