"""The admin pages under test, on a fresh database (SQLite, then PostgreSQL) with three units and one user per role.

``make_app`` is tests/apps.py's: a migrated empty database,
顾村镇 / 大场镇 / 宝山工业园区 and the users admin, editor, reviewer, auditor and
submitter (of 顾村镇), all with the password ``secret``; the session's contained
durable-rules engine is shared.

One app per test module (loading the shipped rules takes a few seconds); each
test gets its own client, so its own cookies and session.  Tests that write
use units and schemes no other test in the module depends on.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from service import jobs

from ..api.conftest import DATABASES, _fresh_postgres
from ..apps import PASSWORD
from ..apps import make_app as build_app
from ..conftest import RULES

SCHEME = "baoshan-2022-b1"

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(tmp_path: Path, engine, rules_dir: Path = RULES, database: str = "sqlite"):
    url = f"sqlite:///{tmp_path / 'scoring.db'}" if database == "sqlite" else _fresh_postgres()
    app, _tokens = build_app(tmp_path, url, engine, rules_dir)
    return app


@pytest.fixture(scope="module", params=DATABASES)
def app(request, tmp_path_factory, engine):
    """One app per module and database: the module's tests all run on SQLite, then on PostgreSQL."""
    made = make_app(tmp_path_factory.mktemp("admin"), engine, database=request.param)
    yield made
    made.extensions["scoring"].db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page.text)},
    )


def session_cookie(client):
    return client.get_cookie("scoring_admin", path="/admin")


def actor(app, username: str):
    """The service-layer actor of a test user (for calling ``service.operations`` directly)."""
    from service.access import Actor
    from service.db import User

    with app.extensions["scoring"].db.transaction() as s:
        user = s.query(User).filter_by(username=username).one()
    return Actor(user.id, user.username, user.role, user.unit_id)


def round_of(app, scheme: str) -> int:
    """The id of the scheme's newest round (every test app opens one per scheme for 2026)."""
    from service import rounds

    ctx = app.extensions["scoring"]
    return rounds.list_rounds(ctx, actor(app, "admin"), scheme)[0].id


def self_submit(app, code: str, scheme: str, facts: dict, by: str = "admin"):
    """The unit's self-assessment (``by`` the admin, as the unit, unless told): since rounds
    (issue 9) a reviewer reviews only what a unit has submitted."""
    from service import operations as ops

    return ops.submit(app.extensions["scoring"], actor(app, by), code, scheme, "self", facts,
                      {}, "", None)  # fmt: skip


def official(app, code: str, scheme: str, facts: dict, reviewer: str = "reviewer"):
    """Walk a unit through the cycle to an official score, as ``Api.official`` does on the API:
    the admin submits the self-assessment as the unit, ``reviewer`` completes the review and
    computes the official score; the score row."""
    from service import operations as ops
    from service import rounds

    ctx = app.extensions["scoring"]
    self_submit(app, code, scheme, facts)
    rounds.complete_review(ctx, actor(app, reviewer), round_of(app, scheme), code)
    return ops.compute_score(ctx, actor(app, reviewer), code, scheme, kind="official")


class JobWorker:
    """A background-job worker thread, as each service process runs one (the walks in Chromium)."""

    def __init__(self, app):
        self.stop = threading.Event()
        self.worker = jobs.Worker(app.extensions["scoring"])
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.is_set():
            if not self.worker.run_once():
                self.stop.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
