"""Typed FastAPI dependencies: what a route needs, fetched from app.state in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sglang_hathora.errors import ApiError
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.openai.serving import OpenAIServing
from sglang_hathora.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle


def get_serving(request: Request) -> OpenAIServing:
    lifecycle: Lifecycle = request.app.state.lifecycle
    if not lifecycle.serving_requests:
        lifecycle.metrics.rejected.labels("not_ready").inc()
        raise ApiError.not_serving(lifecycle.state.value)
    return lifecycle.serving


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ServingDep = Annotated[OpenAIServing, Depends(get_serving)]
