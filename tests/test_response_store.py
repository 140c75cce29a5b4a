"""The stored-Responses policy (no engine): the store's count and age bounds, a response and its
input history leaving together, ids that name their process, and the 404s a client can act on."""

from __future__ import annotations

import pytest

from sglang_hathora.errors import ApiError
from sglang_hathora.openai.response_store import ResponseIds, ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_store_keeps_the_newest_max_items() -> None:
    store = ResponseStore(max_items=3, max_age=60)
    for index in range(10):
        store.messages[f"r{index}"] = [index]
        store.responses[f"r{index}"] = {"id": f"r{index}"}
        assert len(store) <= 3
    assert list(store.responses) == ["r7", "r8", "r9"] == list(store.messages)
    assert "r6" not in store and store.responses.get("r6") is None and store.messages.get("r6") is None
    assert store.responses["r9"] == {"id": "r9"} and store.messages["r9"] == [9]


def test_entries_leave_after_max_age_and_rewrites_keep_their_age() -> None:
    clock = Clock()
    store = ResponseStore(max_items=100, max_age=60, clock=clock)
    store.messages["old"] = ["history"]
    clock.now += 30
    store.responses["old"] = {"status": "completed"}  # SGLang writes the response when it is done
    store.messages["new"] = ["history"]
    clock.now += 31
    assert "old" not in store and "new" in store
    with pytest.raises(KeyError):
        store.responses["old"]
    clock.now += 30
    assert len(store) == 0


def test_a_response_and_its_history_leave_together() -> None:
    store = ResponseStore(max_items=1, max_age=60)
    store.messages["a"] = ["a's input"]
    store.responses["a"] = {"id": "a"}
    store.messages["b"] = ["b's input"]  # evicts a, both views
    assert "a" not in store.responses and "a" not in store.messages
    assert "b" not in store.responses and store.messages["b"] == ["b's input"]
    del store.messages["b"]
    assert len(store) == 0


def test_ids_name_their_process_and_are_unique() -> None:
    ids = ResponseIds("2e0b6f8c-19a2-4d7f-9c1e-5a1f0d6e7b21", ResponseStore(10, 60))
    made = {ids.new() for _ in range(1000)}
    assert len(made) == 1000
    for response_id in made:
        assert response_id.startswith("resp_2e0b6f8c-19a2-4d7f-9c1e-5a1f0d6e7b21_")
        assert ids.owner(response_id) == ids.process
    assert ResponseIds("a b/c_d", ResponseStore(1, 1)).process == "a-b-c-d"  # never an "_" inside
    assert ids.owner("resp_0123456789abcdef0123456789abcdef") is None  # SGLang's own shape: no owner
    assert ids.owner("msg_x_0123456789abcdef0123456789abcdef") is None


def test_an_id_from_another_process_gets_the_404_that_says_so() -> None:
    here = ResponseIds("proc-here", ResponseStore(10, 60))
    elsewhere = ResponseIds("proc-there", ResponseStore(10, 60)).new()
    with pytest.raises(ApiError) as raised:
        here.require_here(elsewhere, "previous_response_id")
    error = raised.value.body()["error"]
    assert raised.value.status == 404 and error["code"] == "response_on_another_process"
    assert error["param"] == "previous_response_id"
    assert "proc-there" in error["message"] and "proc-here" in error["message"]
    assert "session affinity" in error["message"]


def test_an_id_not_stored_here_gets_a_404_naming_the_bounds() -> None:
    store = ResponseStore(5, 120)
    ids = ResponseIds("proc-here", store)
    stored = ids.new()
    store.responses[stored] = {"id": stored}
    ids.require_here(stored, "response_id")  # found: no error
    for missing in (ids.new(), "resp_nope", "anything"):
        with pytest.raises(ApiError) as raised:
            ids.require_here(missing, "response_id")
        error = raised.value.body()["error"]
        assert raised.value.status == 404 and error["code"] == "response_not_found", error
        assert "last 5 responses, each for 120 s" in error["message"]


def test_a_stored_response_belongs_to_the_key_that_created_it() -> None:
    store = ResponseStore(5, 120)
    ids = ResponseIds("proc-here", store)
    mine, unkeyed = ids.new(api_key=0), ids.new()
    for response_id in (mine, unkeyed):
        store.responses[response_id] = {"id": response_id}
        assert ids.owner(response_id) == "proc-here"  # still an id of this process, 32 hex digits
    ids.require_here(mine, "response_id", api_key=0)
    ids.require_here(unkeyed, "response_id")  # without API_KEYS everyone is the same owner
    for response_id, api_key in ((mine, 1), (mine, None), (unkeyed, 0)):
        with pytest.raises(ApiError) as raised:
            ids.require_here(response_id, "previous_response_id", api_key=api_key)
        error = raised.value.body()["error"]
        # The same 404 as an id never stored: nothing says that it exists for someone else.
        assert raised.value.status == 404 and error["code"] == "response_not_found", error
        assert error["param"] == "previous_response_id"
    # Another process with the same ids cannot forge an owner: its secret differs.
    other = ResponseIds("proc-here", store)
    with pytest.raises(ApiError):
        other.require_here(mine, "response_id", api_key=0)
