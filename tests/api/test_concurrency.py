"""Concurrent submissions lose no update: of N simultaneous writers exactly one wins.

N threads, each with its own test client, read the latest version's ETag, wait
at a barrier, and submit a correction with ``If-Match`` at the same moment.
Exactly one gets 201; the others get 409 (never 500, never two successes) and
the history gains exactly one version, the winner's.  Each race runs twice:
as it comes, and with the submission transaction held open for a while after
its insert (``Context.pause_in_submit``), so that the losers are sure to have
read the same latest version as the winner and to collide with it on the
database's unique (unit, scheme, version) constraint rather than on a stale
``If-Match``.  Both databases: SQLite (WAL, busy_timeout) and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

from sqlalchemy import select

from service.db import JournalEntry, Submission, Unit

N = 8
SCHEME = "gumeilu-2022"
RACE_TIMEOUT = 60  # seconds: no race may hang the suite
# the 409 of a write that collided with the winner's uncommitted one: the version's unique
# constraint, or the unit's state in the round (its row's lock), whichever the loser reached first
LOST_RACE = "另一位用户刚刚"


def _facts(i: int) -> dict:
    return {
        "leader_evaluation_score": 1 + 0.25 * i,
        "leader_evaluation_reason": f"线程{i}",
    }  # exact in binary


def _race(api, prepare, send, n: int = N) -> list:
    """Run n threads: each prepares (its own test client), waits at a barrier, then sends; return the responses."""
    barrier = threading.Barrier(n, timeout=RACE_TIMEOUT)
    results: list = [None] * n

    def worker(i: int) -> None:
        client = api.app.test_client()
        try:
            prepared = prepare(client, i)
            barrier.wait()
            results[i] = send(client, i, prepared)
        except BaseException as err:
            barrier.abort()
            results[i] = err

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RACE_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a submitting thread hung"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def _same_facts(stored: dict, sent: dict) -> bool:
    """The database keeps numbers as exact decimal strings."""
    return set(stored) == set(sent) and all(
        Decimal(stored[k]) == Decimal(repr(v)) if isinstance(v, float) else stored[k] == v
        for k, v in sent.items()
    )


def _auth(api, username: str) -> dict:
    return {"Authorization": f"Bearer {api.tokens[username]}"}


def _history(api, unit: str) -> list[Submission]:
    with api.ctx.db.transaction() as s:
        unit_id = s.scalar(select(Unit.id).where(Unit.code == unit))
        return list(
            s.scalars(
                select(Submission)
                .where(Submission.unit_id == unit_id, Submission.scheme_id == SCHEME)
                .order_by(Submission.version)
            )
        )


def _ok_journal(api, unit: str) -> list[int]:
    with api.ctx.db.transaction() as s:
        rows = s.scalars(
            select(JournalEntry).where(
                JournalEntry.action == "submissions.write",
                JournalEntry.outcome == "ok",
                JournalEntry.target == f"unit:{unit}/scheme:{SCHEME}",
            )
        )
        return sorted(row.detail["version"] for row in rows)


def _check_database(api) -> None:
    if api.ctx.db.url.startswith("sqlite"):
        with api.ctx.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


def _held_open(api, seconds: float):
    """While inside: every submission transaction waits ``seconds`` after its insert, before committing."""

    class _Hold:
        def __enter__(self):
            api.ctx.pause_in_submit = seconds

        def __exit__(self, *exc):
            api.ctx.pause_in_submit = 0.0

    return _Hold()


def test_concurrent_corrections_one_wins_no_lost_update(api):
    _check_database(api)
    path = f"/api/units/gucun/schemes/{SCHEME}/submissions"
    first = api.post(
        path,
        "submitter",
        json={
            "role": "self",
            "facts": {"leader_evaluation_score": 5, "leader_evaluation_reason": "初次自评"},
        },
    )
    assert first.status_code == 201, first.json
    users = ["reviewer", "admin"]  # review-role corrections by two kinds of allowed writer

    def prepare(client, i):
        latest = client.get(path + "/latest", headers=_auth(api, users[i % 2]))
        assert latest.status_code == 200, latest.json
        return latest.headers["ETag"]

    def send(client, i, etag):
        return client.post(
            path,
            headers={**_auth(api, users[i % 2]), "If-Match": etag},
            json={"role": "review", "facts": _facts(i), "reason": f"评审更正{i}"},
        )

    lost_on_insert = 0
    for held in (
        0.0,
        0.0,
        0.0,
        1.0,
    ):  # three races as they come, one with the transactions held open
        before = _history(api, "gucun")
        with _held_open(api, held):
            responses = _race(api, prepare, send)
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: N - 1}, {
            s: [r.json for r in responses if r.status_code == s] for s in statuses
        }
        winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
        after = _history(api, "gucun")
        assert [r.version for r in after] == [r.version for r in before] + [len(before) + 1]
        assert responses[winner].json["version"] == len(before) + 1
        assert responses[winner].headers["ETag"] == f'"{len(before) + 1}"'
        assert _same_facts(after[-1].facts, _facts(winner)), after[
            -1
        ].facts  # the winner's facts, whole
        assert after[-1].reason == f"评审更正{winner}"
        for r in responses:
            if r.status_code == 409:
                assert r.json["error"]["code"] == "version_conflict", r.json
        if held:
            lost_on_insert += sum(
                LOST_RACE in r.json["error"]["message"] for r in responses if r.status_code == 409
            )
    # with the transactions held open, the losers really did collide with the winner's uncommitted insert
    assert lost_on_insert >= 1
    assert _ok_journal(api, "gucun") == [
        r.version for r in _history(api, "gucun")
    ]  # one journal row per version


def test_concurrent_first_submissions_one_wins(api):
    """No If-Match: several threads submit the first version at once -> one 201, the others 409 or 428."""
    _check_database(api)

    for unit, held in (("dachang", 0.0), ("bsip", 1.0)):
        path = f"/api/units/{unit}/schemes/{SCHEME}/submissions"

        def send(client, i, _prepared, path=path):
            return client.post(
                path,
                headers=_auth(api, "admin"),  # a first version is a self-assessment
                json={"role": "self", "facts": _facts(i)},
            )

        with _held_open(api, held):
            responses = _race(api, lambda client, i: None, send)
        statuses = Counter(r.status_code for r in responses)
        assert statuses[201] == 1 and set(statuses) <= {201, 409, 428}, {
            s: [r.json for r in responses if r.status_code == s] for s in statuses
        }
        winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
        history = _history(api, unit)
        assert [r.version for r in history] == [1]
        assert responses[winner].json["version"] == 1
        assert history[0].facts["leader_evaluation_reason"] == f"线程{winner}"
        for r in responses:
            if r.status_code != 201:
                # a thread that starts after the winner committed finds the unit's state moved on
                # (已提交自评) and is refused by the review cycle before it reaches the insert
                assert r.json["error"]["code"] in (
                    "version_conflict", "if_match_required", "illegal_transition"
                ), r.json  # fmt: skip
        if (
            held
        ):  # everybody read "no version yet" before the winner committed: all lose on the insert
            assert statuses[409] >= 1
        assert _ok_journal(api, unit) == [1]
