"""Where the server's state is kept: one enum, ``State``, and the transitions it allows.

    LOADING --> READY --> DETACHING --> DRAINING --> STOPPED
       |          |           |             |
       +----------+-----------+-------------+--> FAILED / STALLED --> STOPPED

/health is 200 in READY only; requests are served in READY and DETACHING (the load balancer may
still route some while the detach runs); FAILED and STALLED keep showing while the process detaches
and exits, so /health says why. A stop during the load goes LOADING -> DETACHING.
"""

from __future__ import annotations

import enum
import time


class State(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    DETACHING = "detaching"  # a stop began: /health 503, leaving every NEG
    DRAINING = "draining"  # detached: new requests 503, in-flight ones finish
    STOPPED = "stopped"
    FAILED = "failed"  # the engine failed to load or died
    STALLED = "stalled"  # the engine is alive but makes no progress (engine/watchdog.py)


_FAULTS = frozenset({State.FAILED, State.STALLED})
TRANSITIONS: dict[State, frozenset[State]] = {
    State.LOADING: frozenset({State.READY, State.DETACHING, State.FAILED, State.STOPPED}),
    State.READY: frozenset({State.DETACHING, *_FAULTS, State.STOPPED}),
    State.DETACHING: frozenset({State.DRAINING, *_FAULTS, State.STOPPED}),
    State.DRAINING: frozenset({State.STOPPED, *_FAULTS}),
    State.FAILED: frozenset({State.STOPPED}),
    State.STALLED: frozenset({State.STOPPED}),
    State.STOPPED: frozenset(),
}


class StateMachine:
    def __init__(self) -> None:
        self.state = State.LOADING
        self.since = time.monotonic()

    def to(self, new: State) -> bool:
        """Move to ``new`` if the current state allows it; False (and no change) otherwise."""
        if new not in TRANSITIONS[self.state]:
            return False
        self.state, self.since = new, time.monotonic()
        return True
