"""The admin pages under test, on a fresh SQLite database with three units and one user per role.

``make_app`` mirrors tests/api/conftest.py: migrate an empty database with
Alembic, seed 顾村镇 / 大场镇 / 宝山工业园区 and the users admin, editor,
reviewer, auditor and submitter (of 顾村镇), all with the password ``secret``,
and share the session's contained durable-rules engine.

One app per test module (loading the shipped rules takes a few seconds); each
test gets its own client, so its own cookies and session.  Tests that write
use units and schemes no other test in the module depends on.  Passwords are
hashed once with a cheap Werkzeug method (the production default, scrypt, is
slow by design).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from service import create_app
from werkzeug.security import generate_password_hash

from service.commands import upgrade
from service.config import Settings
from service.db import Unit, User

from ..conftest import RULES

UNITS = [("gucun", "顾村镇", "town"), ("dachang", "大场镇", "town"), ("bsip", "宝山工业园区", "park")]
USERS = [("admin", "admin", None), ("editor", "editor", None), ("reviewer", "reviewer", None),
         ("auditor", "auditor", None), ("submitter", "submitter", "gucun")]
PASSWORD = "secret"
SCHEME = "baoshan-2022-b1"

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(tmp_path: Path, engine, rules_dir: Path = RULES):
    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    upgrade(url)
    settings = Settings(rules_dir=rules_dir, engine_workers=1, engine_deadline=10, database_url=url,
                        secret_key="test", instance_dir=tmp_path / "instance", max_body_bytes=1024 * 1024)
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        for code, name, kind in UNITS:
            s.add(Unit(code=code, name=name, kind=kind, district="宝山区"))
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    with ctx.db.transaction() as s:
        ids = {u.code: u.id for u in s.query(Unit)}
        for username, role, unit in USERS:
            s.add(User(username=username, display_name=username, role=role, unit_id=ids.get(unit),
                       password_hash=cheap, active=True))
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory, engine):
    made = make_app(tmp_path_factory.mktemp("admin"), engine)
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
    return client.post("/admin/login", data={"username": username, "password": password,
                                              "csrf_token": csrf_token(page.text)})


def session_cookie(client):
    return client.get_cookie("scoring_admin", path="/admin")
