"""The history chain: submissions, scores and journal entries, each row hashed with the row before
it, on SQLite and on PostgreSQL.  Tampering in SQL as the tables' owner (an UPDATE with the
trigger dropped, SQLite's INSERT OR REPLACE, a DELETE in the middle, TRUNCATE, a row slipped in)
is found by ``flask verify-history`` and ``GET /api/journal/verify``, which name the first broken
row: its table, its id and what is wrong."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from service.access import journal
from service.db import JournalEntry, Score, Submission

SCHEME = "gumeilu-2022"
FACTS = {"leader_evaluation_score": 4, "leader_evaluation_reason": "工作扎实"}


def _history(api) -> dict:
    """Two submissions and a score of gucun, a denial, some reads: rows in all three tables."""
    base = f"/api/units/gucun/schemes/{SCHEME}"
    assert (
        api.post(
            f"{base}/submissions", "submitter", json={"role": "self", "facts": FACTS}
        ).status_code
        == 201
    )
    corrected = dict(FACTS, leader_evaluation_score=3)
    second = api.post(
        f"{base}/submissions",
        "reviewer",
        json={"role": "review", "facts": corrected, "reason": "复核"},
        headers={"If-Match": '"1"'},
    )
    assert second.status_code == 201, second.json
    score = api.post(f"{base}/scores", "reviewer", json={})
    assert score.status_code == 201, score.json
    assert api.get("/api/journal", "editor").status_code == 403  # a denial: a journal row
    return {"score": score.json["id"]}


def _verify(api):
    return api.ctx.db.verify_history()


def _ids(api, model) -> list[int]:
    with api.ctx.db.transaction() as s:
        return list(s.scalars(select(model.id).order_by(model.id)))


def _owner_sql(api, *statements: str) -> None:
    """Statements as the tables' owner (the tests' database user), in one transaction."""
    with api.ctx.db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def _drop_append_only_trigger(api, table: str) -> list[str]:
    if api.ctx.db.engine.dialect.name == "postgresql":
        return [f"DROP TRIGGER {table}_no_update ON {table}"]
    return [f"DROP TRIGGER {table}_no_update", f"DROP TRIGGER {table}_no_delete"]


def test_every_write_is_chained_and_the_chain_verifies(api):
    made = _history(api)
    base = f"/api/units/gucun/schemes/{SCHEME}"
    for path in (f"{base}/submissions", f"{base}/scores", f"/api/scores/{made['score']}"):
        served = api.get(path, "auditor")  # every row as written: no warning
        assert served.status_code == 200 and "X-History-Warning" not in served.headers
    result = _verify(api)
    assert result["problem"] is None, result
    with api.ctx.db.transaction() as s:
        rows = sum(
            s.scalar(select(func.count()).select_from(m)) for m in (Submission, Score, JournalEntry)
        )
        seqs = sorted(
            seq for m in (Submission, Score, JournalEntry) for seq in s.scalars(select(m.chain_seq))
        )
    assert result["rows"] == rows == result["head_seq"] and seqs == list(range(1, rows + 1))

    # the API and the command line say the same, and each check is journaled with its result
    checked = api.get("/api/journal/verify", "auditor")
    assert checked.status_code == 200, checked.json
    assert checked.json["ok"] is True and checked.json["problem"] is None
    assert checked.json["rows"] == rows
    assert api.get("/api/journal/verify", "reviewer").status_code == 403
    out = api.app.test_cli_runner().invoke(args=["verify-history"])
    assert out.exit_code == 0, out.output
    assert "历史链完好" in out.output
    entries = api.get("/api/journal?action=history.verify", "admin").json
    assert [(e["actor"], e["outcome"]) for e in entries] == [
        ("（命令行）", "ok"),
        ("auditor", "ok"),
    ]


def test_an_update_behind_a_dropped_trigger_is_found(api):
    _history(api)
    first = _ids(api, Submission)[0]
    _owner_sql(
        api,
        *_drop_append_only_trigger(api, "submissions"),
        f"UPDATE submissions SET reason = '改过的理由' WHERE id = {first}",
    )
    # served as stored, but the response says the row was changed, and nothing is computed from it
    base = f"/api/units/gucun/schemes/{SCHEME}"
    served = api.get(f"{base}/submissions", "reviewer")
    assert served.status_code == 200 and served.json[0]["reason"] == "改过的理由"
    assert f"submissions:{first}" in served.headers["X-History-Warning"]
    assert "X-History-Warning" not in api.get(f"{base}/submissions/2", "reviewer").headers
    refused = api.post(f"{base}/scores", "reviewer", json={"submission_version": 1})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "history_tampered"
    checks = api.get("/api/journal?action=history.check", "admin").json
    assert [(e["outcome"], e["detail"]["rows"]) for e in checks][-1] == (
        "failed",
        [f"submissions:{first}"],
    )

    problem = _verify(api)["problem"]
    assert (problem["table"], problem["id"], problem["kind"]) == ("submissions", first, "changed")
    assert "内容被改动" in problem["message"]

    checked = api.get("/api/journal/verify", "admin")
    assert checked.status_code == 200 and checked.json["ok"] is False
    assert checked.json["problem"]["id"] == first
    out = api.app.test_cli_runner().invoke(args=["verify-history"])
    assert out.exit_code == 1
    assert "submissions" in out.output and "changed" in out.output


def test_a_row_rewritten_with_its_own_hash_worked_out_again_is_found(api):
    """Rewrite a score's total and put a freshly computed hash beside it: the next row's record of
    the hash before it no longer matches."""
    from service.db import row_hash

    made = _history(api)
    with api.ctx.db.transaction() as s:
        row = s.get(Score, made["score"])
        values = {c.name: getattr(row, c.key) for c in Score.__table__.columns}
    values["total"] = 100
    forged = row_hash("scores", values)
    _owner_sql(
        api,
        *_drop_append_only_trigger(api, "scores"),
        f"UPDATE scores SET total = 100, row_hash = '{forged}' WHERE id = {made['score']}",
    )
    problem = _verify(api)["problem"]
    assert (problem["table"], problem["id"], problem["kind"]) == (
        "scores",
        made["score"],
        "changed",
    )


def test_a_deleted_middle_row_is_found_missing(api):
    _history(api)
    journal_ids = _ids(api, JournalEntry)
    middle = journal_ids[len(journal_ids) // 2]
    _owner_sql(
        api, *_drop_append_only_trigger(api, "journal"), f"DELETE FROM journal WHERE id = {middle}"
    )
    problem = _verify(api)["problem"]
    assert problem["kind"] == "missing"
    with api.ctx.db.transaction() as s:  # named: the row that followed the deleted one in the chain
        seq = s.scalar(select(JournalEntry.chain_seq).where(JournalEntry.id == journal_ids[0]))
    assert problem["seq"] > seq and "缺少 1 条记录" in problem["message"]


def test_rows_cut_off_the_end_are_found_missing(api):
    _history(api)
    last = _ids(api, JournalEntry)[-1]
    _owner_sql(
        api, *_drop_append_only_trigger(api, "journal"), f"DELETE FROM journal WHERE id = {last}"
    )
    problem = _verify(api)["problem"]
    assert (problem["table"], problem["id"], problem["kind"]) == ("journal", last, "missing")
    assert "链尾缺少 1 条记录" in problem["message"]


def test_a_row_slipped_in_is_found(api):
    _history(api)
    _owner_sql(
        api,
        "INSERT INTO journal (at, actor, role, action, target, outcome, detail)"
        " VALUES ('2030-01-01 00:00:00', 'admin', 'admin', 'units.write', 'unit:x', 'ok', '{}')",
    )
    stray = _ids(api, JournalEntry)[-1]
    problem = _verify(api)["problem"]
    assert (problem["table"], problem["id"], problem["kind"]) == ("journal", stray, "inserted")


def test_insert_or_replace_on_sqlite_is_found(api):
    """SQLite's INSERT OR REPLACE deletes and inserts without firing the DELETE trigger: the
    append-only triggers do not stop it, the chain shows it."""
    if api.ctx.db.engine.dialect.name != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    _history(api)
    entry = _ids(api, JournalEntry)[1]
    columns = [c.name for c in JournalEntry.__table__.columns]
    chosen = ", ".join("'intruder'" if c == "actor" else c for c in columns)
    _owner_sql(
        api,
        f"INSERT OR REPLACE INTO journal ({', '.join(columns)}) SELECT {chosen} FROM journal WHERE id = {entry}",
    )
    with api.ctx.db.transaction() as s:
        assert s.get(JournalEntry, entry).actor == "intruder"  # rewritten in place, triggers or not
    problem = _verify(api)["problem"]
    assert (problem["table"], problem["id"], problem["kind"]) == ("journal", entry, "changed")


def test_truncate_on_postgresql_is_found(api):
    if api.ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _history(api)
    # no row trigger fires on TRUNCATE (CASCADE: the rounds name official scores by foreign key)
    _owner_sql(api, "TRUNCATE scores CASCADE")
    problem = _verify(api)["problem"]
    assert problem["kind"] == "missing"


def test_concurrent_writers_agree_on_one_chain(api):
    """Eight threads append journal entries at once: one chain, no place taken twice, no gap."""
    from service.access import Actor

    db, errors = api.ctx.db, []
    start = threading.Barrier(8)

    def write(n):
        try:
            start.wait()
            for i in range(15):
                with db.transaction() as s:
                    journal(
                        s,
                        Actor(0, f"writer{n}", "admin", None),
                        "test.write",
                        f"unit:gucun/{i}",
                        "ok",
                    )
        except Exception as err:  # re-raised below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    result = _verify(api)
    assert result["problem"] is None, result
    with db.transaction() as s:
        assert s.scalar(select(func.count()).where(JournalEntry.action == "test.write")) == 120


def test_chaining_costs_little_per_write(api, capsys):
    """Measured, not a target: a journal entry written alone, the chain included."""
    db = api.ctx.db
    from service.access import Actor

    actor = Actor(0, "bench", "admin", None)
    started = time.perf_counter()
    for i in range(200):
        with db.transaction() as s:
            journal(s, actor, "test.write", f"unit:gucun/{i}", "ok")
    per_write = (time.perf_counter() - started) / 200
    with capsys.disabled():
        print(f"\n{db.engine.dialect.name}: {per_write * 1000:.2f} ms per chained journal write")
    assert _verify(api)["problem"] is None


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_migration_chains_existing_history_in_order(database, tmp_path):
    """A database at 0003 with history in it: 0005 chains every row (each table by id, the three
    by time), gives old journal entries their unit and scheme, and keeps the triggers in force."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.exc import DBAPIError

    from service.commands import MIGRATIONS, upgrade
    from service.db import Database

    from .conftest import _fresh_postgres

    url = f"sqlite:///{tmp_path / 'old.db'}" if database == "sqlite" else _fresh_postgres()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "0003")
    db = Database(url)
    with db.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO units (id, code, name, kind, district, created_at)"
                " VALUES (1, 'gucun', '顾村镇', 'town', '宝山区', '2024-01-01 00:00:00')"
            )
        )
        c.execute(
            text(
                "INSERT INTO users (id, username, display_name, role, active, created_at)"
                " VALUES (1, 'admin', 'admin', 'admin', true, '2024-01-01 00:00:00')"
            )
        )
        for n, at in ((1, "2024-01-02 00:00:00"), (2, "2024-01-04 00:00:00")):
            c.execute(
                text(
                    "INSERT INTO submissions (id, unit_id, scheme_id, version, role, author_id, facts,"
                    " evidence, reason, reasons, created_at) VALUES (:n, 1, 'gumeilu-2022', :n, 'review',"
                    " 1, '{\"x\": 3.50}', '{}', '', '{}', :at)"
                ),
                {"n": n, "at": at},
            )
        for n, at, target in (
            (1, "2024-01-02 00:00:01", "unit:gucun/scheme:gumeilu-2022"),
            (2, "2024-01-03 00:00:00", "GET /api/units/gucun"),
            (3, "2024-01-04 00:00:01", "rules"),
        ):
            c.execute(
                text(
                    "INSERT INTO journal (id, at, actor, role, action, target, outcome, detail)"
                    " VALUES (:n, :at, 'admin', 'admin', 'x', :target, 'ok', '{\"n\": 1.10}')"
                ),
                {"n": n, "at": at, "target": target},
            )
    upgrade(url)
    result = db.verify_history()
    assert result["problem"] is None and result["rows"] == 5, result
    with db.transaction() as s:
        order = sorted(
            [(seq, "s", i) for i, seq in s.execute(select(Submission.id, Submission.chain_seq))]
            + [
                (seq, "j", i)
                for i, seq in s.execute(select(JournalEntry.id, JournalEntry.chain_seq))
            ]
        )
        subjects = list(
            s.execute(select(JournalEntry.unit, JournalEntry.scheme).order_by(JournalEntry.id))
        )
    assert [(kind, i) for _seq, kind, i in order] == [
        ("s", 1),
        ("j", 1),
        ("j", 2),
        ("s", 2),
        ("j", 3),
    ]
    assert [tuple(r) for r in subjects] == [
        ("gucun", "gumeilu-2022"),
        ("gucun", None),
        (None, None),
    ]
    for table in ("submissions", "journal"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as c:
            c.execute(text(f"UPDATE {table} SET id = id"))
    db.engine.dispose()


def test_the_admin_home_page_shows_the_last_check(api):
    from ..admin.conftest import sign_in

    client = api.app.test_client()
    assert sign_in(client, "auditor").status_code == 302
    assert "历史链核对：" in client.get("/admin/").text and "尚未核对" in client.get("/admin/").text
    api.app.test_cli_runner().invoke(args=["verify-history"])
    page = client.get("/admin/").text
    assert "由 （命令行） 核对" in page and "条记录完好" in page and "（链头 " in page
    last = _ids(api, JournalEntry)[0]
    _owner_sql(
        api, *_drop_append_only_trigger(api, "journal"), f"DELETE FROM journal WHERE id = {last}"
    )
    assert api.get("/api/journal/verify", "admin").json["ok"] is False
    page = client.get("/admin/").text
    assert "由 admin 核对发现断裂" in page and "被删除" in page

    other = api.app.test_client()  # a reviewer is not shown the line
    assert sign_in(other, "reviewer").status_code == 302
    assert "历史链核对" not in other.get("/admin/").text
