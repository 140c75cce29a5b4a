"""The service-account key: decoded in memory; errors never echo the key."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from sglang_hathora.gcp.auth import ServiceAccountKeyError, credentials_from, decode_key
from tests.fake_compute import encode_key, make_service_account_key


@pytest.fixture(scope="module")
def key_info() -> dict:
    return make_service_account_key()[0]


def test_valid_key_decodes_to_credentials(key_info: dict) -> None:
    info = decode_key(SecretStr(encode_key(key_info)))
    assert info["project_id"] == "test-project"
    credentials = credentials_from(info)
    assert credentials.service_account_email == key_info["client_email"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!!secretmaterial", "is not valid base64"),
        (b64("{not json secretmaterial"), "does not decode to JSON"),
        (b64('["secretmaterial"]'), "does not decode to a JSON object"),
        (b64(json.dumps({"type": "service_account", "private_key": "secretmaterial"})), "lacks: project_id"),
    ],
)
def test_malformed_keys_are_named_not_echoed(value: str, message: str) -> None:
    with pytest.raises(ServiceAccountKeyError) as raised:
        decode_key(SecretStr(value))
    assert message in str(raised.value)
    assert "secretmaterial" not in str(raised.value) and value not in str(raised.value)


def test_bad_private_key_is_named_not_echoed(key_info: dict) -> None:
    broken = {**key_info, "private_key": "-----BEGIN PRIVATE KEY-----\nsecretmaterial\n-----END PRIVATE KEY-----\n"}
    with pytest.raises(ServiceAccountKeyError) as raised:
        credentials_from(decode_key(SecretStr(encode_key(broken))))
    assert "not a valid PEM RSA key" in str(raised.value) and "secretmaterial" not in str(raised.value)
