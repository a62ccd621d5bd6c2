"""The application under test, as the API and the admin-page tests both build it.

A freshly migrated database (Alembic, as in production), the app on it with
the given rules, three units of 宝山区 and one user per role.  Every user has
the password ``secret`` and an API token; the submitter belongs to 顾村镇.
Passwords are hashed with a cheap Werkzeug method (the production default,
scrypt, is slow by design and would only slow the tests down).
"""

from __future__ import annotations

from pathlib import Path

from werkzeug.security import generate_password_hash

from service.access import new_token
from service.app import create_app
from service.commands import upgrade
from service.config import Settings
from service.db import Unit, User

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


def make_app(
    tmp_path: Path, url: str, engine, rules_dir: Path = RULES, max_body_bytes: int = 1024 * 1024
):
    """The app on a migrated database at ``url``, seeded; (app, {username: API token})."""
    upgrade(url)
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
    return app, tokens
