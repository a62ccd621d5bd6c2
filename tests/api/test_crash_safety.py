"""Killing the server in the middle of a submission leaves all of it or none of it.

For real: the service runs as its own process tree (gunicorn, one worker) on
127.0.0.1 and a free port, on a freshly migrated database (a SQLite file in
``tmp_path``, or a fresh PostgreSQL schema when ``SCORING_TEST_POSTGRES_URL``
is set).  ``SCORING_TEST_PAUSE_IN_SUBMIT=2`` makes the submission transaction
wait 2 s after inserting its rows and before committing.  A submission is sent
from a thread; once the database shows the transaction open with its rows
written (SQLite: the write lock is held; PostgreSQL: the server's session is
"idle in transaction" after the journal insert), and at least 0.7 s after
sending, the whole server process group gets SIGKILL (always well before the
transaction could commit).  Then the database is
opened directly: no submission row, no journal row, and the unit's state in the round not moved.  The server is started
again without the pause, the same submission gets 201 and version 1 (the
number was not consumed), the server is killed after the response, and the
row is there, whole.

Every process is killed in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import http.client
import sqlite3
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from service.commands import add_user, upgrade
from service.db import Database, JournalEntry, RoundUnit, Submission, Unit

from ..apps import ROUND_DATES
from .conftest import _fresh_postgres
from .servers import REQUEST_TIMEOUT, START_TIMEOUT, Server

# a real gunicorn server, SIGKILLed: `pytest -m "not e2e"` leaves it out
pytestmark = pytest.mark.e2e

SCHEME = "gumeilu-2022"
UNIT = "gucun"
FACTS = {"leader_evaluation_score": 4.5, "leader_evaluation_reason": "工作扎实，进展顺利"}
PAUSE = 2.0  # seconds the submission transaction stays open before committing
KILL_AFTER = 0.7  # at least this long after sending, and only once the transaction is seen open
ROUND = {
    "scheme": SCHEME,
    "year": 2022,
    **ROUND_DATES,
}


# --- evidence that the submission transaction is open, with its rows written ------------------------


def _sqlite_write_locked(path: Path) -> bool:
    """True if another connection holds SQLite's write lock (a writer is inside its transaction)."""
    conn = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            return True
        raise
    else:
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def _postgres_sessions(db: Database, app_name: str, state: str | None = None) -> int:
    """The server's sessions (optionally: in ``state``, its last statement the transaction's last
    write, the removal of the submitter's draft: the submission and its journal entry are written)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
    params = {"app": app_name}
    if state:
        query += " AND state = :state AND query ILIKE '%drafts%'"
        params["state"] = state
    with db.engine.connect() as conn:
        return conn.execute(text(query), params).scalar()


# --- the database, read directly -----------------------------------------------------------------------


def _rows(db: Database):
    with db.transaction() as s:
        submissions = list(s.scalars(select(Submission)))
        journal = list(
            s.scalars(select(JournalEntry).where(JournalEntry.action == "submissions.write"))
        )
        states = list(s.scalars(select(RoundUnit.state)))
    return submissions, journal, states


def _prepare(tmp_path: Path, database: str):
    """A migrated database with one unit and one admin; the server's URL, a direct handle and a token."""
    if database == "sqlite":
        path = tmp_path / "scoring.db"
        url = f"sqlite:///{path}"
        app_name = None
    else:
        url = _fresh_postgres()  # skips when SCORING_TEST_POSTGRES_URL is not set
        app_name = f"crash-{uuid.uuid4().hex[:12]}"  # names the server's sessions (not ours) in pg_stat_activity
        path = None
    upgrade(url)
    db = Database(url)
    with db.transaction() as s:
        s.add(Unit(code=UNIT, name="顾村镇", kind="town", district="宝山区"))
    token = add_user(db, "admin", "admin", None, None)
    server_url = (
        url + ("&" if "?" in url else "?") + f"application_name={app_name}" if app_name else url
    )
    return server_url, db, token, path, app_name


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_during_submission_leaves_all_or_nothing(tmp_path, database):
    url, db, token, sqlite_path, app_name = _prepare(tmp_path, database)
    auth = {"Authorization": f"Bearer {token}"}
    path = f"/api/units/{UNIT}/schemes/{SCHEME}/submissions"
    body = {
        "role": "self",  # the unit's self-assessment (entered by the admin): it moves its state too
        "facts": FACTS,
        "evidence": {"leader_evaluation_score": ["评价表-2022-07"]},
    }
    servers: list[Server] = []
    try:
        # 1. killed in the middle of the transaction: nothing of it remains
        server = Server(tmp_path, url, pause=PAUSE).start()
        servers.append(server)
        status, opened = server.request("POST", "/api/rounds", ROUND, auth)
        assert status == 201, opened
        outcome: dict = {}

        def send():
            try:
                outcome["response"] = server.request(
                    "POST", path, body, auth, timeout=REQUEST_TIMEOUT
                )
            except (
                OSError,
                http.client.HTTPException,
            ) as err:  # the server died under us: expected
                outcome["error"] = err

        client = threading.Thread(target=send, daemon=True)
        sent = time.monotonic()
        client.start()
        # The commit cannot come before (the last moment the transaction was seen not yet open) + PAUSE,
        # so a kill before that moment is surely a kill in the middle of the transaction, however slow
        # the machine is to get there.
        last_closed, seen_open = sent, False
        while time.monotonic() - sent < START_TIMEOUT and not outcome:
            probed = time.monotonic()
            if not seen_open:
                seen_open = (
                    _sqlite_write_locked(sqlite_path)
                    if sqlite_path
                    else _postgres_sessions(db, app_name, "idle in transaction") > 0
                )
                if not seen_open:
                    last_closed = probed
            if seen_open and time.monotonic() - sent >= KILL_AFTER:
                break
            time.sleep(0.05)
        assert seen_open, (
            f"the submission transaction was never seen open ({outcome}); log:\n{server.log()}"
        )
        assert "response" not in outcome, f"the submission finished before the kill: {outcome}"
        assert time.monotonic() < last_closed + PAUSE - 0.2, (
            "too late to be sure the kill precedes the commit"
        )
        server.kill()
        client.join(REQUEST_TIMEOUT)
        assert not client.is_alive(), "the client did not notice the server's death"
        assert "error" in outcome, f"expected the connection to break, got {outcome}"
        if app_name:  # PostgreSQL has noticed the dead client and rolled its transaction back
            deadline = time.monotonic() + 15
            while _postgres_sessions(db, app_name) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _postgres_sessions(db, app_name) == 0, (
                "the killed server's session is still open"
            )
        db.engine.dispose()
        if sqlite_path:
            with sqlite3.connect(str(sqlite_path), timeout=5) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        submissions, journal, states = _rows(db)
        assert submissions == [] and journal == [], "a killed transaction left rows behind"
        assert states == [], "a killed transaction moved the unit's state without its submission"

        # 2. started again without the pause: the same submission is version 1, and survives a kill after 201
        server = Server(tmp_path, url).start()
        servers.append(server)
        status, answer = server.request("POST", path, body, auth)
        assert status == 201, answer
        assert answer["version"] == 1 and answer["unit"] == UNIT
        server.kill()
        db.engine.dispose()
        if sqlite_path:
            with sqlite3.connect(str(sqlite_path), timeout=5) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        submissions, journal, states = _rows(db)
        assert [(r.version, r.role, r.scheme_id) for r in submissions] == [(1, "self", SCHEME)]
        assert states == ["submitted"]
        row = submissions[0]
        assert set(row.facts) == set(FACTS)
        assert Decimal(str(row.facts["leader_evaluation_score"])) == Decimal("4.5")
        assert row.facts["leader_evaluation_reason"] == FACTS["leader_evaluation_reason"]
        assert row.evidence == body["evidence"]
        assert [(e.outcome, e.actor, e.detail["version"]) for e in journal] == [("ok", "admin", 1)]
        with db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Submission)) == 1
    finally:
        for server in servers:
            server.kill()
        db.engine.dispose()
