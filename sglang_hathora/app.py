"""The app factory: routes, error handlers, middleware, and a lifespan that loads the engine
in the background so that the port is bound before the model loads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from sglang_hathora import __version__, health, openai_routes
from sglang_hathora.admission import Admission, AdmissionMiddleware
from sglang_hathora.auth import ApiKeyMiddleware
from sglang_hathora.containment import ContainmentMiddleware
from sglang_hathora.errors import install_error_handlers
from sglang_hathora.lifecycle import Lifecycle
from sglang_hathora.openapi_schema import install_openapi
from sglang_hathora.settings import Settings
from sglang_hathora.timing import TimingMiddleware


def create_app(settings: Settings, lifecycle: Lifecycle | None = None) -> FastAPI:
    lifecycle = lifecycle or Lifecycle(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # uvicorn binds the port only after lifespan startup returns: start loading, don't await it.
        loading = asyncio.create_task(lifecycle.start(), name="engine-start")
        try:
            yield
        finally:
            await lifecycle.shutdown()
            if not loading.done():
                loading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await loading
            await lifecycle.stop_engine()

    app = FastAPI(
        title="sglang-hathora",
        version=__version__,
        description="OpenAI-compatible API on an in-process SGLang engine.",
        lifespan=lifespan,
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
    app.add_middleware(ContainmentMiddleware, in_flight=lifecycle.in_flight)
    app.add_middleware(TimingMiddleware, region=settings.hathora_region, metrics=lifecycle.metrics)
    return app
