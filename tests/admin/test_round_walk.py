"""One whole assessment round in real headless Chromium, through the pages alone (issue 9).

The admin opens a round; two units self-assess, one with an evidence file; the reviewer returns one
submission and its unit resubmits; two reviewers score the clause a panel scores; the reviewer
completes both reviews; the admin recomputes every official score as a background job and watches
its progress; publishes; a unit appeals and the reviewer answers with a 更正; the admin republishes
and, once the appeal window has closed, finalizes.  The final ranking page and workbook are checked
cell by cell against the scores worked out here from the rule files.

The scheme is tests/fixtures/round_walk: 工作落实 (a plan, 6 points; 2 points a meeting, at most 4)
and 专家评审 (two reviewers' mean, out of 10).
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from service.commands import add_user
from tools.browser import chromium, serve, sign_in, sign_out

from .. import evidence_samples
from ..apps import make_app
from ..conftest import FIXTURES
from .conftest import PASSWORD, JobWorker
from .test_browser import _browser_available

pytestmark = pytest.mark.e2e

SCHEME = "round_walk"


@pytest.fixture
def walk_app(tmp_path, engine):
    rules = tmp_path / "rules"
    rules.mkdir()
    import shutil

    shutil.copytree(FIXTURES / SCHEME, rules / SCHEME)
    app, _tokens = make_app(
        tmp_path, f"sqlite:///{tmp_path / 'walk.db'}", engine, rules, open_rounds=False
    )
    db = app.extensions["scoring"].db
    # a submitter for 大场镇 and a second reviewer, besides the seeded users
    add_user(db, "dachang-user", "submitter", "dachang", PASSWORD, min_password_length=6)
    add_user(db, "reviewer2", "reviewer", None, PASSWORD, min_password_length=6)
    yield app
    db.engine.dispose()


def _facts_page(site, code):
    return f"{site}/admin/units/{code}/schemes/{SCHEME}/facts"


def _score_page(site, code):
    return f"{site}/admin/units/{code}/schemes/{SCHEME}/score"


def _click(page, text):
    page.click(f"button:has-text('{text}')")
    page.wait_for_load_state()


def _self_assess(page, site, code, plan: bool, meetings: str, file=None, reason=None):
    page.goto(_facts_page(site, code))
    page.check(f"input[name='f.plan_done'][value='{'true' if plan else 'false'}']")
    page.fill("#f-meetings", meetings)
    if file is not None:
        page.set_input_files("#f-plan_done-file", files=[file])
    if reason is not None:
        page.fill("textarea[name=reason]", reason)
    page.click("button[value=self]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/admin/units/{code}/schemes/{SCHEME}/score"), (
        page.url,
        page.inner_text("main")[:800],
    )


def test_one_round_end_to_end_in_the_pages(walk_app, tmp_path):
    _browser_available()
    pdf = evidence_samples.pdf("年度质量工作计划")
    with serve(walk_app) as site, chromium() as context, JobWorker(walk_app):
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())

        # 1. the admin opens the round
        sign_in(page, site, "admin", PASSWORD)
        page.goto(f"{site}/admin/rounds")
        page.select_option("#scheme", SCHEME)
        page.fill("#year", "2026")
        for name, when in (
            ("self_deadline", "2099-01-10T17:00"),
            ("review_deadline", "2099-02-10T17:00"),
            ("publication_start", "2099-02-11T09:00"),
            ("appeal_deadline", "2099-02-18T17:00"),
            ("publication_end", "2099-02-20T17:00"),
        ):
            page.fill(f"#d-{name}", when)
        _click(page, "开启")
        assert "/admin/rounds/" in page.url, page.inner_text("main")[:800]
        board_url = page.url
        sign_out(page)

        # 2. two units self-assess; 顾村镇 with its plan as an evidence file
        sign_in(page, site, "submitter", PASSWORD)
        _self_assess(
            page, site, "gucun", True, "1",
            file={"name": "年度计划.pdf", "mimeType": "application/pdf", "buffer": pdf},
        )  # fmt: skip
        assert "已提交自评" in page.inner_text("main")
        sign_out(page)
        sign_in(page, site, "dachang-user", PASSWORD)
        _self_assess(page, site, "dachang", True, "3")
        sign_out(page)

        # 3. the reviewer returns 大场镇's submission; the unit reads why and resubmits
        sign_in(page, site, "reviewer", PASSWORD)
        page.goto(_score_page(site, "dachang"))
        page.fill("textarea[name=reason]", "会议纪要只有2份，请核对会议次数")
        _click(page, "退回")
        sign_out(page)
        sign_in(page, site, "dachang-user", PASSWORD)
        page.goto(_facts_page(site, "dachang"))
        assert "会议纪要只有2份，请核对会议次数" in page.inner_text("main")
        _self_assess(page, site, "dachang", True, "2", reason="按会议纪要更正为2次")
        sign_out(page)

        # 4. two reviewers score the panel clause of both units, each blind to the other
        marks = {
            "reviewer": {"gucun": "9", "dachang": "8"},
            "reviewer2": {"gucun": "7", "dachang": "6"},
        }
        for reviewer, by_unit in marks.items():
            sign_in(page, site, reviewer, PASSWORD)
            for code, points in by_unit.items():
                _enter_mark(page, board_url, code, points, f"{reviewer}现场评审")
            sign_out(page)

        # 5. the reviewer completes both reviews
        sign_in(page, site, "reviewer", PASSWORD)
        for code in ("gucun", "dachang"):
            page.goto(_score_page(site, code))
            _click(page, "完成评审")
        sign_out(page)

        # 6. the admin recomputes every official score as a background job and follows it
        sign_in(page, site, "admin", PASSWORD)
        page.goto(board_url)
        _click(page, "按本轮规则重算正式得分")
        assert "/admin/jobs/" in page.url, page.url
        page.wait_for_selector("text=已完成", timeout=30_000)
        assert "2" in page.inner_text("#job-done")

        # 7. publish
        page.goto(board_url)
        _click(page, "发布公示")
        assert "公示中" in page.inner_text("main")
        sign_out(page)

        # 8. 顾村镇 appeals clause 1 (a meeting was left out); the reviewer corrects it
        sign_in(page, site, "submitter", PASSWORD)
        page.goto(_score_page(site, "gucun"))
        page.click("a:has-text('申诉')")
        page.wait_for_load_state()
        page.click("details.clause summary:has-text('质量工作落实')")  # open clause 1's part
        page.fill("textarea[name='reason.1']", "漏报一次质量工作会议，附会议纪要")
        _click(page, "提交申诉")
        assert "申诉中" in page.inner_text("main")
        sign_out(page)
        sign_in(page, site, "reviewer", PASSWORD)
        page.goto(f"{board_url}/units/gucun/appeals")
        page.check("input[name=answer][value=correct]")
        page.click("summary:has-text('更正：改正本条款读取的事实')")
        page.fill("textarea[name=reason]", "经核对会议纪要，全年召开2次")
        page.fill("input[name='f.meetings']", "2")
        page.fill("input[name='r.meetings']", "会议纪要2份")
        _click(page, "提交答复")
        assert "已复核" in page.inner_text("main")
        sign_out(page)

        # 9. the admin republishes, closes the appeal window and finalizes
        sign_in(page, site, "admin", PASSWORD)
        page.goto(board_url)
        _click(page, "重新发布公示")
        for name, when in (
            ("self_deadline", "2020-01-10T17:00"),
            ("review_deadline", "2020-02-10T17:00"),
            ("publication_start", "2020-02-11T09:00"),
            ("appeal_deadline", "2020-02-18T17:00"),
        ):
            page.select_option("#deadline", name)
            page.fill("#new", when)
            page.fill("#why", "演练：公示期已结束")
            _click(page, "调整")
        _click(page, "定稿")
        assert "已定稿" in page.inner_text("main")

        # 10. the final ranking, on the page and in the workbook, cell by cell
        # 顾村镇: 6 + 2×2 (after the 更正) = 10, panel (9+7)/2 = 8 → 18 优秀
        # 大场镇: 6 + 2×2 = 10, panel (8+6)/2 = 7 → 17 合格
        page.goto(f"{site}/admin/schemes/{SCHEME}/ranking")
        text = page.inner_text("main")
        assert "顾村镇" in text and "大场镇" in text and "定稿" in text
        with page.expect_download() as download:
            page.click("a[href$='ranking.xlsx']")
        saved = Path(tmp_path) / "ranking.xlsx"
        download.value.save_as(saved)
        page.close()

    book = load_workbook(io.BytesIO(saved.read_bytes()))
    sheet = book["排名"]
    header = [c.value for c in sheet[4]]
    col = {name: header.index(name) for name in header if name}
    rows = {
        row[col["单位"]]: row
        for row in sheet.iter_rows(min_row=5, values_only=True)
        if row[col["单位"]] in ("顾村镇", "大场镇", "宝山工业园区")
    }
    gucun, dachang, bsip = rows["顾村镇"], rows["大场镇"], rows["宝山工业园区"]

    def cells(row, *names):
        return tuple(
            Decimal(str(row[col[n]])) if isinstance(row[col[n]], int | float) else row[col[n]]
            for n in names
        )

    names = ("总分", "工作落实", "专家评审", "名次", "等级", "状态")
    assert cells(gucun, *names) == (Decimal(18), Decimal(10), Decimal(8), 1, "优秀", "定稿")
    assert cells(dachang, *names) == (Decimal(17), Decimal(10), Decimal(7), 2, "合格", "定稿")
    assert bsip[col["总分"]] is None and bsip[col["等级"]] == "未填报"
    heading = " ".join(str(c.value) for c in sheet[2] if c.value)
    assert "已定稿" in heading
    # 顾村镇's own sheet: 自评 beside 评审 for clause 1 (its self-assessment said 1 meeting: 8;
    # reviewed after the appeal: 2 meetings, 10)
    unit = book["顾村镇"]
    uheader = next(
        [c.value for c in r] for r in unit.iter_rows(min_row=1, max_row=10) if r[0].value == "序号"
    )
    ucol = {name: uheader.index(name) for name in uheader if name}
    clause1 = next(
        r
        for r in unit.iter_rows(values_only=True)
        if r[ucol["考核项目"]] and "质量工作落实" in str(r[ucol["考核项目"]])
    )
    assert (clause1[ucol["自评"]], clause1[ucol["评审"]]) == (8, 10)


def _enter_mark(page, board_url, code, points, reason):
    """A reviewer's own mark for the panel clause (2) of a unit, on the unit's marks page: the
    other reviewer's mark is not shown before this one is in."""
    page.goto(f"{board_url}/units/{code}/clauses/2/marks")
    assert "已收到" in page.inner_text("main")
    page.fill("#points-2", points)
    page.fill("#reason-2", reason)
    _click(page, "录入打分")
    assert points in page.inner_text("main")
