"""Where the generation requests in progress are known: ``GenerationTasks``, the HTTP tasks that
ContainmentMiddleware registers, so that when the engine fails or stalls the lifecycle can answer
each of them (503 in OpenAI's shape, or an error event mid-stream) before the process exits."""

from __future__ import annotations

import asyncio
import contextlib


class GenerationTasks:
    """The HTTP tasks of the generation requests being handled, so that a dying engine can answer each."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()
        self.failure: tuple[str, str] | None = None  # (message, code) once the engine has failed

    def fail_all(self, message: str, code: str) -> int:
        self.failure = (message, code)
        for task in self.tasks:
            task.cancel(msg=code)
        return len(self.tasks)

    async def wait_answered(self, timeout: float) -> None:
        if self.tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*self.tasks, return_exceptions=True)
