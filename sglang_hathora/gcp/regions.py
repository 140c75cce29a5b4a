"""Hathora region -> GCP region (overridable with GCP_REGION)."""

from __future__ import annotations

# Hathora's 14 regions, as its SDKs' Region enum spells them (cloud-sdk-typescript, Region: "Seattle" |
# "Los_Angeles" | ... | "Dubai"), each with the nearest GCP region (shared/reference/hathora-gcp.md for
# the first 13). Dubai has no GCP region in the UAE: me-central1 (Doha, ~380 km) is the nearest; GCP's
# other Middle East regions are Dammam (me-central2, ~900 km, restricted) and Tel Aviv (me-west1).
HATHORA_TO_GCP_REGION = {
    "seattle": "us-west1",
    "los_angeles": "us-west2",
    "washington_dc": "us-east4",
    "chicago": "us-central1",
    "dallas": "us-south1",
    "london": "europe-west2",
    "frankfurt": "europe-west3",
    "mumbai": "asia-south1",
    "singapore": "asia-southeast1",
    "tokyo": "asia-northeast1",
    "sydney": "australia-southeast1",
    "sao_paulo": "southamerica-east1",
    "johannesburg": "africa-south1",
    "dubai": "me-central1",
}


class UnknownRegionError(ValueError):
    pass


def gcp_region_for(hathora_region: str | None, override: str | None = None) -> str:
    """Override if given, else the mapped region; Hathora spells regions "Los_Angeles" or "los angeles"."""
    if override:
        return override
    if not hathora_region:
        raise UnknownRegionError("HATHORA_REGION is not set and GCP_REGION is not set: cannot tell the GCP region")
    key = hathora_region.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return HATHORA_TO_GCP_REGION[key]
    except KeyError:
        known = ", ".join(sorted(HATHORA_TO_GCP_REGION))
        raise UnknownRegionError(
            f"HATHORA_REGION={hathora_region!r} has no known GCP region (known: {known}); set GCP_REGION"
        ) from None
