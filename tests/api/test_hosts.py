"""Hosts that hold no state: two service instances, each with its own instance folder and its own
copy of the rules, against one PostgreSQL database, with no sticky sessions.

Everything they must agree on lives in the database: the admin sessions, the key that signs
CSRF tokens and anonymous cookies (made once when SCORING_SECRET_KEY is not set, by whichever
host gets there first), the sign-in throttle's counters and the rule set in force.  So a user
signs in on one host and goes on on the other: a form made on A is accepted by B, a reload on A
is what B scores with, failed sign-ins on A count on B, a sign-out on B ends the session on A.
"""

from __future__ import annotations

import re
import shutil
import threading
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from service.access import stored_secret
from service.commands import add_user, upgrade
from service.db import Database, ServiceSecret, Submission, Unit

from ..conftest import MINIMAL
from .conftest import _fresh_postgres
from .servers import Server
from .test_crash_safety import ROUND

PASSWORD = "secret-password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _cookie(headers, old: str | None = None) -> str | None:
    """The admin cookie the response sets (``name=value``), else the one the client had."""
    for header in headers.get_all("Set-Cookie") or []:
        if header.startswith("scoring_admin="):
            return header.split(";", 1)[0]
    return old


def _page(server: Server, path: str, cookie: str | None):
    status, headers, body = server.raw("GET", path, None, {"Cookie": cookie} if cookie else {})
    return status, _cookie(headers, cookie), body.decode()


def _post_form(server: Server, path: str, cookie: str, form: dict):
    status, headers, body = server.raw(
        "POST", path, urlencode(form).encode(), {"Cookie": cookie, **FORM}
    )
    return status, _cookie(headers, cookie), headers, body.decode()


def _start_together(*servers: Server) -> None:
    """Start every server at once (both make the secret key if none exists: one must win)."""
    errors = []

    def start(server):
        try:
            server.start()
        except Exception as err:  # re-raised below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]


@pytest.mark.e2e
def test_two_hosts_with_separate_instance_folders_serve_as_one(tmp_path):
    url = _fresh_postgres()
    upgrade(url)
    db = Database(url)
    admin = {"Authorization": f"Bearer {add_user(db, 'admin', 'admin', None, PASSWORD)}"}
    with db.transaction() as s:
        s.add(Unit(code="gucun", name="顾村镇", kind="town", district="宝山区"))
    hosts = []
    for name in ("a", "b"):
        rules = tmp_path / name / "rules"
        shutil.copytree(MINIMAL, rules / "minimal")
        hosts.append(
            Server(
                tmp_path / name,
                url,
                workers=1,
                env={
                    "SCORING_RULES_DIR": str(rules),
                    "SCORING_RULES_CHECK_SECONDS": "0",
                    "SCORING_SECRET_KEY": None,  # not configured: made once, in the database
                },
            )
        )
    a, b = hosts
    try:
        _start_together(a, b)

        # 1. the sign-in form comes from A, the sign-in goes to B
        status, cookie, page = _page(a, "/admin/login", None)
        assert status == 200 and cookie
        token = _CSRF.search(page).group(1)
        status, cookie, headers, _ = _post_form(
            b,
            "/admin/login",
            cookie,
            {"username": "admin", "password": PASSWORD, "csrf_token": token},
        )
        assert status == 302 and headers["Location"] == "/admin/", b.log()
        assert _page(a, "/admin/", cookie)[0] == 200  # signed in on A too

        # 2. the facts form comes from A (its CSRF token made there), the submission goes to B:
        # the unit's self-assessment, entered by the admin, in the round the admin opens on B
        status, opened = b.request("POST", "/api/rounds", dict(ROUND, scheme="minimal"), admin)
        assert status == 201, opened
        facts = "/admin/units/gucun/schemes/minimal/facts"
        status, cookie, page = _page(a, facts, cookie)
        assert status == 200
        token = _CSRF.search(page).group(1)
        status, cookie, _headers, body = _post_form(
            b,
            facts,
            cookie,
            {
                "csrf_token": token,
                "action": "self",
                "base_version": "0",
                "f.target": "95",
                "f.actual": "93",
            },
        )
        assert status == 302, body
        with db.transaction() as s:
            stored = list(s.scalars(select(Submission)))
        assert [(x.version, str(x.facts["target"]), str(x.facts["actual"])) for x in stored] == [
            (1, "95", "93")
        ]

        # 3. the rules reloaded on A (from A's copy) are what B serves (B's copy is older), and
        # a round B opens now is under them
        scheme_file = tmp_path / "a" / "rules" / "minimal" / "scheme.yaml"
        scheme_file.write_text(
            scheme_file.read_text(encoding="utf-8").replace(
                "title: 测试用细则", "title: 测试用细则（修订）"
            ),
            encoding="utf-8",
        )
        status, reloaded = a.request("POST", "/api/rules/reload", headers=admin)
        assert status == 200, reloaded
        revised = reloaded["changes"]["minimal"]["to"]
        status, later = b.request(
            "POST", "/api/rounds", dict(ROUND, scheme="minimal", year=2027), admin
        )
        assert status == 201 and later["rules_version"] == revised, later
        assert b.request("GET", "/api/schemes/minimal", headers=admin)[1]["title"] == (
            "测试用细则（修订）"
        )

        # 4. failed sign-ins on A count on B
        for _ in range(5):
            status, _body = a.request(
                "POST", "/api/auth/token", {"username": "intruder", "password": "guess-guess"}
            )
            assert status == 401
        status, headers, _body = b.raw(
            "POST",
            "/api/auth/token",
            b'{"username": "intruder", "password": "guess-guess"}',
            {"Content-Type": "application/json"},
        )
        assert status == 429 and int(headers["Retry-After"]) > 0

        # 5. signing out on B ends the session on A
        status, cookie, page = _page(a, "/admin/", cookie)
        token = _CSRF.search(page).group(1)
        status, _cookie_after, _headers, _body = _post_form(
            b, "/admin/logout", cookie, {"csrf_token": token}
        )
        assert status == 302
        assert _page(a, "/admin/", cookie)[0] == 302

        # nothing in either instance folder; one key for both, in the database
        for name in ("a", "b"):
            instance = tmp_path / name / "instance"
            assert not instance.exists() or list(instance.iterdir()) == [], name
        with db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(ServiceSecret)) == 1
    finally:
        a.kill()
        b.kill()
        db.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_secret_key_is_made_once_when_hosts_start_at_once(tmp_path, database):
    url = f"sqlite:///{tmp_path / 'scoring.db'}" if database == "sqlite" else _fresh_postgres()
    upgrade(url)
    barrier, keys = threading.Barrier(8), []

    def start():
        db = Database(url)  # a host of its own: its own connections
        barrier.wait()
        keys.append(stored_secret(db))
        db.engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 64
    db = Database(url)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ServiceSecret)) == 1
    db.engine.dispose()
