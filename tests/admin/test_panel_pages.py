"""The panel's page (评审组打分, several reviewers) without a browser, on SQLite and PostgreSQL.

The app serves the fixture scheme tests/fixtures/panel: clause 1 is scored by 3 reviewers (the
mean), clause 2 by 5 (the mean after dropping the highest and the lowest).  On the page a reviewer
enters their own points and reason, sees how many marks are in, and the others' marks only after
entering their own; an admin or an auditor sees every mark with names; the unit's submitter sees
them once its score is published.  Refusals (409, 422, 423) come back as the page with the
service's message and what was typed; the forms carry CSRF tokens; a submitter posting the
reviewer's form gets 403.  The Chromium test at the end: two reviewers mark clause 1 of a panel of
two, the admin computes the official score and reads the mean.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from service import operations as ops
from service import rounds
from service.commands import add_user
from service.db import PanelMark
from service.domain.cycle import CHINA

from ..api.conftest import DATABASES
from ..apps import PASSWORD
from ..conftest import FIXTURES
from .conftest import actor, csrf_token, make_app, round_of, self_submit, sign_in

SCHEME = "panel"
#: reviewers besides the seeded one: (username, display name)
MORE = [("reviewer2", "专家乙"), ("reviewer3", "专家丙")]


#: the test case of clause 1 when its panel has two reviewers
_CASE = """tests:
  - name: 2人打分 → 平均8.5
    facts: {}
    marks:
      - {reviewer: 王领导, points: 8}
      - {reviewer: 李领导, points: 9}
    points: 8.5
    fired: [r1]
"""


def _panel_app(tmp_path: Path, engine, database: str, reviewers_of_clause_1: int = 3):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "panel", rules / "panel")
    if reviewers_of_clause_1 != 3:  # a smaller panel, its test cases left out (they take 3 marks)
        path = rules / "panel" / "clauses" / "01-leaders.yaml"
        text = path.read_text(encoding="utf-8").split("\ntests:\n")[0] + "\n" + _CASE
        path.write_text(
            text.replace(
                "panel: {reviewers: 3}", f"panel: {{reviewers: {reviewers_of_clause_1}}}"
            ).replace("3名领导打分取平均", f"{reviewers_of_clause_1}名领导打分取平均"),
            encoding="utf-8",
        )
        scheme = rules / "panel" / "scheme.yaml"
        scheme.write_text(
            scheme.read_text(encoding="utf-8").split("\ntests:\n")[0] + "\n", encoding="utf-8"
        )
    app = make_app(tmp_path, engine, rules, database)
    db = app.extensions["scoring"].db
    for username, name in MORE:
        add_user(db, username, "reviewer", None, PASSWORD, name=name, min_password_length=1)
    return app


@pytest.fixture(scope="module", params=DATABASES)
def app(request, tmp_path_factory, engine):
    made = _panel_app(tmp_path_factory.mktemp("panel"), engine, request.param)
    yield made
    made.extensions["scoring"].db.engine.dispose()


def _client(app, username: str):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _page(app, code: str, clause: str | None = None) -> str:
    rid = round_of(app, SCHEME)
    if clause is None:
        return f"/admin/rounds/{rid}/units/{code}/marks"
    return f"/admin/rounds/{rid}/units/{code}/clauses/{clause}/marks"


def _section(html: str, clause: str) -> str:
    found = re.search(rf'<section class="card panel-clause" id="clause-{clause}".*?</section>', html,
                      re.S)  # fmt: skip
    assert found, html[:3000]
    return found.group(0)


def _enter(client, app, code, clause, points, reason, back=None, token=None):
    if token is None:
        token = csrf_token(client.get(_page(app, code)).text)
    data = {"csrf_token": token, "points": points, "reason": reason}
    if back:
        data["back"] = back
    return client.post(_page(app, code, clause), data=data)


def test_reviewers_mark_blind_and_an_admin_sees_every_mark_with_names(app):
    self_submit(app, "gucun", SCHEME, {})
    first = _client(app, "reviewer")
    page = first.get(_page(app, "gucun"))
    assert page.status_code == 200, page.text
    one = _section(page.text, "1")
    assert "领导评价" in one and "已收到 0/3 份" in one and "3名评审独立打分，取平均" in one
    assert 'name="points"' in one and 'name="reason"' in one and 'name="csrf_token"' in one
    assert "已收到 0/5 份" in _section(page.text, "2")
    assert "还没有评审打分" in one and "录入您自己的打分后" not in one

    entered = _enter(first, app, "gucun", "1", "８分", "措施到位，资料齐全")  # full-width, unit
    assert entered.status_code == 302, entered.text
    assert entered.headers["Location"].endswith("/units/gucun/marks#clause-1")
    after = first.get(_page(app, "gucun")).text
    assert "已录入您对条款“1”的打分：8分（已收到1份，共需3份）" in after
    mine = _section(after, "1")
    assert "措施到位，资料齐全" in mine and "已收到 1/3 份" in mine and "修改我的打分" in mine
    assert 'name="points" inputmode="decimal" value="8"' in mine

    # the second reviewer, before entering theirs: how many are in, nobody's points or reason
    second = _client(app, "reviewer2")
    blind = _section(second.get(_page(app, "gucun")).text, "1")
    assert "已收到 1/3 份" in blind
    assert "录入您自己的打分后才能看到其他评审的打分（已有 1 份打分）" in blind
    assert "措施到位" not in blind and 'data-reviewer="reviewer"' not in blind
    assert "录入我的打分" in blind
    # the clause's page of its own says the same
    alone = second.get(_page(app, "gucun", "1"))
    assert alone.status_code == 200 and "已收到 1/3 份" in alone.text
    assert "措施到位" not in alone.text and 'id="clause-2"' not in alone.text

    entered = _enter(second, app, "gucun", "1", "9.5", "有亮点", back="clause")
    assert entered.headers["Location"].endswith("/units/gucun/clauses/1/marks")
    seen = _section(second.get(_page(app, "gucun", "1")).text, "1")
    assert "措施到位，资料齐全" in seen and "有亮点" in seen and "已收到 2/3 份" in seen
    assert seen.index("reviewer") < seen.index("专家乙")

    # an admin and an auditor see every mark with names; the auditor has no form
    for who, form in (("admin", True), ("auditor", False)):
        shown = _section(_client(app, who).get(_page(app, "gucun")).text, "1")
        assert "措施到位，资料齐全" in shown and "专家乙" in shown and "9.5" in shown, who
        assert ('name="points"' in shown) is form, who

    # the unit's submitter: how many are in, not the marks, no form, before publication
    unit = _client(app, "submitter")
    own = unit.get(_page(app, "gucun"))
    assert own.status_code == 200
    shown = _section(own.text, "1")
    assert "已收到 2/3 份" in shown and "评审打分在本单位得分公示后才能查看" in shown
    assert "措施到位" not in shown and "专家乙" not in shown and 'name="points"' not in shown

    # the third mark, the review, the official score, publication: now the unit sees them all
    ctx, rid = app.extensions["scoring"], round_of(app, SCHEME)
    assert _enter(_client(app, "reviewer3"), app, "gucun", "1", "10", "成效突出").status_code == 302
    rounds.complete_review(ctx, actor(app, "reviewer"), rid, "gucun")
    ops.compute_score(ctx, actor(app, "reviewer"), "gucun", SCHEME, kind="official")
    rounds.publish_round(ctx, actor(app, "admin"), rid)
    shown = _section(unit.get(_page(app, "gucun")).text, "1")
    assert "措施到位，资料齐全" in shown and "专家乙" in shown and "专家丙" in shown
    assert "已收到 3/3 份" in shown and 'name="points"' not in shown
    # the score page: the mean of 8, 9.5 and 10 (clause 2 has no marks: 0), and the appeal offered
    score = unit.get(f"/admin/units/gucun/schemes/{SCHEME}/score").text
    assert "9.17" in score and f'href="/admin/rounds/{rid}/units/gucun/appeals"' in score


def test_refusals_show_the_message_and_keep_what_was_typed(app):
    self_submit(app, "dachang", SCHEME, {})
    client = _client(app, "reviewer")
    token = csrf_token(client.get(_page(app, "dachang")).text)

    too_high = _enter(client, app, "dachang", "2", "11", "材料很好", token=token)
    assert too_high.status_code == 422, too_high.text
    shown = _section(too_high.text, "2")
    assert "专家评审得分11超出范围，应为0到10之间的数值" in shown
    assert 'value="11"' in shown and "材料很好</textarea>" in shown
    assert "<strong>没有录入：</strong>评审打分有误" in too_high.text

    empty = _enter(client, app, "dachang", "2", "  ", "", token=token)
    assert empty.status_code == 422
    shown = _section(empty.text, "2")
    assert "必填：请填写您的打分" in shown and "必须写明理由" in shown

    words = _enter(client, app, "dachang", "1", "八分", "不错", back="clause", token=token)
    assert words.status_code == 422 and "领导评价得分" in words.text
    assert 'value="八分"' in words.text and 'id="clause-2"' not in words.text

    # a full panel: 409 with the service's message, the typing kept
    for who in ("reviewer", "reviewer2", "reviewer3"):
        assert _enter(_client(app, who), app, "dachang", "1", "8", "好").status_code == 302
    full = _enter(_client(app, "admin"), app, "dachang", "1", "7.5", "管理员也想打分")
    assert full.status_code == 409
    assert "条款“1”的评审组为3人，已有3名评审打分，不能再录入" in full.text
    assert 'value="7.5"' in _section(full.text, "1") and "管理员也想打分" in full.text

    # the review completed: no form on the page, and a stale form's post is refused (409)
    rounds.complete_review(app.extensions["scoring"], actor(app, "reviewer"),
                           round_of(app, SCHEME), "dachang")  # fmt: skip
    page = client.get(_page(app, "dachang")).text
    assert 'name="points"' not in page and "已评审" in page
    late = _enter(client, app, "dachang", "2", "9", "补录", token=token)
    assert late.status_code == 409 and "已评审" in late.text
    assert "没有录入" in late.text
    with app.extensions["scoring"].db.transaction() as s:
        stored = [(m.clause_id, m.points) for m in s.scalars(select(PanelMark))]
    assert ("2", "11") not in stored and ("2", "9") not in stored


def test_csrf_and_who_may_do_what(app):
    self_submit(app, "bsip", SCHEME, {})
    reviewer = _client(app, "reviewer")
    # no token: refused, nothing stored
    bare = reviewer.post(_page(app, "bsip", "1"), data={"points": "8", "reason": "x"})
    assert bare.status_code == 400 and "安全令牌" in bare.text
    # the unit's submitter posting the reviewer's form (with a valid token): 403, also when empty
    unit = _client(app, "submitter")
    token = csrf_token(unit.get(_page(app, "gucun")).text)
    for points in ("8", ""):
        refused = unit.post(
            _page(app, "gucun", "1"), data={"csrf_token": token, "points": points, "reason": "x"}
        )
        assert refused.status_code == 403 and "没有权限" in refused.text
    # another unit's page; an editor (who reads no scores); an unknown clause or round
    assert unit.get(_page(app, "bsip")).status_code == 403
    assert _client(app, "editor").get(_page(app, "bsip")).status_code == 403
    assert reviewer.get(_page(app, "bsip", "99")).status_code == 404
    assert reviewer.get("/admin/rounds/999999/units/bsip/marks").status_code == 404
    unknown = reviewer.post(
        _page(app, "bsip", "99"),
        data={"csrf_token": csrf_token(reviewer.get(_page(app, "bsip")).text), "points": "1",
              "reason": "x"},
    )  # fmt: skip
    assert unknown.status_code == 404
    with app.extensions["scoring"].db.transaction() as s:
        assert not list(s.scalars(select(PanelMark).where(PanelMark.reason == "x")))


def test_the_unit_and_score_pages_link_to_the_marks(app):
    rid = round_of(app, SCHEME)
    for who in ("reviewer", "submitter", "auditor"):
        client = _client(app, who)
        unit_page = client.get("/admin/units/gucun").text
        assert f'href="/admin/rounds/{rid}/units/gucun/marks"' in unit_page, who
        score_page = client.get(f"/admin/units/gucun/schemes/{SCHEME}/score").text
        assert f'href="/admin/rounds/{rid}/units/gucun/marks"' in score_page, who


def test_a_deadline_passed_is_named_on_the_page(app, tmp_path, engine):
    # an app of its own: moving the round's deadlines would close the shared one
    own = _panel_app(tmp_path, engine, "sqlite")
    try:
        self_submit(own, "gucun", SCHEME, {})
        rid = round_of(own, SCHEME)
        admin = actor(own, "admin")
        ctx = own.extensions["scoring"]
        for name, when in (("self_deadline", datetime(2020, 1, 1, tzinfo=CHINA)),
                           ("review_deadline", datetime(2020, 2, 1, tzinfo=CHINA))):  # fmt: skip
            rounds.extend_deadline(ctx, admin, rid, name, when, "测试截止")
        client = _client(own, "reviewer")
        closed = _enter(client, own, "gucun", "1", "8", "截止后才打分")
        assert closed.status_code == 423, closed.text
        assert "评审截止时间" in closed.text and "截止后才打分" in closed.text
        assert 'value="8"' in _section(closed.text, "1")
    finally:
        own.extensions["scoring"].db.engine.dispose()


@pytest.mark.e2e
def test_in_chromium_two_reviewers_mark_and_the_admin_reads_the_mean(tmp_path, engine):
    """Clause 1 of a panel of two: each reviewer enters their mark on the page (the second one
    blind until theirs is in), the admin completes the review, computes the official score on
    the unit's page and reads the mean on the score page and every mark on the panel's page."""
    from tools.browser import chromium, serve, sign_out
    from tools.browser import sign_in as browser_sign_in

    from .test_browser import _browser_available

    _browser_available()
    own = _panel_app(tmp_path, engine, "sqlite", reviewers_of_clause_1=2)
    try:
        self_submit(own, "gucun", SCHEME, {})
        with serve(own) as site, chromium() as browser:
            page = browser.new_page()
            dialogs: list = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            marks = f"{site}{_page(own, 'gucun')}"

            # the first reviewer: from the unit's page to the panel's page, their mark
            browser_sign_in(page, site, "reviewer", PASSWORD)
            page.goto(f"{site}/admin/units/gucun")
            page.click(f"#scheme-{SCHEME} a.marks-link")
            page.wait_for_load_state()
            assert page.url == marks
            clause = page.locator("#clause-1")
            assert "已收到 0/2 份" in clause.inner_text()
            clause.locator("input[name=points]").fill("8")
            clause.locator("textarea[name=reason]").fill("措施到位")
            clause.locator("button[type=submit]").click()
            page.wait_for_load_state()
            assert "已收到1份，共需2份" in page.inner_text(".flash.ok")
            sign_out(page)

            # the second: blind, then theirs, then both
            browser_sign_in(page, site, "reviewer2", PASSWORD)
            page.goto(marks)
            clause = page.locator("#clause-1")
            assert "录入您自己的打分后才能看到其他评审的打分" in clause.inner_text()
            assert "措施到位" not in clause.inner_text()
            clause.locator("input[name=points]").fill("9.5")
            clause.locator("textarea[name=reason]").fill("有亮点")
            clause.locator("button[type=submit]").click()
            page.wait_for_load_state()
            clause = page.locator("#clause-1")
            assert "已收到 2/2 份" in clause.inner_text()
            assert clause.locator("tr.mark").count() == 2
            sign_out(page)

            # the admin: 完成评审, 计算正式得分 on the unit's page, the mean on the score page
            browser_sign_in(page, site, "admin", PASSWORD)
            page.goto(f"{site}/admin/units/gucun")
            page.click(f"#steps-{SCHEME} button:has-text('完成评审')")
            page.wait_for_load_state()
            page.click(f"#steps-{SCHEME} button:has-text('计算正式得分')")
            page.wait_for_load_state()
            assert f"/admin/units/gucun/schemes/{SCHEME}/score" in page.url
            assert page.inner_text("#total") == "8.75"  # (8 + 9.5) / 2; clause 2 has no marks
            assert page.locator("[data-kind=official]").count() >= 1
            main = page.inner_text("main")
            assert "8.75" in main and "专家乙" in main
            page.click("a.marks-link")
            page.wait_for_load_state()
            clause = page.locator("#clause-1")
            text = clause.inner_text()
            assert "措施到位" in text and "有亮点" in text and "专家乙" in text
            assert clause.locator("input[name=points]").count() == 0  # reviewed: no more marks
            page.close()
            assert dialogs == []
    finally:
        own.extensions["scoring"].db.engine.dispose()
