"""Where stored Responses live and whose they are: ``ResponseStore`` and ``ResponseIds``.

A stored response (what ``GET /v1/responses/{id}`` and ``previous_response_id`` read) lives in the
memory of the process that made it, while a load balancer spreads a client's requests over many
processes. So every id names its process (``resp_<HATHORA_PROCESS_ID>_<32 hex>``), and an id from
another process gets a 404 that says so, instead of a bare "not found". SGLang keeps its store in two
plain dicts with no limit (its own help: "Storage has no TTL or size limit"); here both dicts are
views of one store bounded in count and age, so that a loop of creates cannot grow the process
without end, and a response and its input history are always dropped together.

A stored response also belongs to the API key that created it (as at OpenAI, where stored responses
are scoped to their owner): the id's last 16 hex digits are an HMAC, under a secret of this process,
of the other 16 and the key's index in API_KEYS, so a retrieve, cancel or previous_response_id with
another key gets the same 404 as an id that was never stored, and the store needs no owner table.
Without API_KEYS every request has the same owner.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from sglang_hathora.errors import ApiError

PREFIX = "resp_"
API_KEY_STATE = "api_key"  # scope["state"] key: the index of the API key a request came with
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


class ResponseStore:
    """At most ``max_items`` entries, none older than ``max_age`` seconds; the oldest go first."""

    def __init__(self, max_items: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_items = max_items
        self.max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.responses: MutableMapping[str, Any] = _View(self, "response")
        self.messages: MutableMapping[str, Any] = _View(self, "messages")

    def __contains__(self, key: object) -> bool:
        self._expire()
        return key in self._entries

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _slots(self, key: str, create: bool) -> dict[str, Any]:
        self._expire()
        if key in self._entries:
            return self._entries[key][1]
        if not create:
            raise KeyError(key)
        while len(self._entries) >= self.max_items:
            self._entries.popitem(last=False)
        slots: dict[str, Any] = {}
        self._entries[key] = (self._clock(), slots)
        return slots

    def _drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def _expire(self) -> None:
        oldest_kept = self._clock() - self.max_age
        while self._entries and next(iter(self._entries.values()))[0] < oldest_kept:
            self._entries.popitem(last=False)

    def _keys(self, slot: str) -> list[str]:
        self._expire()
        return [key for key, (_, slots) in self._entries.items() if slot in slots]


class _View(MutableMapping):
    """One of SGLang's two dicts (responses, input histories), as a view of the shared store."""

    def __init__(self, store: ResponseStore, slot: str) -> None:
        self._store = store
        self._slot = slot

    def __getitem__(self, key: str) -> Any:
        slots = self._store._slots(key, create=False)
        if self._slot not in slots:
            raise KeyError(key)
        return slots[self._slot]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store._slots(key, create=True)[self._slot] = value

    def __delitem__(self, key: str) -> None:
        slots = self._store._slots(key, create=False)
        del slots[self._slot]
        if not slots:
            self._store._drop(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store._keys(self._slot))

    def __len__(self) -> int:
        return len(self._store._keys(self._slot))


class ResponseIds:
    """Ids that name this process and their owner, and the 404s for ids that are not (or no longer) here."""

    def __init__(self, process_id: str, store: ResponseStore) -> None:
        self.process = _UNSAFE.sub("-", process_id)[:64] or "unknown"
        self.store = store
        self._secret = secrets.token_bytes(32)

    def new(self, api_key: int | None = None) -> str:
        """A fresh id for a response created with API key number ``api_key`` (None: no API_KEYS)."""
        nonce = secrets.token_hex(8)
        return f"{PREFIX}{self.process}_{nonce}{self._tag(nonce, api_key)}"

    def _tag(self, nonce: str, api_key: int | None) -> str:
        return hmac.new(self._secret, f"{nonce}:{api_key}".encode(), hashlib.sha256).hexdigest()[:16]

    def owned_by(self, response_id: str, api_key: int | None) -> bool:
        tail = response_id.rsplit("_", 1)[-1]
        return hmac.compare_digest(tail[16:], self._tag(tail[:16], api_key))

    def owner(self, response_id: str) -> str | None:
        """The process an id of ours names, or None for an id this server never makes."""
        if not response_id.startswith(PREFIX):
            return None
        process, _, tail = response_id[len(PREFIX) :].rpartition("_")
        return process if process and re.fullmatch(r"[0-9a-f]{32}", tail) else None

    def require_here(self, response_id: str, param: str, api_key: int | None = None) -> None:
        """Raise the 404 a client can act on unless ``response_id`` is in this process's store and
        belongs to API key number ``api_key`` (another key's id gets the 404 of an id never stored)."""
        process = self.owner(response_id)
        if process is not None and process != self.process:
            raise ApiError(
                f"Response '{response_id}' was stored by process '{process}', and this is process "
                f"'{self.process}': stored responses live in the process that created them. Send a "
                "conversation's requests to one process (session affinity on the load balancer, see "
                "the README), or send the full input instead of a response id.",
                404,
                param=param,
                code="response_on_another_process",
            )
        if response_id not in self.store or not self.owned_by(response_id, api_key):
            raise ApiError(
                f"Response '{response_id}' is not stored here: it never existed, was created with "
                f"store=false, or left the store (it keeps the last {self.store.max_items} responses, "
                f"each for {self.store.max_age:.0f} s).",
                404,
                param=param,
                code="response_not_found",
            )
