"""/v1/responses with the real ``openai`` SDK against the real engine (bundled model): create plain and
streamed, retrieve, previous_response_id, cancel, cached tokens, and two real server processes: an id
one stored is a clear 404 on the other, and the store's bound holds under a loop of creates."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.server_process import ServerProcess, ready_server

pytestmark = pytest.mark.engine  # needs the real engine: not in make test-fast

QUESTION = "What is the capital of France? Answer in one word."
STORE_MAX = 3


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def other_process(tmp_path_factory: pytest.TempPathFactory):
    """A second server: another Hathora process, with a store of 3 and one-token answers."""
    env = {"HATHORA_PROCESS_ID": "proc-test-2", "MAX_COMPLETION_TOKENS": "1"}
    env["RESPONSE_STORE_MAX_ITEMS"] = str(STORE_MAX)
    with ready_server(tmp_path_factory.mktemp("other-process"), **env) as process:
        yield process


def test_create_answers_paris_plain_and_streamed_with_the_sdks_events(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model="sglang", input=QUESTION, temperature=0, max_output_tokens=8)
    plain = raw.parse()
    assert "Paris" in plain.output_text, plain
    assert plain.id.startswith("resp_proc-test-1_"), plain.id
    # Eight tokens may cut the answer short: that is "incomplete" in the Responses API, saying why.
    assert plain.status == "completed" or plain.incomplete_details.reason == "max_output_tokens", plain
    assert raw.headers["x-hathora-process-id"] == "proc-test-1"
    assert plain.usage.input_tokens > 0 and 0 < plain.usage.output_tokens <= 8
    assert isinstance(plain.usage.input_tokens_details.cached_tokens, int)

    events = list(
        client.responses.create(model="sglang", input=QUESTION, temperature=0, max_output_tokens=8, stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] == f"response.{plain.status}", kinds
    assert "response.output_text.delta" in kinds and "response.output_text.done" in kinds
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == plain.output_text == events[-1].response.output_text
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].response.id.startswith("resp_proc-test-1_")


def test_retrieve_previous_response_id_and_cancel(client: openai.OpenAI) -> None:
    first = client.responses.create(model="sglang", input="My name is Ada. Say OK.", temperature=0, max_output_tokens=4)
    again = client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text and again.status == first.status

    follow_up = client.responses.create(
        model="sglang", input="What is my name?", previous_response_id=first.id, temperature=0, max_output_tokens=4
    )
    assert follow_up.previous_response_id == first.id
    # The history came from the store: the prompt holds the first turn too.
    alone = client.responses.create(model="sglang", input="What is my name?", temperature=0, max_output_tokens=4)
    assert follow_up.usage.input_tokens > alone.usage.input_tokens

    cancelled = client.responses.cancel(first.id)  # over already: returned unchanged
    assert cancelled.id == first.id and cancelled.status == first.status

    unstored = client.responses.create(model="sglang", input=QUESTION, max_output_tokens=2, store=False)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve(unstored.id)
    assert missing.value.body["code"] == "response_not_found"


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(client: openai.OpenAI) -> None:
    cases = [
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://10.0.0.1/x.png"}]}]},
         "input.0.content.0"),
        ({"input": QUESTION, "background": True}, "background"),
        ({"input": QUESTION, "max_output_tokens": 10**9}, "max_output_tokens"),
        ({"input": QUESTION, "tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"input": "word " * 20_000}, "input"),
        ({"input": QUESTION, "previous_response_id": "resp_nope"}, "previous_response_id"),
    ]  # fmt: skip
    for fields, param in cases:
        with pytest.raises(openai.APIStatusError) as refused:
            client.responses.create(model="sglang", **fields)
        assert refused.value.status_code in (400, 404), (fields, refused.value)
        assert refused.value.body["param"] == param, (param, refused.value.body)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input=QUESTION)
    assert (
        "Paris"
        in client.responses.create(model="sglang", input=QUESTION, temperature=0, max_output_tokens=8).output_text
    )


def test_cached_tokens_zero_then_most_of_the_prompt(client: openai.OpenAI) -> None:
    for stream in (False, True):
        text = f"{uuid.uuid4().hex} " + "The quick brown fox jumps over the lazy dog. " * 40
        cached = []
        for _ in range(2):
            if stream:
                events = list(client.responses.create(model="sglang", input=text, max_output_tokens=1, stream=True))
                usage = events[-1].response.usage
            else:
                usage = client.responses.create(model="sglang", input=text, max_output_tokens=1).usage
            cached.append(usage.input_tokens_details.cached_tokens)
        # The first time only the chat template's fixed opening (24 tokens here) can be cached.
        assert cached[0] < 40 and cached[1] >= usage.input_tokens - 10 > cached[0] + 400, (stream, cached, usage)


def test_an_id_from_another_process_is_a_clear_404(client: openai.OpenAI, other_process: ServerProcess) -> None:
    stored_here = client.responses.create(model="sglang", input=QUESTION, max_output_tokens=2)
    other = openai.OpenAI(base_url=f"{other_process.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    for call in (
        lambda: other.responses.retrieve(stored_here.id),
        lambda: other.responses.cancel(stored_here.id),
        lambda: other.responses.create(model="sglang", input="And then?", previous_response_id=stored_here.id),
    ):
        with pytest.raises(openai.NotFoundError) as elsewhere:
            call()
        body = elsewhere.value.body
        assert body["code"] == "response_on_another_process", body
        assert "'proc-test-1'" in body["message"] and "'proc-test-2'" in body["message"], body
    assert client.responses.retrieve(stored_here.id).id == stored_here.id  # still there, on its own process


def test_the_store_bound_holds_under_a_loop_of_creates(other_process: ServerProcess) -> None:
    other = openai.OpenAI(base_url=f"{other_process.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    ids = [other.responses.create(model="sglang", input=f"Count {index}.").id for index in range(25)]
    assert len(set(ids)) == 25 and all(i.startswith("resp_proc-test-2_") for i in ids)
    for response_id in ids[-STORE_MAX:]:
        assert other.responses.retrieve(response_id).id == response_id
    for response_id in ids[:-STORE_MAX]:
        with pytest.raises(openai.NotFoundError) as gone:
            other.responses.retrieve(response_id)
        assert gone.value.body["code"] == "response_not_found"
        assert f"last {STORE_MAX} responses" in gone.value.body["message"]
    assert httpx.get(f"{other_process.base_url}/health", timeout=10).status_code == 200
