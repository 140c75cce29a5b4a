"""Where the engine request ids of each HTTP request are known exactly: ``record_engine_rids``.

Aborting a request must reach all of its sequences and nothing else. A client's X-Request-Id is
never an engine rid (serving.py gives SGLang a fresh uuid), and the rids SGLang itself makes up are
recorded here as it registers them.
"""

from __future__ import annotations

import contextvars
from typing import Any

# The engine rids SGLang registers while serving the current request (see record_engine_rids).
_engine_rids: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("engine_rids", default=None)


def record_engine_rids(tokenizer_manager: Any) -> None:
    """Note every rid SGLang registers for a request, in that request's own list.

    For n > 1 and for batches SGLang replaces our rid with fresh uuids of its own (one per
    sequence, tokenizer_manager._handle_batch_request), so neither our rid nor a prefix of it finds
    them; the registration (_init_req_state) runs in the request's task, so a context variable
    carries the list there. Aborts then name exactly these rids.
    """
    register = tokenizer_manager._init_req_state

    def recording(obj: Any, *args: Any, **kwargs: Any) -> Any:
        result = register(obj, *args, **kwargs)
        if (rids := _engine_rids.get()) is not None:
            rids.extend(obj.rid if isinstance(obj.rid, list) else [obj.rid])
        return result

    tokenizer_manager._init_req_state = recording


def engine_rids_of_this_request() -> list[str]:
    """A fresh list that collects the rids SGLang registers from here on in this request's task."""
    rids: list[str] = []
    _engine_rids.set(rids)
    return rids
