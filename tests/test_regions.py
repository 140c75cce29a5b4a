"""Hathora region -> GCP region."""

from __future__ import annotations

import pytest

from sglang_hathora.regions import HATHORA_TO_GCP_REGION, UnknownRegionError, gcp_region_for


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
    ],
)
def test_known_regions_map_case_insensitively(hathora: str, gcp: str) -> None:
    assert gcp_region_for(hathora) == gcp


def test_all_thirteen_hathora_regions_are_mapped() -> None:
    assert len(HATHORA_TO_GCP_REGION) == 13


def test_override_wins() -> None:
    assert gcp_region_for("Seattle", "us-central1") == "us-central1"
    assert gcp_region_for("Atlantis", "europe-west4") == "europe-west4"


def test_unknown_region_without_override_is_a_clear_error() -> None:
    with pytest.raises(UnknownRegionError, match=r"HATHORA_REGION='Atlantis' has no known GCP region.*set GCP_REGION"):
        gcp_region_for("Atlantis")
    with pytest.raises(UnknownRegionError, match="HATHORA_REGION is not set"):
        gcp_region_for(None)
