"""Where the tests' order, and so their spread over the pytest-xdist workers of ``make test``, is decided.

``make test`` runs two workers with ``--dist loadgroup``. Tests that share a server process (the
session's ``server``, or a module's own) carry one ``xdist_group`` mark, so that one worker runs them
all and the server starts once; every other engine test starts its own server and goes to whichever
worker is free. Each start costs about 70 s of CPU over 50 s, so one worker alone left a core idle
half the time (37 min of CPU in a 33 min run).

xdist gives a worker the next unit of work (a group, or one test) whenever it has at most 2 tests
left, in collection order. So the order is: the fast tests first (many small units: both workers
stay busy while they go), then the groups, the longest first (a worker that takes one has enough to
do that the next unit goes to the other), then the engine tests with a server each, then the
container tests (tests/image_builds.py: the images build in the background until then).
"""

from __future__ import annotations

import pytest

# The shared groups, longest first (measured on 2 cores: the session server's ~90 tests 6 min, the
# fuzz run 5-6 min, the configured server's 2 min, the slow clients' 1.5 min).
SHARED_SERVER = "shared-server"  # conftest.py's session `server`
FUZZ_SERVER = "fuzz-server"
CONFIGURED_SERVER = "configured-server"
SLOW_CLIENTS_SERVER = "slow-clients-server"
GROUPS = (SHARED_SERVER, FUZZ_SERVER, CONFIGURED_SERVER, SLOW_CLIENTS_SERVER)


def group_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return None
    return marker.args[0] if marker.args else marker.kwargs.get("name")


def rank(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker("docker"):
        return (3, 0)
    group = group_of(item)
    if group is not None:
        return (1, GROUPS.index(group) if group in GROUPS else len(GROUPS))
    if item.get_closest_marker("engine"):
        return (2, 0)
    return (0, 0)


def order(items: list[pytest.Item]) -> None:
    """A stable sort: within each rank the tests keep their collection order."""
    items.sort(key=rank)
