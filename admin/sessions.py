"""Sessions of the admin pages, kept in the database so that any host can serve any request.

Two kinds, told apart by the cookie's value:

- **signed in**: the browser holds only a random id (256 bits) in an HttpOnly, SameSite=Lax
  cookie scoped to ``/admin``; the session's contents (who is signed in, the CSRF token, drafts
  of fact forms) are a row of ``admin_sessions`` keyed by the SHA-256 of the id.  So a draft may
  be large, signing out really ends the session (a copied cookie is worthless afterwards), and a
  new id is issued at sign-in (``regenerate``), so an id planted before sign-in never gains
  access.  A session ends after ``ADMIN_SESSION_HOURS`` without a request and, in any case,
  ``ADMIN_SESSION_MAX_HOURS`` after sign-in; ended rows are deleted from time to time by one
  indexed statement.
- **anonymous** (someone reading the sign-in page): nothing is stored on the server.  The only
  thing such a session holds is the sign-in form's CSRF token, so it travels in the cookie
  itself, signed with the service's secret key and refused after ``ANONYMOUS_SECONDS``: a
  thousand anonymous page views add not one row anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta

from flask import request
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, update
from werkzeug.datastructures import CallbackDict

from service.db import AdminSession, now

TOUCH_AFTER = 60  # seconds: how stale "last seen" may get before it is written again
PRUNE_EVERY = 600  # seconds between sweeps of ended sessions (per process)
ANONYMOUS_SECONDS = 2 * 3600  # a sign-in form older than this is refused (its CSRF token too)
ANONYMOUS_SALT = "scoring-admin-anonymous"


class ServerSession(CallbackDict, SessionMixin):
    def __init__(
        self,
        initial=None,
        sid: str | None = None,
        seen: datetime | None = None,
        created: datetime | None = None,
        had_cookie: bool = False,
    ):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.seen = seen
        self.created = created
        self.had_cookie = had_cookie  # the request brought a cookie (an anonymous one included)
        self.modified = False
        self.discarded: list[str] = []  # ids to delete at the end of the request


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class DatabaseSessionInterface(SessionInterface):
    def __init__(self, cookie_path: str = "/admin"):
        self.cookie_path = cookie_path
        self._last_prune = 0.0

    # --- settings and storage ------------------------------------------------------------
    @staticmethod
    def _db(app):
        return app.extensions["scoring"].db

    @staticmethod
    def _idle(app) -> timedelta:
        return timedelta(hours=float(app.config.get("ADMIN_SESSION_HOURS", 8)))

    @staticmethod
    def _lifetime(app) -> timedelta:
        return timedelta(hours=float(app.config.get("ADMIN_SESSION_MAX_HOURS", 12)))

    def _ends(self, app, created: datetime, seen: datetime) -> datetime:
        return min(created + self._lifetime(app), seen + self._idle(app))

    def _signer(self, app) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.secret_key, salt=ANONYMOUS_SALT)

    def _prune(self, app) -> None:
        if time.monotonic() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        with self._db(app).transaction() as s:
            s.execute(delete(AdminSession).where(AdminSession.expires_at < now()))

    # --- the session interface --------------------------------------------------------
    def open_session(self, app, req):
        value = req.cookies.get(self.get_cookie_name(app))
        if not value:
            return ServerSession()
        if "." in value:  # anonymous: the data itself, signed
            try:
                data = self._signer(app).loads(value, max_age=ANONYMOUS_SECONDS)
            except BadSignature:
                return ServerSession(had_cookie=True)
            return ServerSession(data if isinstance(data, dict) else {}, had_cookie=True)
        if not 20 <= len(value) <= 100:
            return ServerSession(had_cookie=True)
        db = self._db(app)
        with db.transaction() as s:
            row = s.get(AdminSession, _key(value))
            if row is None:
                return ServerSession(had_cookie=True)
            moment = now()
            if moment < self._ends(app, row.created_at, row.seen_at):
                return ServerSession(row.data, value, row.seen_at, row.created_at, True)
            s.delete(row)  # ended: idle too long, or past its absolute lifetime
        return ServerSession(had_cookie=True)

    def regenerate(self, session: ServerSession) -> None:
        """A new id for this session (sign-in): the old id stops working at the end of the request."""
        if session.sid:
            session.discarded.append(session.sid)
        session.sid = None
        session.created = None
        session.modified = True

    def destroy(self, session: ServerSession) -> None:
        """Sign-out: forget everything; the cookie is removed."""
        self.regenerate(session)
        session.clear()

    def _path(self) -> str:
        return (request.script_root or "") + self.cookie_path

    def _set_cookie(self, app, response, value: str) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            value,
            domain=self.get_cookie_domain(app),
            path=self._path(),
            httponly=True,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )

    def save_session(self, app, session: ServerSession, response) -> None:
        db = self._db(app)
        gone = list(session.discarded)
        signed_in = isinstance(session.get("uid"), int)
        if session.sid and not signed_in:  # signed out or cleared: the row goes too
            gone.append(session.sid)
            session.sid = None
        if gone:
            with db.transaction() as s:
                s.execute(delete(AdminSession).where(AdminSession.id.in_([_key(g) for g in gone])))
        response.vary.add("Cookie")
        if not session:
            if session.had_cookie or gone:
                response.delete_cookie(
                    self.get_cookie_name(app),
                    domain=self.get_cookie_domain(app),
                    path=self._path(),
                    secure=self.get_cookie_secure(app),
                    httponly=True,
                    samesite=self.get_cookie_samesite(app),
                )
            return
        if not signed_in:  # nothing stored: the little there is travels signed in the cookie
            if session.modified or not session.had_cookie:
                self._set_cookie(app, response, self._signer(app).dumps(dict(session)))
            return
        moment = now()
        if session.sid is None:  # signed in just now: a new id and a new row
            session.sid = secrets.token_urlsafe(32)
            with db.transaction() as s:
                s.add(
                    AdminSession(
                        id=_key(session.sid),
                        user_id=session["uid"],
                        data=dict(session),
                        created_at=moment,
                        seen_at=moment,
                        expires_at=self._ends(app, moment, moment),
                    )
                )
            self._set_cookie(app, response, session.sid)
            self._prune(app)
            return
        stale = session.seen is None or (moment - session.seen).total_seconds() >= TOUCH_AFTER
        if not session.modified and not stale:
            return
        values = {
            "seen_at": moment,
            "expires_at": self._ends(app, session.created or moment, moment),
        }
        if session.modified:
            values["data"] = dict(session)
        with db.transaction() as s:
            s.execute(
                update(AdminSession).where(AdminSession.id == _key(session.sid)).values(**values)
            )
