"""Server-side sessions for the admin pages.

The browser holds only a random session id (256 bits) in an HttpOnly,
SameSite=Lax cookie scoped to ``/admin``; the session's contents (who is
signed in, the CSRF token, drafts of fact forms) stay on the server, one JSON
file per session under ``instance/admin-sessions/``, named by the SHA-256 of the
id.  So a draft may be large, signing out really ends the session (a copied
cookie is worthless afterwards), and a new id is issued at sign-in
(``regenerate``), so an id planted before sign-in never gains access.

Files are written atomically (write, then rename), so several gunicorn workers
on one host share sessions safely.  A session expires after
``ADMIN_SESSION_HOURS`` idle hours, and expired files are pruned from time to
time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

from flask import request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

TOUCH_AFTER = 60  # seconds: how stale "last seen" may get before it is written again
PRUNE_EVERY = 600  # seconds between sweeps of expired files (per process)


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None, seen: float = 0.0):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.seen = seen
        self.modified = False
        self.discarded: list[str] = []  # ids to delete at the end of the request


class FileSessionInterface(SessionInterface):
    def __init__(self, folder: str, cookie_path: str = "/admin"):
        self.folder = Path(folder)
        self.cookie_path = cookie_path
        self._last_prune = 0.0

    # --- storage -----------------------------------------------------------------------
    def _file(self, sid: str) -> Path:
        return self.folder / hashlib.sha256(sid.encode()).hexdigest()

    def _read(self, sid: str):
        try:
            with open(self._file(sid), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _write(self, sid: str, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False)
            os.replace(tmp, self._file(sid))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _delete(self, sid: str) -> None:
        try:
            os.unlink(self._file(sid))
        except OSError:
            pass

    def _prune(self, idle: float) -> None:
        now = time.time()
        if now - self._last_prune < PRUNE_EVERY or not self.folder.is_dir():
            return
        self._last_prune = now
        for path in self.folder.iterdir():
            try:
                if now - path.stat().st_mtime > idle + TOUCH_AFTER:
                    path.unlink()
            except OSError:
                pass

    @staticmethod
    def _idle(app) -> float:
        return float(app.config.get("ADMIN_SESSION_HOURS", 8)) * 3600

    # --- the session interface --------------------------------------------------------
    def open_session(self, app, req):
        sid = req.cookies.get(self.get_cookie_name(app))
        if sid and 20 <= len(sid) <= 100:
            record = self._read(sid)
            if record is not None:
                if time.time() - record.get("seen", 0) <= self._idle(app):
                    return ServerSession(record.get("data"), sid, record.get("seen", 0))
                self._delete(sid)
        return ServerSession()

    def regenerate(self, session: ServerSession) -> None:
        """A new id for this session (sign-in): the old id stops working at the end of the request."""
        if session.sid:
            session.discarded.append(session.sid)
        session.sid = None
        session.modified = True

    def destroy(self, session: ServerSession) -> None:
        """Sign-out: forget everything; the cookie is removed."""
        self.regenerate(session)
        session.clear()

    def _path(self) -> str:
        return (request.script_root or "") + self.cookie_path

    def save_session(self, app, session: ServerSession, response) -> None:
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self._path()
        for old in session.discarded:
            self._delete(old)
        if not session:
            if session.sid:
                self._delete(session.sid)
            if session.sid or session.discarded:
                response.delete_cookie(
                    name,
                    domain=domain,
                    path=path,
                    secure=self.get_cookie_secure(app),
                    httponly=True,
                    samesite=self.get_cookie_samesite(app),
                )
            return
        now = time.time()
        if not session.modified and session.sid and now - session.seen < TOUCH_AFTER:
            return
        fresh = session.sid is None
        if fresh:
            session.sid = secrets.token_urlsafe(32)
            self._prune(self._idle(app))
        self._write(session.sid, {"data": dict(session), "seen": now})
        if fresh:
            response.set_cookie(
                name,
                session.sid,
                domain=domain,
                path=path,
                httponly=True,
                secure=self.get_cookie_secure(app),
                samesite=self.get_cookie_samesite(app),
            )
        response.vary.add("Cookie")
