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


# Each of Hathora's 14 regions (its SDK's Region enum, cloud-sdk-typescript
# docs/models/components/region.md) with the GCP region a load balancer there should use: the one in
# the same metro where GCP has one, else the nearest (written here from GCP's region list, not from the
# module, so a wrong or swapped entry fails).
EXPECTED = {
    "Seattle": "us-west1",  # The Dalles, Oregon: GCP has no Seattle region
    "Los_Angeles": "us-west2",  # Los Angeles
    "Washington_DC": "us-east4",  # Ashburn, Virginia
    "Chicago": "us-central1",  # Council Bluffs, Iowa: GCP has no Chicago region
    "Dallas": "us-south1",  # Dallas
    "London": "europe-west2",  # London
    "Frankfurt": "europe-west3",  # Frankfurt
    "Mumbai": "asia-south1",  # Mumbai
    "Singapore": "asia-southeast1",  # Singapore
    "Tokyo": "asia-northeast1",  # Tokyo
    "Sydney": "australia-southeast1",  # Sydney
    "Sao_Paulo": "southamerica-east1",  # Sao Paulo
    "Johannesburg": "africa-south1",  # Johannesburg
    "Dubai": "me-central1",  # Doha: GCP has no region in the UAE
}


def test_each_of_the_fourteen_hathora_regions_maps_to_its_nearest_gcp_region() -> None:
    assert {region: gcp_region_for(region) for region in EXPECTED} == EXPECTED
    assert len(HATHORA_TO_GCP_REGION) == len(EXPECTED)  # no region the SDK does not have


def test_override_wins() -> None:
    assert gcp_region_for("Seattle", "us-central1") == "us-central1"
    assert gcp_region_for("Atlantis", "europe-west4") == "europe-west4"


def test_unknown_region_without_override_is_a_clear_error() -> None:
    with pytest.raises(UnknownRegionError, match=r"HATHORA_REGION='Atlantis' has no known GCP region.*set GCP_REGION"):
        gcp_region_for("Atlantis")
    with pytest.raises(UnknownRegionError, match="HATHORA_REGION is not set"):
        gcp_region_for(None)
