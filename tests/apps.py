"""The application under test, as the API and the admin-page tests both build it.

A freshly migrated database (Alembic, as in production), the app on it with
the given rules, three units of 宝山区 and one user per role.  Every user has
the password ``secret`` and an API token; the submitter belongs to 顾村镇.
Passwords are hashed with a cheap Werkzeug method (the production default,
scrypt, is slow by design and would only slow the tests down).

An empty SQLite database is migrated once per test session (Alembic, as in
production) into a template file, and each app gets a byte copy of it: the
same tables, triggers and ``alembic_version`` as running the migrations
again, in a millisecond instead of a third of a second.

PostgreSQL keeps running the migrations into each test's own schema (about
0.25 s), because neither copy measured here was cheaper: a database per test
from a migrated template (``CREATE DATABASE … TEMPLATE``) took 60–350 ms to
create and about 1 s to drop (PostgreSQL 15 forces a checkpoint on every
``DROP DATABASE``), and replaying the statements Alembic sent for the first
schema took 231 ms against Alembic's 267 ms (the time is the server's DDL).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import make_url
from werkzeug.security import generate_password_hash

from service import rounds
from service.access import Actor, new_token
from service.app import create_app
from service.commands import upgrade
from service.config import Settings
from service.db import Unit, User
from service.domain.cycle import RoundDates

from .conftest import RULES

UNITS = [
    ("gucun", "顾村镇", "town"),
    ("dachang", "大场镇", "town"),
    ("bsip", "宝山工业园区", "park"),
]
#: one user per role; the submitter belongs to gucun
USERS = [
    ("admin", "admin", None),
    ("editor", "editor", None),
    ("reviewer", "reviewer", None),
    ("auditor", "auditor", None),
    ("submitter", "submitter", "gucun"),
]
PASSWORD = "secret"


_template_lock = threading.Lock()
_template: dict = {}  # "sqlite" -> the migrated template file of this test process


def _sqlite_template() -> Path:
    with _template_lock:
        if "sqlite" not in _template:
            folder = Path(tempfile.mkdtemp(prefix="scoring-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            upgrade(f"sqlite:///{folder / 'template.db'}")
            _template["sqlite"] = folder / "template.db"
        return _template["sqlite"]


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest migration: a new SQLite file is a copy of the
    session's migrated template; anything else (PostgreSQL, an existing file) runs Alembic."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        target = Path(parsed.database)
        if not target.exists():
            shutil.copyfile(_sqlite_template(), target)
            return
    upgrade(url)


def make_app(
    tmp_path: Path,
    url: str,
    engine,
    rules_dir: Path = RULES,
    max_body_bytes: int = 1024 * 1024,
    open_rounds: bool = True,
):
    """The app on a migrated database at ``url``, seeded; (app, {username: API token}).  Every
    scheme has an open round for 2026 (``open_rounds``), as an office's would once it starts."""
    migrate(url)
    settings = Settings(
        rules_dir=rules_dir,
        engine_workers=1,
        engine_deadline=10,
        database_url=url,
        secret_key="test",
        instance_dir=tmp_path / "instance",
        max_body_bytes=max_body_bytes,
    )
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    db = app.extensions["scoring"].db
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    with db.transaction() as s:
        for code, name, kind in UNITS:
            s.add(Unit(code=code, name=name, kind=kind, district="宝山区"))
        s.flush()
        ids = {u.code: u.id for u in s.query(Unit)}
        users = [
            User(
                username=username,
                display_name=username,
                role=role,
                unit_id=ids.get(unit),
                password_hash=cheap,
                active=True,
            )
            for username, role, unit in USERS
        ]
        s.add_all(users)
        s.flush()
        user_ids = {u.username: u.id for u in users}
    tokens = {
        username: new_token(db, user_ids[username], "test") for username, _role, _unit in USERS
    }
    if open_rounds:
        open_round_of_every_scheme(app, Actor(user_ids["admin"], "admin", "admin", None))
    return app, tokens


#: the dates of the rounds tests open: every stage open for years (tests that need a deadline
#: passed move it with the API, as an admin would)
FAR = datetime(2099, 1, 1, tzinfo=UTC)


#: the same kind of dates as an API or form body gives them (Beijing time): every stage open
ROUND_DATES = {
    "self_deadline": "2099-01-01T17:00:00+08:00",
    "review_deadline": "2099-02-01T17:00:00+08:00",
    "publication_start": "2099-02-02T09:00:00+08:00",
    "appeal_deadline": "2099-02-09T17:00:00+08:00",
    "publication_end": "2099-02-12T17:00:00+08:00",
}


def round_dates(
    self_deadline: datetime = FAR, review_deadline: datetime = FAR + timedelta(days=30)
) -> RoundDates:
    return RoundDates(
        self_deadline,
        review_deadline,
        review_deadline + timedelta(days=1),
        review_deadline + timedelta(days=8),
        review_deadline + timedelta(days=10),
    )


def open_round_of_every_scheme(app, admin: Actor, year: int = 2026) -> dict:
    """A round of every served scheme, for ``year``; {scheme id: round id}."""
    ctx = app.extensions["scoring"]
    return {
        scheme_id: rounds.open_round(ctx, admin, scheme_id, year, "", round_dates()).id
        for scheme_id in ctx.registry.schemes()
    }
