"""Hathora region -> GCP region."""

from __future__ import annotations

import pytest

from sglang_hathora.gcp.regions import HATHORA_TO_GCP_REGION, UnknownRegionError, gcp_region_for


@pytest.mark.parametrize(
    ("hathora", "gcp"),
    [
        ("Seattle", "us-west1"),
        ("seattle", "us-west1"),
        ("Los_Angeles", "us-west2"),
        ("los angeles", "us-west2"),
        ("WASHINGTON_DC", "us-east4"),
        ("Sao_Paulo", "southamerica-east1"),
        ("Johannesburg", "africa-south1"),
        ("Dubai", "me-central1"),
        ("dubai", "me-central1"),
    ],
)
def test_known_regions_map_case_insensitively(hathora: str, gcp: str) -> None:
    assert gcp_region_for(hathora) == gcp


def test_all_fourteen_hathora_regions_are_mapped() -> None:
    # Hathora's SDK Region enum (cloud-sdk-typescript docs/models/components/region.md).
    sdk_regions = [
        "Seattle",
        "Los_Angeles",
        "Washington_DC",
        "Chicago",
        "London",
        "Frankfurt",
        "Mumbai",
        "Singapore",
        "Tokyo",
        "Sydney",
        "Sao_Paulo",
        "Dallas",
        "Johannesburg",
        "Dubai",
    ]
    assert len(sdk_regions) == len(HATHORA_TO_GCP_REGION) == 14
    for region in sdk_regions:
        assert gcp_region_for(region) in HATHORA_TO_GCP_REGION.values()


def test_override_wins() -> None:
    assert gcp_region_for("Seattle", "us-central1") == "us-central1"
    assert gcp_region_for("Atlantis", "europe-west4") == "europe-west4"


def test_unknown_region_without_override_is_a_clear_error() -> None:
    with pytest.raises(UnknownRegionError, match=r"HATHORA_REGION='Atlantis' has no known GCP region.*set GCP_REGION"):
        gcp_region_for("Atlantis")
    with pytest.raises(UnknownRegionError, match="HATHORA_REGION is not set"):
        gcp_region_for(None)
