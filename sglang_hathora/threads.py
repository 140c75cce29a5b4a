"""Where blocking work leaves the event loop without holding up the exit: ``in_daemon_thread``.

asyncio.to_thread runs on the loop's default executor, which ``asyncio.run`` joins when the loop
closes: a stop would then wait for whatever still runs there, an Engine build (minutes on GPU) or a
Compute API call held open for its whole timeout. A daemon thread per call is never waited for; the
awaiting task can be cancelled and the result is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_daemon_thread(function: Callable[..., T], *args: Any, park_until: threading.Event | None = None) -> T:
    """function(*args) in a new daemon thread. park_until: after a success the thread waits for
    this event before it ends (for threads whose life others depend on)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)
        if park_until is not None and error is None:
            park_until.wait()

    threading.Thread(target=run, name=f"daemon-{getattr(function, '__name__', 'call')}", daemon=True).start()
    return await future
