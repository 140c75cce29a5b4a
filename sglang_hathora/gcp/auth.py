"""The service-account key from GCP_SERVICE_ACCOUNT_KEY_BASE64: decoded in memory, never written to
disk, never logged; every error names what is wrong without echoing any of the key."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import SecretStr

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_REQUIRED_FIELDS = ("type", "project_id", "private_key", "client_email", "token_uri")


class ServiceAccountKeyError(ValueError):
    pass


def decode_key(secret: SecretStr) -> dict[str, Any]:
    try:
        raw = base64.b64decode(secret.get_secret_value().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ServiceAccountKeyError("GCP_SERVICE_ACCOUNT_KEY_BASE64 is not valid base64") from None
    try:
        info = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ServiceAccountKeyError("GCP_SERVICE_ACCOUNT_KEY_BASE64 does not decode to JSON") from None
    if not isinstance(info, dict):
        raise ServiceAccountKeyError("GCP_SERVICE_ACCOUNT_KEY_BASE64 does not decode to a JSON object")
    missing = [name for name in _REQUIRED_FIELDS if not info.get(name)]
    if missing:
        raise ServiceAccountKeyError(f"the service-account key lacks: {', '.join(missing)}")
    if info["type"] != "service_account":
        raise ServiceAccountKeyError("the key is not a service-account key (type must be 'service_account')")
    return info


def credentials_from(info: dict[str, Any]) -> Any:
    """google-auth credentials; the Compute client then signs its own JWTs (no token exchange)."""
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except (ValueError, KeyError, TypeError):
        # The library's message can quote the key material: say only what it is.
        raise ServiceAccountKeyError("the service-account key's private_key is not a valid PEM RSA key") from None
