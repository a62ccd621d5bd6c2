"""Checks shared by the API tests: the one error shape, and no stack trace in any body."""

from __future__ import annotations

from datetime import datetime

ERROR_KEYS = {"status", "code", "message", "fields", "incident"}


def assert_clean(response) -> None:
    """No response, whatever its status, shows a Python traceback."""
    assert b"Traceback" not in response.data, response.data[:2000]
    assert b'File "/' not in response.data, response.data[:2000]


def assert_error(
    response, status: int, code: str | None = None, fields: list | None = None
) -> dict:
    """The response is the one JSON error shape with this status; return its ``error`` object.

    ``fields``: names that must each be reported in ``error.fields`` (others may be too).
    """
    assert response.status_code == status, (response.status_code, response.data[:2000])
    assert response.is_json, response.data[:500]
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    for name, messages in error["fields"].items():
        assert isinstance(name, str) and isinstance(messages, list) and messages, (name, messages)
        assert all(isinstance(m, str) and m for m in messages), messages
    assert error["incident"] is None or isinstance(error["incident"], str)
    if code is not None:
        assert error["code"] == code, error
    for name in fields or []:
        assert name in error["fields"], (name, error["fields"])
    assert_clean(response)
    return error


def check_every_response(api) -> list:
    """Record every response ``api`` gets, to check them all at the end of a test."""
    seen: list = []
    original = api.call

    def call(*args, **kwargs):
        response = original(*args, **kwargs)
        seen.append(response)
        return response

    api.call = call  # the instance attribute shadows the method that get() and post() use
    return seen


def assert_all_well_formed(seen: list) -> None:
    for response in seen:
        assert_clean(response)
        if response.status_code >= 400:
            assert_error(response, response.status_code)


def aware(text: str) -> datetime:
    """An ISO timestamp that says which instant it is (with its UTC offset)."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"timestamp without a UTC offset: {text}"
    return value
