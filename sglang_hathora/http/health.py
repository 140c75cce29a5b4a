"""/health (truthful readiness for load balancers), /livez (liveness) and GET / (a short service description)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sglang_hathora import __version__
from sglang_hathora.http.dependencies import LifecycleDep, SettingsDep
from sglang_hathora.lifecycle.state import State

router = APIRouter(tags=["Service"])


@router.get("/health", summary="200 when ready to serve; 503 while loading, draining or failed")
async def health(lifecycle: LifecycleDep, settings: SettingsDep) -> JSONResponse:
    body = {
        "status": "ok" if lifecycle.ready else "unavailable",
        "engine_status": lifecycle.state.value,
        "hathora_region": settings.hathora_region,
        "model_path": lifecycle.engine.model_path,
        "timestamp": time.time(),
    }
    if lifecycle.state is State.LOADING:
        body["startup"] = lifecycle.startup.status()  # the phase running and the ones done, seconds
    if lifecycle.registrar is not None:
        body["registration"] = lifecycle.registrar.public_status()
    headers = None if lifecycle.ready else {"Retry-After": "5"}
    return JSONResponse(body, status_code=200 if lifecycle.ready else 503, headers=headers)


@router.get("/livez", summary="Liveness: 200 while the process and its event loop run, in every state")
async def livez(lifecycle: LifecycleDep) -> dict:
    # For probes that restart a process: unlike /health it is 200 while loading (a model load takes
    # minutes on GPU) and while draining, so such a probe never kills a process that is only busy.
    return {"status": "alive", "engine_status": lifecycle.state.value, "uptime": time.time() - lifecycle.started_at}


@router.get("/", summary="Service description")
async def root(lifecycle: LifecycleDep, settings: SettingsDep) -> dict:
    return {
        "service": "sglang-hathora",
        "version": __version__,
        "description": "OpenAI-compatible LLM server on an in-process SGLang engine, for Hathora Cloud.",
        "model": settings.model_name,
        "engine_status": lifecycle.state.value,
        "hathora_region": settings.hathora_region,
        "endpoints": {
            "chat": "/v1/chat/completions",
            "completions": "/v1/completions",
            "responses": "/v1/responses",
            "models": "/v1/models",
            "health": "/health",
            "liveness": "/livez",
            "docs": "/docs",
        },
    }
