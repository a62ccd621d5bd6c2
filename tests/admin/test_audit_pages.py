"""The auditor's desk in the pages (issue 11): each fact's provenance on the score page and its
history, 复核 of a score, the replay of a round as a job with its report, the journal with filters,
keyset paging over the whole history and its export, the tamper check, and the round's audit
workbook; every new page walked by every role (the auditor reads all of it and changes nothing)."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from admin import audit_pages
from service import audit, jobs, operations, rounds
from service.db import JournalEntry, Round, Score, Submission

from .conftest import actor, csrf_token, sign_in

SCHEME = "gumeilu-2022"
SELF = {"leader_evaluation_score": 4, "featured_quality_score": 30,
        "featured_quality_reason": "特色工作扎实"}  # fmt: skip
CORRECTED = {"featured_quality_score": 36}


@pytest.fixture(scope="module")
def scored(app) -> dict:
    """顾村镇: a self-assessment by the unit's submitter (v1), a reviewer's correction of one fact
    with its reason (v2), the review completed and the official score computed."""
    ctx = app.extensions["scoring"]
    submitter, reviewer = actor(app, "submitter"), actor(app, "reviewer")
    with ctx.db.transaction() as s:
        rid = s.scalar(select(Round.id).where(Round.scheme_id == SCHEME))
    operations.submit(ctx, submitter, "gucun", SCHEME, "self", SELF,
                      {"featured_quality_score": ["特色工作总结.pdf"]}, "", None)  # fmt: skip
    operations.submit(ctx, reviewer, "gucun", SCHEME, "review", {**SELF, **CORRECTED}, {},
                      "", '"1"', {"featured_quality_score": "现场核查后上调"})  # fmt: skip
    rounds.complete_review(ctx, reviewer, rid, "gucun")
    score = operations.compute_score(ctx, reviewer, "gucun", SCHEME, kind="official")
    return {"round": rid, "score": score.id, "version": score.rules_version}


def _client(app, who: str):
    client = app.test_client()
    sign_in(client, who)
    return client


def _score_page(scored) -> str:
    return f"/admin/units/gucun/schemes/{SCHEME}/score?id={scored['score']}"


def _prov(html: str, fact: str) -> str:
    found = re.search(rf'<li class="prov" data-fact="{fact}">(.*?)</li>', html, re.S)
    assert found, f"no provenance of {fact} on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1)))


def test_the_score_page_shows_each_facts_provenance_and_its_history(app, scored):
    page = _client(app, "auditor").get(_score_page(scored))
    assert page.status_code == 200, page.text
    corrected = _prov(page.text, "featured_quality_score")
    assert "36" in corrected and "第2版" in corrected and "评审" in corrected
    assert "reviewer" in corrected and "现场核查后上调" in corrected
    entered = _prov(page.text, "leader_evaluation_score")
    assert "第1版" in entered and "自评" in entered and "submitter" in entered
    # the evidence the unit gave with the value the reviewer changed stays with its own version
    assert "特色工作总结.pdf" not in corrected
    assert 'id="replay"' in page.text  # 复核, for the auditor

    history = _client(app, "auditor").get(
        f"/admin/units/gucun/schemes/{SCHEME}/facts/featured_quality_score/history"
    )
    assert history.status_code == 200, history.text
    rows = re.findall(
        r'<tr class="(changed|same)" data-version="(\d+)">(.*?)</tr>', history.text, re.S
    )
    assert [(kind, v) for kind, v, _ in rows] == [("changed", "2"), ("changed", "1")]
    assert "现场核查后上调" in rows[0][2] and "特色工作总结.pdf" in rows[1][2]
    # a fact nobody declared and nobody entered: 404, a page
    assert (
        _client(app, "auditor")
        .get(f"/admin/units/gucun/schemes/{SCHEME}/facts/nothing_like_it/history")
        .status_code
        == 404
    )


def test_provenance_leaves_the_stored_trace_and_its_hash_alone(app, scored):
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        before = s.get(Score, scored["score"])
        trace, row_hash = dict(before.trace), before.row_hash
    _client(app, "auditor").get(_score_page(scored))
    with ctx.db.transaction() as s:
        after = s.get(Score, scored["score"])
        assert after.trace == trace and after.row_hash == row_hash
        assert "provenance" not in after.trace
    assert ctx.db.verify_history()["problem"] is None


def test_replay_on_the_page_says_reproduced_and_writes_nothing_but_a_read(app, scored):
    client = _client(app, "auditor")
    page = client.get(_score_page(scored))
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        scores = s.scalar(select(func.count()).select_from(Score))
        last = s.scalar(select(func.max(JournalEntry.id)))
    done = client.post(
        f"/admin/scores/{scored['score']}/replay", data={"csrf_token": csrf_token(page.text)}
    )
    assert done.status_code == 200, done.text
    assert 'id="replay-result">已复现<' in done.text
    with ctx.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Score)) == scores
        rows = list(s.scalars(select(JournalEntry).where(JournalEntry.id > last)))
    assert [(e.action, e.outcome, e.actor) for e in rows] == [("scores.replay", "ok", "auditor")]
    assert rows[0].detail["reproduced"] is True
    # without the form's token: refused
    assert client.post(f"/admin/scores/{scored['score']}/replay").status_code == 400
    # the unit's submitter may not replay
    unit = _client(app, "submitter")
    assert (
        unit.post(
            f"/admin/scores/{scored['score']}/replay",
            data={"csrf_token": csrf_token(unit.get("/admin/rounds").text)},
        ).status_code
        == 403
    )


def test_a_replay_names_each_clause_that_differs_and_why(app, scored):
    """The comparison itself, on the stored trace with one clause's points and fact changed."""
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        row = s.get(Score, scored["score"])
        stored = dict(row.trace)
        engine = row.engine_version
    again = {**stored, "total": "1", "clauses": [dict(c) for c in stored["clauses"]]}
    changed = next(c for c in again["clauses"] if "featured_quality_score" in c["facts"])
    changed.update(points="0", facts={**changed["facts"], "featured_quality_score": "1"})
    out = audit.compare_traces(stored, again, engine, engine)
    assert [c["clause"] for c in out["clauses"]] == [changed["id"]]
    clause = out["clauses"][0]
    assert clause["causes"] == ["facts"] and clause["replayed_points"] == "0"
    assert clause["facts"] == [{"fact": "featured_quality_score", "stored": "36", "replayed": "1"}]
    assert "total" in out["differences"] and "clauses" in out["differences"]
    # the same clause changed without its facts, by another engine: the engine
    again2 = {**stored, "clauses": [dict(c) for c in stored["clauses"]]}
    next(c for c in again2["clauses"] if c["id"] == changed["id"])["points"] = "0"
    out2 = audit.compare_traces(stored, again2, engine, "another-engine")
    assert out2["clauses"][0]["causes"] == ["engine"] and out2["causes"] == ["engine"]
    out3 = audit.compare_traces(stored, again2, engine, engine)
    assert out3["causes"] == ["program"]
    assert audit.compare_traces(stored, dict(stored), engine, engine)["differences"] == []


def test_the_round_replay_job_and_its_printable_report(app, scored):
    client = _client(app, "auditor")
    desk = client.get("/admin/audit")
    assert desk.status_code == 200, desk.text
    started = client.post(
        f"/admin/rounds/{scored['round']}/replay", data={"csrf_token": csrf_token(desk.text)}
    )
    assert started.status_code == 302, started.text
    job_id = int(started.headers["Location"].rsplit("/", 1)[1])
    ctx = app.extensions["scoring"]
    worker = jobs.Worker(ctx)
    while worker.run_once():
        pass
    job_page = client.get(f"/admin/jobs/{job_id}")
    assert 'id="replay-report-link"' in job_page.text
    report = client.get(f"/admin/replays/{job_id}")
    assert report.status_code == 200, report.text
    assert "已复现 1" in report.text and "顾村镇" in report.text and 'id="sign-off"' in report.text
    book = load_workbook(io.BytesIO(client.get(f"/admin/replays/{job_id}.xlsx").data))
    ws = book["复核"]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=4) if r[1].value]
    assert rows[0][1:6] == ["顾村镇", scored["score"], rows[0][3], rows[0][3], "已复现"]
    assert ws.oddFooter.right.text.startswith("审核人")
    # a round without official scores: said on the desk, nothing queued
    with ctx.db.transaction() as s:
        other = s.scalar(select(Round.id).where(Round.scheme_id == "zhuanqiao-2018"))
    refused = client.post(
        f"/admin/rounds/{other}/replay", data={"csrf_token": csrf_token(desk.text)},
        follow_redirects=True,
    )  # fmt: skip
    assert "没有正式得分" in refused.text


def test_the_audit_workbook_of_a_round(app, scored):
    client = _client(app, "auditor")
    got = client.get(f"/admin/rounds/{scored['round']}/audit.xlsx")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(got.data))
    assert book.sheetnames == ["汇总", "事实来源", "评审组打分", "申诉", "复核"]
    summary = book["汇总"]
    row = next(r for r in summary.iter_rows(min_row=4, values_only=True) if r[1] == "顾村镇")
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        score = s.get(Score, scored["score"])
    assert row[3] == score.id and Decimal(str(row[4])) == Decimal(score.trace["total"])
    assert row[6] == score.rules_version and row[7] == "第2版" and row[11] == "已复现"
    facts = [r for r in book["事实来源"].iter_rows(min_row=4, values_only=True) if r[0] == "顾村镇"]
    corrected = next(r for r in facts if r[2] == "featured_quality_score")
    assert corrected[3] == 36 and corrected[4:7] == ("第2版", "评审", "reviewer")
    assert corrected[8] == "现场核查后上调"
    assert summary.oddFooter.right.text.startswith("审核人")
    assert summary.page_setup.orientation == "landscape"


def test_the_round_board_links_its_audit_workbook_for_those_who_may_read_it(app, scored):
    """审计工作簿 straight from the round board, offered only to whom audit.read allows (admin,
    auditor); the link followed gives the round's workbook; the others see no link and are refused
    the workbook itself."""
    board = f"/admin/rounds/{scored['round']}"
    for who, may in (("admin", True), ("auditor", True), ("reviewer", False),
                     ("submitter", False), ("editor", False)):  # fmt: skip
        client = _client(app, who)
        page = client.get(board)
        assert page.status_code == 200, (who, page.status_code)
        link = re.search(r'<a [^>]*id="audit-workbook"[^>]*href="([^"]+)"', page.text)
        assert bool(link) == may, who
        workbook = f"/admin/rounds/{scored['round']}/audit.xlsx"
        if may:
            assert link.group(1) == workbook
            got = client.get(link.group(1))
            assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet"), who
            assert load_workbook(io.BytesIO(got.data)).sheetnames[0] == "汇总"
        else:
            assert "审计工作簿" not in page.text and workbook not in page.text, who
            assert client.get(workbook).status_code == 403, who


def _journal_ids(client, query: str) -> list[int]:
    ids, url = [], f"/admin/journal?{query}"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        ids += [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page.text)]
        nxt = re.search(r'href="([^"]+)" id="journal-next"', page.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    return ids


def test_the_journal_page_filters_pages_over_the_whole_history_and_exports(
    app, scored, monkeypatch
):
    client = _client(app, "auditor")
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        gucun = list(s.scalars(select(JournalEntry.id).where(JournalEntry.unit == "gucun")
                               .order_by(JournalEntry.id.desc())))  # fmt: skip
        everything = s.scalar(select(func.count()).select_from(JournalEntry))
    assert len(gucun) > 3
    monkeypatch.setattr(audit_pages, "JOURNAL_PAGE", 3)  # several pages, followed to the end
    assert _journal_ids(client, "unit=gucun") == gucun
    assert len(_journal_ids(client, "")) >= everything  # the whole history, not the newest 500
    # a date range: today (Beijing) includes them all, a day long past none
    first = client.get("/admin/journal?unit=gucun&since=2000-01-01&until=2000-01-02")
    assert "没有符合条件的记录" in first.text
    bad = client.get("/admin/journal?since=31/12/2026&outcome=maybe")
    assert bad.status_code == 422 and "不是日期" in bad.text and "应为 成功" in bad.text
    # the export: every filtered entry, in a workbook
    monkeypatch.setattr(audit_pages, "JOURNAL_PAGE", 100)
    got = client.get("/admin/journal.xlsx?unit=gucun")
    assert got.status_code == 200
    ws = load_workbook(io.BytesIO(got.data))["操作日志"]
    rows = [r for r in ws.iter_rows(min_row=3, values_only=True) if isinstance(r[0], int)]
    assert [r[0] for r in rows][: len(gucun)] == gucun[: len(rows)]
    assert all(r[6] == "gucun" for r in rows)
    assert "unit=gucun" in ws.cell(1, 1).value


def test_the_tamper_check_the_auditor_runs_and_the_admin_reads(app, scored):
    reviewer = _client(app, "reviewer")
    refused = reviewer.post("/admin/journal/verify", data={"csrf_token": "x"})
    assert refused.status_code in (400, 403)  # a reviewer may neither read the journal nor check it
    auditor = _client(app, "auditor")
    page = auditor.get("/admin/journal")
    assert 'id="verify-form"' in page.text  # the check changes nothing: the auditor runs it
    done = auditor.post(
        "/admin/journal/verify", data={"csrf_token": csrf_token(page.text)}, follow_redirects=True
    )
    assert "历史链完好" in done.text
    seen = _client(app, "admin").get("/admin/journal").text
    assert re.search(r'id="last-check"><span class="badge ok">完好', seen) and "由 auditor" in seen


#: every new page: (method, path, {role: status}); a POST carries the page's CSRF token
def _pages(scored, job: int) -> list:
    s, r, v = scored["score"], scored["round"], scored["version"]
    readers = {"admin": 200, "reviewer": 200, "auditor": 200, "submitter": 403, "editor": 403}
    rules_readers = {"admin": 200, "editor": 200, "auditor": 200, "reviewer": 403,
                     "submitter": 403}  # fmt: skip
    hist = f"/admin/units/gucun/schemes/{SCHEME}/facts/featured_quality_score/history"
    other = f"/admin/units/dachang/schemes/{SCHEME}/facts/featured_quality_score/history"
    return [
        ("GET", hist, {"admin": 200, "reviewer": 200, "auditor": 200, "submitter": 200,
                       "editor": 403}),
        ("GET", other, {"submitter": 403, "auditor": 200}),
        ("POST", f"/admin/scores/{s}/replay", {"admin": 200, "reviewer": 200, "auditor": 200,
                                               "submitter": 403, "editor": 403}),
        ("GET", "/admin/audit", {"admin": 200, "auditor": 200, "reviewer": 403,
                                 "submitter": 403, "editor": 403}),
        ("GET", f"/admin/rounds/{r}/audit.xlsx", {"admin": 200, "auditor": 200, "reviewer": 403,
                                                 "submitter": 403, "editor": 403}),
        ("GET", "/admin/journal", {"admin": 200, "auditor": 200, "reviewer": 403,
                                   "submitter": 403, "editor": 403}),
        ("GET", "/admin/journal.xlsx", {"admin": 200, "auditor": 200, "reviewer": 403,
                                        "submitter": 403, "editor": 403}),
        ("POST", "/admin/journal/verify", {"admin": 302, "auditor": 302, "reviewer": 403,
                                           "submitter": 403, "editor": 403}),
        ("GET", f"/admin/replays/{job}", readers),
        ("GET", f"/admin/replays/{job}.xlsx", readers),
        ("POST", f"/admin/rounds/{r}/replay", {"reviewer": 302, "submitter": 403,
                                               "editor": 403}),
        # the rule version the score was computed under, read-only, and its files (issue 11)
        ("GET", f"/admin/rules/versions/{v}", rules_readers),
        ("GET", f"/admin/rules/versions/{v}/zip", rules_readers),
    ]  # fmt: skip


def test_every_new_page_by_every_role_and_the_auditor_changes_nothing(app, scored):
    ctx = app.extensions["scoring"]
    failures = []

    def data_rows():
        with ctx.db.transaction() as s:
            return (s.scalar(select(func.count()).select_from(Submission)),
                    s.scalar(select(func.count()).select_from(Score)))  # fmt: skip

    job = audit.start_round_replay(ctx, actor(app, "admin"), scored["round"])["id"]
    before = data_rows()
    for method, path, wanted in _pages(scored, job):
        for who, status in wanted.items():
            client = _client(app, who)
            if method == "POST":
                token = csrf_token(client.get("/admin/rounds").text)
                got = client.post(path, data={"csrf_token": token}).status_code
            else:
                got = client.get(path).status_code
            if got != status:
                failures.append(f"{method} {path} as {who}: expected {status}, got {got}")
    assert not failures, "\n".join(failures)
    assert data_rows() == before  # replays, reads and exports: no submission, no score
    # nobody signed in: the sign-in page
    assert app.test_client().get("/admin/journal").status_code == 302
    with ctx.db.transaction() as s:
        auditor = set(s.execute(select(JournalEntry.action).where(
            JournalEntry.actor == "auditor", JournalEntry.outcome != "denied")).scalars())  # fmt: skip
    # what the auditor did: reads, replays (reads), the tamper check (it records its result) and
    # the start of a replay job, never a write
    assert auditor <= {"sign-in", "submissions.read", "scores.read", "scores.replay",
                       "audit.read", "jobs.start", "units.read", "history.verify"}, auditor  # fmt: skip
