"""Typed FastAPI dependencies: what a route needs, fetched from app.state in one place.

They are ``async def`` although none of them awaits: FastAPI runs a plain ``def`` dependency in its
thread pool, a hop to a worker thread and back for every request (measured with py-spy on this
machine: 4% of the HTTP process's samples under sequential one-token streams, none of it needed).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sglang_hathora.errors import ApiError
from sglang_hathora.lifecycle.lifecycle import Lifecycle
from sglang_hathora.openai.serving import OpenAIServing
from sglang_hathora.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle


async def get_serving(request: Request) -> OpenAIServing:
    lifecycle: Lifecycle = request.app.state.lifecycle
    if not lifecycle.serving_requests:
        lifecycle.metrics.rejected.labels("not_ready").inc()
        raise ApiError.not_serving(lifecycle.state.value)
    return lifecycle.serving


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ServingDep = Annotated[OpenAIServing, Depends(get_serving)]
