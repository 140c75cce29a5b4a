"""ComputeNegApi: the REAL google-cloud-compute client against the fake Compute API over HTTP."""

from __future__ import annotations

import time

import pytest
from google.api_core.exceptions import ServiceUnavailable

from sglang_hathora.gcp.auth import credentials_from
from sglang_hathora.gcp.neg_client import ComputeNegApi, NegError, NegTarget
from tests.fake_compute import PROJECT, FakeCompute

REGIONAL = NegTarget("regions/us-west1", "llm-serve-us-west1", (("fqdn", "abc.hathora.dev"), ("port", 7777)))


@pytest.fixture
def api(fake_compute: FakeCompute, service_account) -> ComputeNegApi:
    return ComputeNegApi(credentials_from(service_account[0]), PROJECT, fake_compute.url, call_timeout=5)


def soon() -> float:
    return time.monotonic() + 20


def test_attach_lists_first_waits_on_the_chosen_endpoint_and_is_idempotent(api, fake_compute) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    assert api.change("attach", REGIONAL, soon()) == "attached"
    assert fake_compute.endpoints("regions/us-west1", "llm-serve-us-west1") == [REGIONAL.endpoint_dict]
    assert [c.verb for c in fake_compute.calls] == ["list", "attach"]  # the operation came back DONE
    assert api.change("attach", REGIONAL, soon()) == "already attached"
    assert len(fake_compute.calls_of("attach")) == 1
    assert fake_compute.rejected_auth == 0  # every call carried a JWT signed by the test key


def test_503_twice_then_success_attaches_once_with_one_request_id(api, fake_compute) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    fake_compute.fail("attach", 503, times=2)
    assert api.change("attach", REGIONAL, soon()) == "attached"
    attaches = fake_compute.calls_of("attach")
    assert len(attaches) == 3
    assert len({call.query["requestId"][0] for call in attaches}) == 1
    assert len(fake_compute.endpoints("regions/us-west1", "llm-serve-us-west1")) == 1


def test_429_is_retried_too(api, fake_compute) -> None:
    fake_compute.create_neg("global", "llm-serve")
    fake_compute.fail("list", 429, times=1)
    target = NegTarget("global", "llm-serve", REGIONAL.endpoint)
    assert api.change("attach", target, soon()) == "attached"


def test_already_attached_reported_inside_a_finished_operation_is_success(api, fake_compute, monkeypatch) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1", [REGIONAL.endpoint_dict])
    fake_compute.attach_done_with_error = True  # the operation ends DONE with RESOURCE_ALREADY_EXISTS
    real_is_attached = api.is_attached
    answers = [False]  # listed absent first (another attach raced us), then the real list settles it
    monkeypatch.setattr(api, "is_attached", lambda t, d, s=None: answers.pop() if answers else real_is_attached(t, d))
    assert api.change("attach", REGIONAL, soon()) == "already attached"
    assert len(fake_compute.calls_of("attach")) == 1 and fake_compute.calls_of("wait") == []


def test_already_attached_as_http_409_is_success(api, fake_compute, monkeypatch) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1", [REGIONAL.endpoint_dict])
    calls = iter([False, True])  # listed absent first (a race), present after the 409
    monkeypatch.setattr(api, "is_attached", lambda target, deadline, stopping=None: next(calls))
    fake_compute.fail("attach", 409, message="The resource already exists")
    assert api.change("attach", REGIONAL, soon()) == "already attached"


def test_detach_of_an_absent_endpoint_is_success(api, fake_compute) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    assert api.change("detach", REGIONAL, soon()) == "not attached"
    assert fake_compute.calls_of("detach") == []


def test_missing_neg_is_a_clear_error(api, fake_compute) -> None:
    with pytest.raises(Exception, match="llm-serve-us-west1"):
        api.change("attach", REGIONAL, soon())


def test_api_down_gives_up_at_the_deadline(api, fake_compute, monkeypatch) -> None:
    fake_compute.create_neg("regions/us-west1", "llm-serve-us-west1")
    fake_compute.down = True
    # The longest jitter: a pause that fits the budget unjittered but not jittered used to end in
    # our own "no time left" instead of what GCP said (a CI run's /health showed "NegError").
    monkeypatch.setattr("sglang_hathora.gcp.neg_client.random.uniform", lambda low, high: high)
    started = time.monotonic()
    for budget in (0.22, 0.3, 0.7, 0.9, 1.7, 2.0):
        with pytest.raises(ServiceUnavailable):
            api.change("attach", REGIONAL, time.monotonic() + budget)
    assert time.monotonic() - started < 20
    assert len(fake_compute.calls_of("list")) >= 5  # retried with backoff, not once per call


def test_zonal_instance_lookup_by_external_ip(api, fake_compute) -> None:
    fake_compute.instances = {
        "us-west1-a": [{"name": "other-vm", "networkInterfaces": [{"accessConfigs": [{"natIP": "198.51.100.9"}]}]}],
        "us-west1-b": [{"name": "gpu-vm-7", "networkInterfaces": [{"accessConfigs": [{"natIP": "203.0.113.5"}]}]}],
    }
    assert api.find_instance_by_ip("203.0.113.5", soon()) == ("gpu-vm-7", "us-west1-b")
    with pytest.raises(NegError, match="found \\[\\]"):
        api.find_instance_by_ip("192.0.2.1", soon())


def test_zonal_attach_with_instance_endpoint(api, fake_compute) -> None:
    fake_compute.create_neg("zones/us-west1-b", "llm-serve-us-west1-b")
    target = NegTarget("zones/us-west1-b", "llm-serve-us-west1-b", (("instance", "gpu-vm-7"), ("port", 7777)))
    assert api.change("attach", target, soon()) == "attached"
    assert fake_compute.endpoints("zones/us-west1-b", "llm-serve-us-west1-b") == [target.endpoint_dict]
    assert api.change("detach", target, soon()) == "detached"
    assert fake_compute.endpoints("zones/us-west1-b", "llm-serve-us-west1-b") == []
