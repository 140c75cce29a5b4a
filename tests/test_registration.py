"""plan_registration: when registration is on, and configuration errors found at start."""

from __future__ import annotations

import logging

import pytest

from sglang_hathora.gcp.auth import ServiceAccountKeyError
from sglang_hathora.gcp.regions import UnknownRegionError
from sglang_hathora.gcp.registration import RegistrationConfigError, plan_registration
from sglang_hathora.settings import Settings
from tests.fake_compute import encode_key


def settings_for(service_account, **overrides) -> Settings:
    values = {
        "hathora_hostname": "abc.hathora.dev",
        "hathora_default_port": 7777,
        "hathora_region": "Seattle",
        "gcp_service_account_key_base64": encode_key(service_account[0]),
        "log_file": None,
    }
    values.update(overrides)
    return Settings(**values)


def test_off_without_hathora_variables_says_why(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="serve_hathora")
    monkeypatch.setattr(logging.getLogger("serve_hathora"), "propagate", True)
    assert plan_registration(Settings(hathora_region="Seattle", log_file=None)) is None
    missing = "HATHORA_HOSTNAME, HATHORA_DEFAULT_PORT, GCP_SERVICE_ACCOUNT_KEY_BASE64"
    assert f"NEG registration is off: {missing} not set" in caplog.text


def test_regional_plan(service_account) -> None:
    plan = plan_registration(settings_for(service_account))
    assert (plan.mode, plan.project, plan.region, plan.name_templates) == (
        "regional",
        "test-project",
        "us-west1",
        ("llm-serve-{region}",),
    )
    assert (plan.hostname, plan.port) == ("abc.hathora.dev", 7777)  # the public address, not PORT


def test_project_and_region_overrides(service_account) -> None:
    plan = plan_registration(
        settings_for(service_account, gcp_project_id="other", gcp_region="europe-west4", neg_names="a-{region}, b")
    )
    assert (plan.project, plan.region, plan.name_templates) == ("other", "europe-west4", ("a-{region}", "b"))


def test_zonal_plan_needs_no_region(service_account) -> None:
    plan = plan_registration(settings_for(service_account, neg_mode="ZONAL", hathora_region=None))
    assert plan.mode == "zonal" and plan.region is None and plan.name_templates == ("llm-serve-{zone}",)


def test_configuration_errors(service_account) -> None:
    with pytest.raises(UnknownRegionError):
        plan_registration(settings_for(service_account, hathora_region="Atlantis"))
    with pytest.raises(RegistrationConfigError, match="zone"):
        plan_registration(settings_for(service_account, neg_names="llm-{zone}"))
    with pytest.raises(ServiceAccountKeyError):
        plan_registration(settings_for(service_account, gcp_service_account_key_base64="!!!"))
