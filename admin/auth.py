"""Who is signed in to the admin pages: the service's own users, roles and password hashes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, g, request, session
from sqlalchemy import select

from service import operations as ops
from service.access import PERMISSIONS, ROLE_WORDS, Actor
from service.db import Unit, User


def ctx():
    return current_app.extensions["scoring"]


@dataclass(frozen=True)
class Person:
    """The signed-in user as the pages show them."""

    actor: Actor
    display_name: str
    unit_code: str | None
    unit_name: str | None

    @property
    def role_words(self) -> str:
        return ROLE_WORDS.get(self.actor.role, self.actor.role)

    def can(self, permission: str) -> bool:
        """Whether to offer an action; the operation itself still checks."""
        return self.actor.role in PERMISSIONS.get(permission, ())


def _load(user_id: int) -> Person | None:
    with ctx().db.transaction() as s:
        row = s.execute(
            select(User, Unit).outerjoin(Unit, Unit.id == User.unit_id).where(User.id == user_id)
        ).first()
    if row is None or not row[0].active or row[0].disabled_at is not None:
        return None
    user, unit = row
    return Person(
        Actor(user.id, user.username, user.role, user.unit_id),
        user.display_name or user.username,
        unit.code if unit else None,
        unit.name if unit else None,
    )


def current_person() -> Person | None:
    if "admin_person" not in g:
        uid = session.get("uid")
        person = _load(uid) if isinstance(uid, int) else None
        if uid is not None and person is None:  # deactivated or removed since sign-in
            session.clear()
        g.admin_person = person
    return g.admin_person


def current_actor() -> Actor | None:
    person = current_person()
    return person.actor if person else None


def authenticate(username: str, password: str) -> int | None:
    """The user's id if the password matches their Werkzeug hash; same work either way.  Raises
    ``TooManyAttempts`` while the account or the client address is locked (journaled, throttled
    as the API's sign-in is: the same counters)."""
    user = ops.authenticate(ctx(), username, password, request.remote_addr or "", via="admin")
    return user.id if user is not None else None


def sign_in(user_id: int) -> None:
    """Clear the session and re-create it under a new id, then remember the user."""
    session.clear()
    current_app.session_interface.regenerate(session)
    g.pop("csrf_token", None)  # Flask-WTF caches the old token per request
    g.pop("admin_person", None)
    session["uid"] = user_id


def sign_out() -> None:
    current_app.session_interface.destroy(session)
    g.pop("admin_person", None)


def safe_next(target: str | None, prefix: str) -> str | None:
    """Only a path on these pages (no scheme, no host, no //): never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith(prefix)
        or target.startswith("//")
        or "\\" in target
    ):
        return None
    return target
