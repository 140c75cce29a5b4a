"""OpenAI's nested error shape, and the conversion of SGLang's flat errors."""

from __future__ import annotations

import json

from sglang_hathora.errors import ApiError, error_body, error_type_for, from_sglang_error


def test_nested_shape() -> None:
    assert error_body("bad", 400, param="messages") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "messages", "code": None}
    }
    assert error_type_for(401) == "authentication_error"
    assert error_type_for(429) == "rate_limit_error"
    assert error_type_for(503) == "server_error"


def test_sglang_flat_error_is_nested_with_its_message() -> None:
    flat = {
        "object": "error",
        "message": "Messages cannot be empty.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    response = from_sglang_error(json.dumps(flat).encode(), 400).response()
    assert response.status_code == 400
    assert json.loads(response.body) == {
        "error": {"message": "Messages cannot be empty.", "type": "invalid_request_error", "param": None, "code": None}
    }


def test_unparseable_sglang_error_still_gets_a_message() -> None:
    response = from_sglang_error(b"<html>oops</html>", 500).response()
    body = json.loads(response.body)
    assert body["error"]["message"] == "request failed with status 500"
    assert body["error"]["type"] == "server_error"


def test_streaming_error_event_is_one_sse_data_line() -> None:
    event = ApiError("engine died", 500).sse_event()
    assert event.startswith("data: ") and event.endswith("\n\n") and event.count("\n") == 2
    assert json.loads(event[len("data: ") :])["error"]["message"] == "engine died"


def test_one_error_is_the_same_response_from_a_route_or_from_middleware() -> None:
    error = ApiError("slow down", 429, code="rate_limit_exceeded", headers={"Retry-After": "1"})
    response = error.response()
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert json.loads(response.body) == error.body() == error_body("slow down", 429, None, "rate_limit_exceeded")
    assert json.loads(error.sse_event()[len("data: ") :]) == error.body()
