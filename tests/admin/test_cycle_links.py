"""The review cycle's links and the status board's bulk recompute, without a browser, on SQLite and
PostgreSQL.

- The status board's 按本轮规则重算正式得分 (reviewer or admin) starts the ``scores.recompute``
  job of the round's scheme and goes to the job's page; the board shows that job's progress (a
  link and a bar) from the database, so after a reload and on another user's screen too, and its
  outcome once it has ended.  Who may not recompute sees no button and gets 403; without the
  form's token, 400; nothing to recompute, or a round that is not its scheme's newest: 409 on
  the board, saying why.
- The appeal page is reachable: from the unit's page and its score page once the unit's score is
  published (提出申诉 within the window), from the board for units 申诉中 / 已复核 (counted there).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from service import appeals, jobs, rounds
from service import operations as ops
from service.cli import read_facts_file
from service.config import PROJECT_ROOT
from service.db import JournalEntry

from ..apps import round_dates
from .conftest import SCHEME, actor, csrf_token, round_of, self_submit, sign_in

EXAMPLES = read_facts_file(PROJECT_ROOT / "examples" / f"{SCHEME}.yaml")
APPEALED = "gumeilu-2022"  # the scheme the appeal links are walked in
FACTS = {
    "gucun": {"leader_evaluation_score": 4, "featured_quality_score": 30},
    "dachang": {"leader_evaluation_score": 4.5, "featured_quality_score": 32},
}


def _client(app, username: str):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _board(app, scheme: str = SCHEME) -> str:
    return f"/admin/rounds/{round_of(app, scheme)}"


def _card(html: str) -> str:
    """The board's card of the latest recompute job ("" when it shows none)."""
    card = re.search(r'<section class="card small" id="recompute-job".*?</section>', html, re.S)
    return card.group(0) if card else ""


def _progress(html: str) -> tuple[str, str, str] | None:
    """(state, items handled, total) of the recompute job the board shows, None if it shows none."""
    card = re.search(r'<section class="card small" id="recompute-job".*?</section>', html, re.S)
    if card is None:
        return None
    state = re.search(r'data-state="(\w+)"', card.group(0)).group(1)
    bar = re.search(r'<progress max="(\d+)" value="(\d+)"', card.group(0))
    if bar is None:
        return state, "", ""
    return state, bar.group(2), bar.group(1)


def test_the_board_starts_a_recompute_and_shows_its_progress_after_a_reload(app):
    ctx = app.extensions["scoring"]
    reviewer = _client(app, "reviewer")
    board = reviewer.get(_board(app))
    assert board.status_code == 200
    assert 'id="recompute-round"' in board.text and "按本轮规则重算正式得分" in board.text
    assert _progress(board.text) is None
    token = csrf_token(board.text)
    path = _board(app) + "/recompute"

    # without the form's token: refused, no job
    assert reviewer.post(path).status_code == 400
    # nothing reviewed yet: 409 on the board, saying why, no job
    empty = reviewer.post(path, data={"csrf_token": token})
    assert empty.status_code == 409
    assert (
        "还没有已评审的单位，没有可以重算的正式得分" in empty.text and 'id="refused"' in empty.text
    )
    assert jobs.list_jobs(ctx, actor(app, "admin"), kind="scores.recompute")[0] == []

    for code, name in (("dachang", "大场镇"), ("bsip", "宝山工业园区")):
        self_submit(app, code, SCHEME, EXAMPLES[name])
        rounds.complete_review(ctx, actor(app, "reviewer"), round_of(app, SCHEME), code)
    started = reviewer.post(path, data={"csrf_token": token})
    assert started.status_code == 302
    job_id = int(started.headers["Location"].rsplit("/", 1)[1])
    assert started.headers["Location"].endswith(f"/admin/jobs/{job_id}")
    page = reviewer.get(started.headers["Location"]).text
    assert "已开始按本轮规则重算正式得分：共 2 个单位" in page
    with ctx.db.transaction() as s:
        entry = s.scalar(select(JournalEntry).where(JournalEntry.action == "jobs.start"))
        assert entry.detail["kind"] == "scores.recompute" and entry.detail["total"] == 2

    # the board, reloaded and on the admin's screen: the job, its link and its bar
    for who in (reviewer, _client(app, "admin")):
        shown = who.get(_board(app)).text
        assert _progress(shown) == ("queued", "0", "2")
        assert f'href="/admin/jobs/{job_id}"' in shown and "正在按本轮规则重算正式得分" in shown
    jobs.Worker(ctx).run_once(limit=1)
    shown = reviewer.get(_board(app)).text
    assert _progress(shown) == ("running", "1", "2") and "50%" in shown
    jobs.Worker(ctx).run_once()
    shown = reviewer.get(_board(app)).text
    assert _progress(shown) == ("done", "", "")
    assert "最近一次重算" in _card(shown) and "完成 2，共 2 个单位" in _card(shown)
    assert "出错" not in _card(shown)
    # the units' official scores are the job's
    rows = {
        r.unit.code: r for r in rounds.board(ctx, actor(app, "admin"), round_of(app, SCHEME))[1]
    }
    assert rows["dachang"].official is not None and rows["bsip"].official is not None


def test_who_may_not_recompute_sees_no_button_and_is_refused(app):
    for who in ("submitter", "auditor", "editor"):
        client = _client(app, who)
        board = client.get(_board(app))
        assert board.status_code == 200, who
        assert 'id="recompute-round"' not in board.text, who
        refused = client.post(
            _board(app) + "/recompute", data={"csrf_token": csrf_token(board.text)}
        )
        assert refused.status_code == 403, who
    # the auditor reads jobs, the submitter does not: only the auditor's board shows a job's progress
    job = jobs.start_job(app.extensions["scoring"], actor(app, "admin"), "scores.recompute",
                         {"scheme": SCHEME})  # fmt: skip
    assert _progress(_client(app, "auditor").get(_board(app)).text)[0] == "queued"
    assert _progress(_client(app, "submitter").get(_board(app)).text) is None
    jobs.cancel_job(app.extensions["scoring"], actor(app, "admin"), job["id"])


def test_an_older_round_of_the_scheme_offers_no_recompute(app):
    ctx = app.extensions["scoring"]
    scheme = "zhenxing-2010"
    older = round_of(app, scheme)
    newer = rounds.open_round(ctx, actor(app, "admin"), scheme, 2027, "", round_dates()).id
    client = _client(app, "admin")
    board = client.get(f"/admin/rounds/{older}")
    assert 'id="recompute-round"' not in board.text
    refused = client.post(
        f"/admin/rounds/{older}/recompute", data={"csrf_token": csrf_token(board.text)}
    )
    assert refused.status_code == 409
    assert "不是细则zhenxing-2010最新的考核轮次" in refused.text
    assert 'id="recompute-round"' in client.get(f"/admin/rounds/{newer}").text
    # no such round, or a number no round can have: 404, never a database error
    for rid in (999999, 99999999999):
        missing = client.post(
            f"/admin/rounds/{rid}/recompute", data={"csrf_token": csrf_token(board.text)}
        )
        assert missing.status_code == 404, rid


def _links(html: str, cls: str) -> list[tuple[str, str]]:
    return re.findall(rf'<a class="(?:btn [a-z]+ )?{cls}" href="([^"]+)">([^<]+)</a>', html)


def test_the_appeal_page_is_linked_once_published_and_the_board_counts_appeals(app):
    ctx = app.extensions["scoring"]
    rid = round_of(app, APPEALED)
    appeal_page = f"/admin/rounds/{rid}/units/gucun/appeals"
    unit = _client(app, "submitter")
    reviewer = _client(app, "reviewer")
    score = f"/admin/units/gucun/schemes/{APPEALED}/score"

    for code, facts in FACTS.items():
        self_submit(app, code, APPEALED, facts)
        rounds.complete_review(ctx, actor(app, "reviewer"), rid, code)
        ops.compute_score(ctx, actor(app, "reviewer"), code, APPEALED, kind="official")
    # reviewed, not yet published: no appeal
    assert appeal_page not in unit.get("/admin/units/gucun").text
    assert appeal_page not in unit.get(score).text

    rounds.publish_round(ctx, actor(app, "admin"), rid)
    assert (appeal_page, "提出申诉") in _links(unit.get("/admin/units/gucun").text, "appeal-link")
    assert (appeal_page, "提出申诉") in _links(unit.get(score).text, "appeal-link")
    # a reviewer files no appeal: the page is their record of it
    assert (appeal_page, "申诉与复核") in _links(reviewer.get(score).text, "appeal-link")
    # the editor reads no appeals: no link
    assert appeal_page not in _client(app, "editor").get("/admin/units/gucun").text
    board = reviewer.get(f"/admin/rounds/{rid}").text
    assert 'class="appeal-link"' not in board
    assert "申诉：申诉中 0 个 · 已复核 0 个" in board

    filed = appeals.file_appeal(ctx, actor(app, "submitter"), rid, "gucun",
                                [{"clause": "12", "reason": "评审漏看材料", "evidence": {}}])  # fmt: skip
    board = reviewer.get(f"/admin/rounds/{rid}").text
    assert (appeal_page, "答复申诉") in _links(board, "appeal-link")
    assert '<a href="?state=appealed">申诉中 1 个</a>' in board
    assert (appeal_page, "答复申诉") in _links(
        reviewer.get("/admin/units/gucun").text, "appeal-link"
    )
    assert (appeal_page, "申诉与复核") in _links(unit.get(score).text, "appeal-link")
    filtered = reviewer.get(f"/admin/rounds/{rid}?state=appealed").text
    assert 'data-unit="gucun"' in filtered and 'data-unit="dachang"' not in filtered

    appeals.answer_item(ctx, actor(app, "reviewer"), filed["id"], "12", "uphold", "材料已看过",
                        {}, {})  # fmt: skip
    board = unit.get(f"/admin/rounds/{rid}").text  # the unit's own board: its own row
    assert (appeal_page, "申诉") in _links(board, "appeal-link")
    assert "已复核 1 个" in reviewer.get(f"/admin/rounds/{rid}").text
    followed = unit.get(appeal_page)
    assert followed.status_code == 200 and "材料已看过" in followed.text


@pytest.mark.parametrize("who", ["submitter", "reviewer"])
def test_no_appeal_link_for_a_unit_without_a_round_place(app, who):
    """A unit that never submitted in a scheme's round has no appeal link on its page."""
    page = _client(app, who).get("/admin/units/gucun").text
    assert "/units/gucun/appeals" not in page.split(f'id="scheme-{SCHEME}"')[1].split("</tr>")[0]


def test_a_recompute_with_failures_links_them_from_the_board(app):
    """A unit the job could not recompute: the board's summary counts it and links the job
    page's list of failures (by unit, with the reason)."""
    from service.db import JobItem

    ctx = app.extensions["scoring"]
    scheme = "baoshan-2022-c1"
    rid = round_of(app, scheme)
    examples = read_facts_file(PROJECT_ROOT / "examples" / f"{scheme}.yaml")
    for code, name in (("dachang", "大场镇"), ("bsip", "宝山工业园区")):
        self_submit(app, code, scheme, examples[name])
        rounds.complete_review(ctx, actor(app, "reviewer"), rid, code)
    job = jobs.start_job(ctx, actor(app, "admin"), "scores.recompute", {"scheme": scheme})
    worker = jobs.Worker(ctx)
    claimed = worker.claim()
    with ctx.db.transaction() as s:  # the unit is no longer found: that item fails
        s.query(JobItem).filter_by(job_id=job["id"], key="bsip").update({"key": "gone"})
    assert worker.run(claimed) == "done"
    card = _card(_client(app, "reviewer").get(f"/admin/rounds/{rid}").text)
    assert "完成 1" in card and "共 2 个单位" in card
    assert f'<a href="/admin/jobs/{job["id"]}#job-failures" class="bad">出错 1</a>' in card
    failures = _client(app, "reviewer").get(f"/admin/jobs/{job['id']}").text
    assert "宝山工业园区" in failures.split('id="job-failures"')[1]
