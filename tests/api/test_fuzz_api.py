"""The API fuzzed against its own OpenAPI document (schemathesis 4.32, through the WSGI app), as the
admin and as a unit's submitter, on SQLite and PostgreSQL: no 5xx, and every answer has a status,
content type and body the document gives for that operation.

Bounded by count, not time (a busy machine would shorten a time cap): five cases of every
operation, as each user, valid and invalid, with a generous time cap only as a safety net; ``python -m tools.fuzz_api --seconds 600`` is the longer run
(the same harness, tools/fuzz_api.py)."""

from __future__ import annotations

import logging

import pytest

from tools.fuzz_api import fuzz

EXAMPLES = 5  # per operation, user and mode
SAFETY_SECONDS = 300


def test_the_api_answers_as_its_document_says(api):
    pytest.importorskip("schemathesis")
    logging.disable(logging.ERROR)  # the harness counts 5xx; their stack traces are noise here
    try:
        report = fuzz(api.app, api.tokens, max_examples=EXAMPLES, seconds=SAFETY_SECONDS)
    finally:
        logging.disable(logging.NOTSET)
    print(report.summary())
    assert report.server_errors == 0 and report.mismatches == 0, report.summary()
    # the run reached every operation, and more than the gate of signing in
    operations = {
        f"{method.upper()} {path}"
        for path, item in api.get("/api/openapi.json").json["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete")
    }
    assert set(report.operations) == operations, operations - set(report.operations)
    assert report.cases >= 250, report.summary()
    assert {200, 201, 404, 422} <= set(report.statuses), report.summary()


def test_the_harness_refuses_a_status_only_default_covers():
    """The check the document's catch-all would hide: a 404 where only 200 and "default" are named."""
    from types import SimpleNamespace

    from tools.fuzz_api import documented_status

    case = SimpleNamespace(
        operation=SimpleNamespace(
            definition=SimpleNamespace(raw={"responses": {"200": {}, "404": {}, "default": {}}})
        )
    )
    assert documented_status(None, SimpleNamespace(status_code=404), case) is None
    assert (
        documented_status(None, SimpleNamespace(status_code=500), case) is None
    )  # 5xx: its own check
    with pytest.raises(AssertionError, match="status 409 is not documented"):
        documented_status(None, SimpleNamespace(status_code=409), case)
