"""The review cycle in the admin pages (issue 9): the round and the unit's state wherever the unit
appears, the reviewer's steps on the unit's page, the reviewer's form (self-assessed values and
changes marked), the rounds pages (open a round, the status board, deadlines, 发布公示, 定稿), and
their permissions and CSRF.

One app per module and database (SQLite, then PostgreSQL); each test uses its own scheme, so the
module's shared database keeps them apart.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service import operations as ops
from service import rounds
from service.db import DeadlineChange, Round, RoundUnit, Unit

from .conftest import actor, csrf_token, official, round_of, self_submit, sign_in


def _signed_in(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _state(app, scheme, code):
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        unit = s.scalar(select(Unit).where(Unit.code == code))
        place = s.scalar(
            select(RoundUnit).where(
                RoundUnit.round_id == round_of(app, scheme), RoundUnit.unit_id == unit.id
            )
        )
        return place.state if place else "none"


def _post(client, page_url, url, data):
    page = client.get(page_url)
    assert page.status_code == 200, page.text[:500]
    return client.post(url, data={"csrf_token": csrf_token(page.text), **data})


def _text(response) -> str:
    return html.unescape(response.text)


def _facts_form(client, code, scheme, data):
    url = f"/admin/units/{code}/schemes/{scheme}/facts"
    page = client.get(url)
    base = page.text.split('name="base_version" value="')[1].split('"')[0]
    body = {"csrf_token": csrf_token(page.text), "base_version": base, **data}
    return client.post(url, data=body)


def test_the_round_and_the_state_are_shown_wherever_the_unit_is(app):
    scheme = "zhenxing-2010"
    rid = round_of(app, scheme)
    title = rounds.get_round(app.extensions["scoring"], actor(app, "admin"), rid).title
    unit = f"/admin/units/gucun/schemes/{scheme}"
    submitter = _signed_in(app, "submitter")
    row = _text(submitter.get("/admin/units/gucun")).split(f'id="scheme-{scheme}"')[1]
    assert title in row.split("</tr>")[0] and "2026年度" in row and "未填报" in row
    facts = submitter.get(f"{unit}/facts")
    assert title in _text(facts) and 'data-state="none"' in facts.text

    field = next(iter(app.extensions["scoring"].registry.get(scheme).facts))
    r = _facts_form(submitter, "gucun", scheme, {"action": "self", f"f.{field}": "true"})
    assert r.status_code == 302, r.text[:2000]
    for page in ("facts", "score", "history"):
        text = _text(submitter.get(f"{unit}/{page}"))
        assert title in text and 'data-state="submitted"' in text and "已提交自评" in text, page
    # submitted: the unit changes nothing until a reviewer returns it, and the form says so
    facts = _text(submitter.get(f"{unit}/facts"))
    assert 'value="self"' not in facts and "现在不能由您修改事实" in facts

    reviewer = _signed_in(app, "reviewer")
    r = _post(
        reviewer,
        "/admin/units/gucun",
        f"/admin/rounds/{rid}/units/gucun/return",
        {"reason": "佐证材料缺少签章页", "back": "unit"},
    )
    assert r.status_code == 302 and _state(app, scheme, "gucun") == "draft"
    for page in (submitter.get("/admin/units/gucun"), submitter.get(f"{unit}/facts")):
        text = _text(page)
        assert "佐证材料缺少签章页" in text and "已退回" in text
    assert 'value="self"' in submitter.get(f"{unit}/facts").text  # may submit again


def test_a_refusal_of_the_cycle_is_shown_and_nothing_typed_is_lost(app):
    scheme = "zhuanqiao-2018"
    ctx, rid = app.extensions["scoring"], round_of(app, scheme)
    field = next(iter(ctx.registry.get(scheme).facts))
    # 409: a reviewer returns a unit that never submitted (posted by hand: no button offers it)
    reviewer = _signed_in(app, "reviewer")
    assert "退回自评" not in reviewer.get("/admin/units/dachang").text.split(f"scheme-{scheme}")[1]
    r = _post(
        reviewer,
        "/admin/units/dachang",
        f"/admin/rounds/{rid}/units/dachang/return",
        {"reason": "我的理由写了很久", "back": "unit"},
    )
    assert r.status_code == 409
    assert "单位当前状态为“未填报”，不能退回自评" in _text(r) and 'id="refused"' in r.text
    # 423: after the self-assessment deadline a submission is refused naming it, the typing kept
    past = datetime.now(UTC) - timedelta(days=1)
    rounds.extend_deadline(ctx, actor(app, "admin"), rid, "self_deadline", past, "测试：截止已过")
    submitter = _signed_in(app, "submitter")
    r = _facts_form(submitter, "gucun", scheme, {"action": "self", f"f.{field}": "42"})
    assert r.status_code == 423
    text = _text(r)
    assert "自评截止时间" in text and "已过" in text and "仍保留在下方" in text
    assert 'value="42"' in r.text.split(f'name="f.{field}"')[1][:100]  # as typed
    assert not ops.history(ctx, actor(app, "admin"), "gucun", scheme)
    # and the board marks the units still 未填报 after the deadline as overdue
    board = _text(_signed_in(app, "admin").get(f"/admin/rounds/{rid}"))
    assert board.count('class="badge bad overdue-mark"') == 3 and "3 个逾期" in board


def test_the_reviewer_steps_are_offered_only_when_the_cycle_allows_them(app):
    scheme = "baoshan-2022-c1"
    ctx, rid = app.extensions["scoring"], round_of(app, scheme)
    reviewer, submitter = _signed_in(app, "reviewer"), _signed_in(app, "submitter")

    def row(client):
        page = client.get("/admin/units/gucun")
        return page.text.split(f'id="scheme-{scheme}"')[1].split('<tr id="scheme-')[0]

    assert "完成评审" not in row(reviewer) and "退回自评" not in row(reviewer)
    self_submit(app, "gucun", scheme, {}, by="submitter")
    shown = row(reviewer)
    assert "完成评审" in shown and "退回自评" in shown
    assert "计算正式得分" not in shown and "重新打开评审" not in shown
    facts = reviewer.get(f"/admin/units/gucun/schemes/{scheme}/facts").text
    steps = facts.split('id="review-steps"')[1].split("</details>")[0]
    assert "完成评审" in steps and "退回自评" in steps and "计算正式得分" not in steps
    assert (
        'id="review-steps"' not in submitter.get(f"/admin/units/gucun/schemes/{scheme}/facts").text
    )
    mine = row(submitter)
    assert "完成评审" not in mine and "退回自评" not in mine and "计算预览" in mine

    # the unit's preview: stored, labelled 预览, never official
    r = _post(
        submitter,
        "/admin/units/gucun",
        f"/admin/units/gucun/schemes/{scheme}/score",
        {"kind": "preview", "back": "unit"},
    )
    assert r.status_code == 302
    page = _text(submitter.get(r.headers["Location"]))
    assert 'data-kind="preview"' in page and "不计入排名" in page
    book = submitter.get(f"/admin/units/gucun/schemes/{scheme}/score.xlsx")
    sheet = load_workbook(io.BytesIO(book.data)).active
    assert sheet["A1"].value.endswith("（预览）") and "不计入排名" in sheet["A2"].value

    # an official score before the review is complete: refused on the score page, with the reason
    r = _post(
        reviewer,
        f"/admin/units/gucun/schemes/{scheme}/score",
        f"/admin/units/gucun/schemes/{scheme}/score",
        {"kind": "official", "back": "score"},
    )
    assert r.status_code == 409 and 'id="refused"' in r.text
    assert "单位当前状态为“已提交自评”，不能计算正式得分" in _text(r)
    r = _post(reviewer, "/admin/units/gucun", f"/admin/rounds/{rid}/units/gucun/complete",
              {"back": "unit"})  # fmt: skip
    assert r.status_code == 302 and _state(app, scheme, "gucun") == "reviewed"
    shown = row(reviewer)
    assert "计算正式得分" in shown and "重新打开评审" in shown and "完成评审" not in shown
    r = _post(
        reviewer,
        "/admin/units/gucun",
        f"/admin/units/gucun/schemes/{scheme}/score",
        {"kind": "official", "back": "unit"},
    )
    assert r.status_code == 302
    page = _text(reviewer.get(f"/admin/units/gucun/schemes/{scheme}/score"))
    assert 'data-kind="official"' in page.split('id="kind"')[1][:200]
    book = reviewer.get(f"/admin/units/gucun/schemes/{scheme}/score.xlsx")
    assert load_workbook(io.BytesIO(book.data)).active["A1"].value.endswith("（正式得分）")
    official_id = ops.list_scores(ctx, actor(app, "admin"), "gucun", scheme)[-1].id
    assert f"#{official_id}（正在显示）" in page or "正式得分" in page

    # 重新打开评审 wants a reason; refused without one, the page says so (a 422 kept on the page)
    r = _post(reviewer, "/admin/units/gucun", f"/admin/rounds/{rid}/units/gucun/reopen",
              {"reason": " ", "back": "unit"})  # fmt: skip
    assert r.status_code == 422 and "须写明理由" in _text(r)
    r = _post(reviewer, "/admin/units/gucun", f"/admin/rounds/{rid}/units/gucun/reopen",
              {"reason": "现场核查发现问题", "back": "unit"})  # fmt: skip
    assert r.status_code == 302 and _state(app, scheme, "gucun") == "in_review"
    page = _text(reviewer.get(f"/admin/units/gucun/schemes/{scheme}/score"))
    assert 'data-kind="superseded"' in page  # the dropped official score is not shown as one


def test_the_reviewers_form_shows_the_self_assessed_values_and_marks_the_changes(app):
    scheme = "shuangtaizi-2016"
    ctx, rid = app.extensions["scoring"], round_of(app, scheme)
    facts = ctx.registry.get(scheme).facts
    numbers = [n for n, f in facts.items() if f.type in ("number", "integer")][:2]
    first, second = numbers
    self_submit(app, "dachang", scheme, {first: 3, second: 5})
    reviewer = _signed_in(app, "reviewer")
    page = reviewer.get(f"/admin/units/dachang/schemes/{scheme}/facts")
    box = page.text.split(f'id="f-{first}-self"')[1][:300]
    assert "单位自评值" in html.unescape(page.text) and "<strong>3</strong>" in box
    assert 'class="badge warn changed"' not in page.text  # the self version itself: no change yet

    # the reviewer corrects one fact, completes, reopens; the unit's later change is marked
    ops.submit(ctx, actor(app, "reviewer"), "dachang", scheme, "review", {first: 2, second: 5},
               {}, "核查下调", '"1"')  # fmt: skip
    page = _text(reviewer.get(f"/admin/units/dachang/schemes/{scheme}/facts"))
    marked = page.split(f'id="f-{first}-self"')[1][:400]
    assert "第1版以来有改动，原为 3" in marked  # changed since the self-assessment
    assert "changed" not in page.split(f'id="f-{second}-self"')[1][:300]
    rounds.complete_review(ctx, actor(app, "reviewer"), rid, "dachang")
    rounds.reopen_review(ctx, actor(app, "reviewer"), rid, "dachang", "复核")
    ops.submit(ctx, actor(app, "reviewer"), "dachang", scheme, "review", {first: 2, second: 4},
               {}, "再次核查", '"2"')  # fmt: skip
    page = _text(reviewer.get(f"/admin/units/dachang/schemes/{scheme}/facts"))
    assert "第2版以来有改动，原为 5" in page.split(f'id="f-{second}-self"')[1][:400]
    assert "changed" not in page.split(f'id="f-{first}-self"')[1][:300]  # since the reviewed one
    assert "<strong>3</strong>" in page.split(f'id="f-{first}-self"')[1][:300]  # still the unit's


def test_an_admin_opens_a_round_with_beijing_times_and_a_wrong_date_loses_nothing(app):
    admin = _signed_in(app, "admin")
    listing = admin.get("/admin/rounds")
    assert listing.status_code == 200 and 'type="datetime-local"' in listing.text
    assert "/admin/rounds" in admin.get("/admin/").text  # linked from the home page and nav
    form = {
        "scheme": "gumeilu-2022",
        "year": "2025",
        "title": "2025年度补开测试轮次",
        "self_deadline": "2025-03-31T17:00",
        "review_deadline": "2025-04-30T17:00",
        "publication_start": "2025-05-06T09:00",
        "appeal_deadline": "2025-05-12T17:00",
        "publication_end": "2025-05-15T17:00",
    }
    r = _post(admin, "/admin/rounds", "/admin/rounds", dict(form, review_deadline="2025-02-30"))
    assert r.status_code == 422 and "不是日期时间" in _text(r)
    assert 'value="2025年度补开测试轮次"' in r.text and 'value="2025-03-31T17:00"' in r.text
    r = _post(
        admin, "/admin/rounds", "/admin/rounds", dict(form, review_deadline="2025-03-01T00:00")
    )
    assert r.status_code == 422 and "评审截止时间不能早于自评截止时间" in _text(r)
    r = _post(admin, "/admin/rounds", "/admin/rounds", form)
    assert r.status_code == 302
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        rnd = s.scalar(select(Round).where(Round.title == "2025年度补开测试轮次"))
        assert rnd.self_deadline.astimezone(UTC) == datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    board = _text(admin.get(r.headers["Location"]))
    assert "2025年度补开测试轮次" in board and "2025-03-31 17:00" in board
    r = _post(admin, "/admin/rounds", "/admin/rounds", form)  # the same year again
    assert r.status_code == 409 and "已有2025年度的考核轮次" in _text(r)


def test_the_board_counts_searches_filters_and_moves_deadlines(app):
    scheme = "baoshan-2022-b1"
    ctx, rid = app.extensions["scoring"], round_of(app, scheme)
    self_submit(app, "bsip", scheme, {})
    official(app, "dachang", scheme, {})
    admin = _signed_in(app, "admin")
    board = admin.get(f"/admin/rounds/{rid}")
    assert board.status_code == 200
    chart = board.text.split('id="chart"')[1].split("</svg>")[0]
    bars = dict(re.findall(r'data-state="(\w+)"[^>]*width="([\d.]+)"', chart))
    assert set(bars) == {"none", "draft", "submitted", "in_review", "reviewed", "published",
                         "appealed", "rechecked", "final"}  # fmt: skip
    assert float(bars["none"]) == float(bars["submitted"]) == float(bars["reviewed"]) > 0
    assert float(bars["draft"]) == 0
    rows = re.findall(r'data-unit="(\w+)"', board.text)
    assert rows == ["bsip", "dachang", "gucun"]
    found = admin.get(f"/admin/rounds/{rid}?q=大场")
    assert re.findall(r'data-unit="(\w+)"', found.text) == ["dachang"]
    found = admin.get(f"/admin/rounds/{rid}?state=submitted")
    assert re.findall(r'data-unit="(\w+)"', found.text) == ["bsip"]
    assert 'value="submitted" selected' in found.text  # the filter as chosen

    # a deadline moved with a reason, listed; without a reason it is refused, the form kept
    url = f"/admin/rounds/{rid}/deadlines"
    move = {"deadline": "review_deadline", "new": "2099-01-20T17:00", "reason": ""}
    r = _post(admin, f"/admin/rounds/{rid}", url, move)
    assert (
        r.status_code == 422 and 'value="2099-01-20T17:00"' in r.text and "必须写明理由" in _text(r)
    )
    r = _post(admin, f"/admin/rounds/{rid}", url, dict(move, reason="核查组延期"))
    assert r.status_code == 302
    with ctx.db.transaction() as s:
        (change,) = s.scalars(select(DeadlineChange).where(DeadlineChange.round_id == rid))
        assert change.new.astimezone(UTC) == datetime(2099, 1, 20, 9, 0, tzinfo=UTC)
    board = _text(admin.get(f"/admin/rounds/{rid}"))
    assert "核查组延期" in board.split('id="changes"')[1] and "2099-01-20 17:00" in board

    # 发布公示: the reviewed unit with its official score is published; 定稿 refused (window open)
    r = _post(admin, f"/admin/rounds/{rid}", f"/admin/rounds/{rid}/finalize", {})
    assert r.status_code == 409 and "只有公示后才能定稿" in _text(r)
    r = _post(admin, f"/admin/rounds/{rid}", f"/admin/rounds/{rid}/publish", {})
    assert r.status_code == 302 and _state(app, scheme, "dachang") == "published"
    r = _post(admin, f"/admin/rounds/{rid}", f"/admin/rounds/{rid}/finalize", {})
    assert r.status_code == 409 and "申诉截止时间" in _text(r) and "未到" in _text(r)


def test_a_submitter_sees_only_their_unit_and_may_use_no_admin_form(app):
    scheme = "gumeilu-2022"
    rid = round_of(app, scheme)
    submitter = _signed_in(app, "submitter")
    board = submitter.get(f"/admin/rounds/{rid}")
    assert board.status_code == 200
    assert re.findall(r'data-unit="(\w+)"', board.text) == ["gucun"]
    assert "大场镇" not in board.text and 'id="move-deadline"' not in board.text
    assert "发布公示" not in board.text
    assert 'id="open-round"' not in submitter.get("/admin/rounds").text
    token = csrf_token(board.text)
    for url, data in (
        ("/admin/rounds", {"scheme": scheme, "year": "2030"}),
        (f"/admin/rounds/{rid}/deadlines", {"deadline": "self_deadline", "new": "2099-01-01T00:00",
                                            "reason": "x"}),
        (f"/admin/rounds/{rid}/publish", {}),
        (f"/admin/rounds/{rid}/finalize", {}),
        (f"/admin/rounds/{rid}/units/gucun/return", {"reason": "x"}),
        (f"/admin/rounds/{rid}/units/gucun/complete", {}),
        (f"/admin/rounds/{rid}/units/gucun/reopen", {"reason": "x"}),
    ):  # fmt: skip
        r = submitter.post(url, data=dict(data, csrf_token=token))
        assert r.status_code == 403, (url, r.status_code)
    reviewer = _signed_in(app, "reviewer")
    token = csrf_token(reviewer.get("/admin/rounds").text)
    assert reviewer.post("/admin/rounds", data={"csrf_token": token}).status_code == 403
    r = reviewer.post(f"/admin/rounds/{rid}/publish", data={"csrf_token": token})
    assert r.status_code == 403
    # and another unit's page and board row stay closed to the submitter
    assert submitter.get("/admin/units/dachang").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/admin/rounds",
        "/admin/rounds/{rid}/deadlines",
        "/admin/rounds/{rid}/publish",
        "/admin/rounds/{rid}/finalize",
        "/admin/rounds/{rid}/units/bsip/return",
        "/admin/rounds/{rid}/units/bsip/complete",
        "/admin/rounds/{rid}/units/bsip/reopen",
    ],
)
def test_every_new_form_needs_the_csrf_token(app, path):
    scheme = "zhenxing-2010"
    rid = round_of(app, scheme)
    admin = _signed_in(app, "admin")
    before = _state(app, scheme, "bsip")
    r = admin.post(
        path.format(rid=rid),
        data={"reason": "x", "deadline": "self_deadline", "new": "2099-02-01T00:00"},
    )
    assert r.status_code == 400 and "安全令牌" in r.text
    assert _state(app, scheme, "bsip") == before
    with app.extensions["scoring"].db.transaction() as s:
        assert not list(s.scalars(select(DeadlineChange).where(DeadlineChange.round_id == rid)))


def test_the_ranking_page_and_workbook_carry_the_round_and_list_every_unit(app):
    from admin import export

    scheme = "zhenxing-2010"
    rid = round_of(app, scheme)
    official(app, "dachang", scheme, {})
    self_submit(app, "bsip", scheme, {})  # submitted, not reviewed: 待评审
    # 顾村镇: never submitted here, or returned to 草稿 by another test: 未填报 either way
    reviewer = _signed_in(app, "reviewer")
    page = reviewer.get(f"/admin/schemes/{scheme}/ranking")
    text = _text(page)
    rnd = rounds.get_round(app.extensions["scoring"], actor(app, "admin"), rid)
    head = text.split('id="round"')[1][:800]
    assert rnd.title in head and "2026年度" in head and "进行中" in head
    assert rnd.rules_version[:12] in head
    ranked = text.split('id="ranking"')[1].split("</table>")[0]
    assert "大场镇" in ranked and 'data-state="reviewed"' in ranked and "已评审" in ranked
    assert "宝山工业园区" not in ranked and "顾村镇" not in ranked
    unranked = page.text.split('id="unranked"')[1].split("</table>")[0]
    rows = dict(re.findall(r'data-unit="(\w+)"><td>[^<]+</td><td><strong>([^<]+)<', unranked))
    assert rows == {"bsip": "待评审", "gucun": "未填报"}

    book = reviewer.get(f"/admin/schemes/{scheme}/ranking.xlsx")
    ws = load_workbook(io.BytesIO(book.data))["排名"]
    assert rnd.title in ws["A2"].value and "2026年度" in ws["A2"].value
    assert rnd.rules_version[:12] in ws["A2"].value
    header = [c.value for c in ws[4]]
    cats = len(header) - len(export.RANK_HEADER)  # the category subtotals, after 总分
    assert header[:3] + header[3 + cats :] == list(export.RANK_HEADER)
    body = [[c.value for c in row] for row in ws.iter_rows(min_row=5) if row[1].value]
    for r in body:
        del r[3 : 3 + cats]
    assert [r[1] for r in body] == ["大场镇", "宝山工业园区", "顾村镇"]  # none left out
    assert body[0][3] == 1 and body[0][6] == "已评审"
    assert body[1][2] is None and body[1][4] == "待评审" and body[1][6] == "已提交自评"
    assert body[2][2] is None and body[2][4] == "未填报" and "尚无正式得分" in body[2][5]


def test_the_issues_scenario_through_the_pages_leaves_the_official_ranking_alone(app):
    """Issue 9: a unit's submitter files a new self-assessment after the review and presses 计算
    herself; the ranking must still show what the office decided."""
    from service.cli import read_facts_file
    from service.config import PROJECT_ROOT

    scheme = "gumeilu-2022"
    examples = read_facts_file(PROJECT_ROOT / "examples" / f"{scheme}.yaml")
    facts = dict(next(iter(examples.values())))
    decided = official(app, "gucun", scheme, facts)
    reviewer = _signed_in(app, "reviewer")
    before = reviewer.get(f"/admin/schemes/{scheme}/ranking").text.split('id="ranking"')[1]
    assert "顾村镇" in before

    submitter = _signed_in(app, "submitter")
    form = _text(submitter.get(f"/admin/units/gucun/schemes/{scheme}/facts"))
    assert 'value="self"' not in form and "已评审" in form  # no 提交自评 after the review
    r = _facts_form(
        submitter,
        "gucun",
        scheme,
        {"action": "self", "f.quality_meetings": "9", "reason": "补充材料"},
    )
    assert r.status_code == 409 and "单位当前状态为“已评审”，不能提交自评" in _text(r)
    assert 'value="9"' in r.text.split('name="f.quality_meetings"')[1][:200]  # kept as typed
    # 计算 by the unit is a preview, labelled so, and ranks nothing
    page = submitter.get("/admin/units/gucun")
    r = submitter.post(
        f"/admin/units/gucun/schemes/{scheme}/score", data={"csrf_token": csrf_token(page.text)}
    )
    assert r.status_code == 302
    assert 'data-kind="preview"' in submitter.get(r.headers["Location"]).text
    ranking = ops.ranking(app.extensions["scoring"], actor(app, "reviewer"), scheme)
    (entry,) = [e for e in ranking["entries"] if e["unit_code"] == "gucun"]
    assert entry["score_id"] == decided.id and entry["total"] == str(decided.total)
    after = reviewer.get(f"/admin/schemes/{scheme}/ranking").text.split('id="ranking"')[1]
    assert after.split("</table>")[0] == before.split("</table>")[0]
