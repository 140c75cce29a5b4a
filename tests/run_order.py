"""Where the tests' order, and their two lanes in ``make test``, are decided.

``make test`` runs ``pytest -n 2 --lanes``: two pytest-xdist workers, each given one lane whole:
- the engine lane: every test but the container tests, one at a time, in file order. Many carry
  bounds the issues ask for (the port bound within 2 s of start, a stalled upload cut within 4 s, a
  flood aborted within its window); a trial with these tests spread over both workers failed 3 of
  them and took longer in all (38.5 min against 33): two servers starting at once on 2 cores, and
  the image builds starved behind them.
- the container lane: the container tests. Their worker waits for the images, which build in the
  background from the session's start (tests/image_builds.py), then runs the containers beside the
  engine lane. ``.ci/run`` puts dockerd and every container in the cgroup with the least CPU weight,
  so they take only what the engine lane leaves idle (about half the machine: a server start is ~70 s
  of CPU in ~50 s), as the builds already did; before, they ran after all the others, 3-4 min at the end.
Without ``--lanes`` (``pytest`` alone, or ``-n 2`` in make test-fast) the container tests simply run last.

The lanes are a scheduler of our own (``LaneScheduling``) because ``--dist loadgroup`` does nothing
with pytest 9.2: xdist 3.8 renames grouped tests by writing ``item._nodeid``, which pytest 9 no longer
reads (``nodeid`` comes from ``_id``), so every test was scheduled alone.
"""

from __future__ import annotations

import random

import pytest

CONTAINER_TESTS = "tests/test_containers.py::"
ENGINE_LANE, CONTAINER_LANE = "engine-lane", "container-lane"


def lane_of(nodeid: str) -> str:
    """By test id, the one thing xdist's controller sees of a test (its markers stay in the workers)."""
    return CONTAINER_LANE if nodeid.startswith(CONTAINER_TESTS) else ENGINE_LANE


def is_container_test(item: pytest.Item) -> bool:
    return lane_of(item.nodeid) == CONTAINER_LANE


def order(items: list[pytest.Item], shuffle_seed: int | None = None) -> None:
    """Container tests last (a stable sort: the others keep their order). With a seed (``--shuffle N``),
    the files in a random order and the tests of each file too, each file's tests kept together (a
    module's own server starts once): no test may rely on another having run before it, and none may
    end a server another file shares."""
    if shuffle_seed is not None:
        rng = random.Random(shuffle_seed)
        by_file: dict[str, list[pytest.Item]] = {}
        for item in items:
            by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
        files = list(by_file.values())
        rng.shuffle(files)
        for tests in files:
            rng.shuffle(tests)
        items[:] = [item for tests in files for item in tests]
    items.sort(key=is_container_test)


def lane_scheduler(config: pytest.Config, log):
    """xdist's scope scheduler with our two lanes as its only scopes: the larger (the engine lane) goes
    to the first worker, the container lane to the second, and neither is ever split."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane_of(nodeid)

    return LaneScheduling(config, log)
