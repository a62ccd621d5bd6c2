"""The HTTP API under test, on SQLite and on PostgreSQL.

Every test that uses ``client`` runs twice: once on a fresh SQLite file and
once on a fresh PostgreSQL schema (``SCORING_TEST_POSTGRES_URL``; CI sets it
and fails if it cannot; elsewhere the PostgreSQL half is skipped when unset).
Each run builds the app as tests/apps.py does (a migrated empty database,
three units, one user per role with an API token) and shares the session's
contained durable-rules engine.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import simplejson
from sqlalchemy import create_engine, make_url, text

from ..apps import USERS, make_app  # noqa: F401  (USERS: the roles the matrix walks)
from ..conftest import MINIMAL, RULES

POSTGRES_URL = os.environ.get("SCORING_TEST_POSTGRES_URL")
DATABASES = ["sqlite", "postgresql"]

_SCHEMAS: list = []  # the schemas this run made, dropped when it ends


def _fresh_postgres() -> str:
    """A URL of an empty schema of its own in the test database: tests never touch anything they did
    not make there (not even ``public``), and two runs on one database do not meet."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("SCORING_TEST_POSTGRES_URL is not set: CI must test PostgreSQL")
        pytest.skip("SCORING_TEST_POSTGRES_URL not set")
    schema = f"scoring_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    _SCHEMAS.append(schema)
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pytest_sessionfinish(session, exitstatus):
    if not _SCHEMAS:
        return
    engine = create_engine(POSTGRES_URL)
    # one transaction per schema: dropping them all in one takes a lock on every table, index and
    # trigger of every schema at once, which filled PostgreSQL's shared lock table ("out of shared
    # memory") while the other test worker was still migrating a schema of its own
    for schema in _SCHEMAS:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@dataclass
class Api:
    """A test client that signs requests as one of the seeded users."""

    client: object
    tokens: dict
    app: object

    def call(
        self, method: str, path: str, as_: str | None = None, headers: dict | None = None, **kwargs
    ):
        headers = dict(headers or {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kw):
        return self.call("GET", path, as_, **kw)

    def post(self, path, as_=None, **kw):
        return self.call("POST", path, as_, **kw)

    @property
    def ctx(self):
        return self.app.extensions["scoring"]

    def round_of(self, scheme: str) -> int:
        """The id of the scheme's newest round (every test app opens one per scheme)."""
        rounds = [r for r in self.get("/api/rounds", "admin").json if r["scheme"] == scheme]
        return rounds[0]["id"]

    def official(
        self,
        code: str,
        scheme: str,
        facts: dict,
        by: str = "admin",
        reviewer: str = "reviewer",
        reason: str = "",
    ):
        """Walk a unit through the cycle to an official score: ``by`` submits the self-assessment
        (a correction when there is a version already), ``reviewer`` completes the review and
        computes the official score; the score response."""
        path = f"/api/units/{code}/schemes/{scheme}"
        latest = self.get(f"{path}/submissions/latest", "admin")
        headers = {"If-Match": latest.headers["ETag"]} if latest.status_code == 200 else {}
        body = {"role": "self", "facts": facts}
        if latest.status_code == 200:
            body["reason"] = reason or "更正"
        sent = self.post(
            f"{path}/submissions",
            by,
            data=simplejson.dumps(body, use_decimal=True, ensure_ascii=False),
            content_type="application/json",
            headers=headers,
        )
        assert sent.status_code == 201, sent.json
        rid = self.round_of(scheme)
        done = self.post(f"/api/rounds/{rid}/units/{code}/review-complete", reviewer)
        assert done.status_code == 200, done.json
        score = self.post(f"{path}/scores", reviewer, json={"kind": "official"})
        assert score.status_code == 201, score.json
        return score


def make_api(tmp_path: Path, database: str, engine, rules_dir: Path = RULES) -> Api:
    url = f"sqlite:///{tmp_path / 'scoring.db'}" if database == "sqlite" else _fresh_postgres()
    app, tokens = make_app(tmp_path, url, engine, rules_dir, max_body_bytes=256 * 1024)
    return Api(app.test_client(), tokens, app)


@pytest.fixture(params=DATABASES)
def api(request, tmp_path, engine):
    """The API on the shipped rules, once per database."""
    made = make_api(tmp_path, request.param, engine)
    yield made
    made.ctx.db.engine.dispose()


@pytest.fixture(params=DATABASES)
def api_on_copy(request, tmp_path, engine):
    """The API on a private copy of the small fixture scheme (for rules that change)."""
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    made = make_api(tmp_path, request.param, engine, rules)
    made.rules_dir = rules
    yield made
    made.ctx.db.engine.dispose()
