"""The app factory: routes, error handlers and middleware around a given lifecycle, which is also
the app's lifespan (it starts the engine's load in the background, so the port binds first)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from sglang_hathora import __version__
from sglang_hathora.errors import install_error_handlers
from sglang_hathora.http import health, openai_routes
from sglang_hathora.http.admission import AdmissionMiddleware
from sglang_hathora.http.auth import ApiKeyMiddleware
from sglang_hathora.http.containment import ContainmentMiddleware
from sglang_hathora.http.timing import TimingMiddleware
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.openai.admission import Admission
from sglang_hathora.openai.openapi_schema import install_openapi
from sglang_hathora.settings import Settings


def create_app(settings: Settings, lifecycle: Lifecycle) -> FastAPI:
    app = FastAPI(
        title="sglang-hathora",
        version=__version__,
        description="OpenAI-compatible API on an in-process SGLang engine.",
        lifespan=lambda _app: lifecycle,  # the lifecycle is the lifespan: load on enter, stop on exit
    )
    app.state.settings = settings
    app.state.lifecycle = lifecycle
    install_error_handlers(app)
    install_openapi(app, lambda: lifecycle.serving.openapi_bodies() if lifecycle.serving is not None else None)
    app.include_router(health.router)
    app.include_router(openai_routes.router)

    @app.get("/metrics", tags=["Service"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(lifecycle.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # Added innermost first: a request meets TimingMiddleware, containment, CORS, API keys, admission.
    admission = Admission(settings.max_concurrent_requests, lifecycle.metrics)
    app.add_middleware(AdmissionMiddleware, admission=admission)
    if keys := settings.api_key_list():
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    if origins := settings.cors_origin_list():
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"]
        )
    app.add_middleware(ContainmentMiddleware, tasks=lifecycle.generations)
    app.add_middleware(
        TimingMiddleware,
        region=settings.hathora_region,
        metrics=lifecycle.metrics,
        process_id=settings.hathora_process_id,
    )
    return app
