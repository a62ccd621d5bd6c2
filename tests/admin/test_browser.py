"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the
app served on 127.0.0.1 by werkzeug in a background thread.

顾村镇's submitter signs in, enters its 表B.1 self-assessment with one deliberate error, sees the error
beside the field with everything typed kept, corrects it and submits; a reviewer completes the review
and computes the official score on the unit's page, reads the explained score, opens the ranking,
downloads the workbook and checks its cells; then the unit's submitter is refused another unit's page
with the 403 page.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from admin import export, forms
from service import operations as ops
from service.access import Actor
from service.cli import read_facts_file
from service.config import PROJECT_ROOT
from service.domain.numbers import display
from service.domain.scoring import score_units
from service.engine.oracle import OracleMatcher
from tools.browser import CHROMIUM, chromium, serve, sign_in, sign_out

from .conftest import PASSWORD, SCHEME, official

# a real server and headless Chromium: `pytest -m "not e2e"` leaves it out
pytestmark = pytest.mark.e2e

EXAMPLES = read_facts_file(PROJECT_ROOT / "examples" / f"{SCHEME}.yaml")


def _browser_available() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "Playwright for Python is not installed (pip install -e '.[test]')"
    else:
        if os.path.exists(CHROMIUM):
            return
        why = f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)"
    if os.environ.get("CI"):
        pytest.fail(why + ": CI must run the browser tests")
    pytest.skip(why)


@pytest.fixture(scope="module")
def site(app):
    """The app on 127.0.0.1 with 大场镇 and 宝山工业园区 already reviewed, with official scores."""
    _browser_available()
    for code, name in (("dachang", "大场镇"), ("bsip", "宝山工业园区")):
        official(app, code, SCHEME, EXAMPLES[name])
    with serve(app) as base:
        yield base


@pytest.fixture(scope="module")
def browser(site):
    with chromium() as context:
        yield context


def _expected():
    scheme_units = {name: EXAMPLES[name] for name in ("顾村镇", "大场镇", "宝山工业园区")}
    from service.rulefiles.loader import load_all

    scheme = load_all(PROJECT_ROOT / "rules")[SCHEME]
    results = score_units(scheme, scheme_units, OracleMatcher(), "oracle")
    totals = {r.unit: r.total for r in results}
    order = sorted(totals, key=lambda u: -totals[u])
    return scheme, totals, order


def test_enter_facts_score_rank_download_and_403(app, site, browser, tmp_path):
    scheme, totals, order = _expected()
    layout = forms.layout(scheme)
    facts = EXAMPLES["顾村镇"]
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())

    # the unit's submitter signs in: their own unit's page
    sign_in(page, site, "submitter", PASSWORD)
    assert page.url.endswith("/admin/units/gucun")
    assert "submitter" in page.inner_text("header")

    # enter the facts, with one deliberate error
    page.goto(f"{site}/admin/units/gucun/schemes/{SCHEME}/facts")
    assert page.title().startswith("顾村镇")
    for name, value in facts.items():
        f = layout.fields[name]
        if f.input == "boolean":
            page.check(f"input[name='f.{name}'][value='{forms.to_text(value)}']")
        else:
            page.fill(f"#{f.dom_id}", forms.to_text(value))
    page.fill("#f-org_leadership_score", "3.5")  # the range is 0 to 3
    page.fill("#f-four_brands_score-ev", "宝山区品牌培育名单（2022）")
    page.fill("#reason", "年度自评")
    page.click("button[value=self]")
    page.wait_for_load_state()

    box = page.locator("#f-org_leadership_score-box")
    error = box.locator(".field-error")
    assert error.count() == 1
    assert "3.5超出范围，应为0到3之间的数值" in error.inner_text()
    assert page.locator(".field-error").count() == 1  # only that field is marked
    assert page.input_value("#f-org_leadership_score") == "3.5"  # the wrong value as typed
    for name, value in facts.items():  # and everything else as typed
        f = layout.fields[name]
        if name == "org_leadership_score":
            continue
        if f.input == "boolean":
            assert page.is_checked(f"input[name='f.{name}'][value='{forms.to_text(value)}']"), name
        else:
            assert page.input_value(f"#{f.dom_id}") == forms.to_text(value), name
    assert page.input_value("#f-four_brands_score-ev") == "宝山区品牌培育名单（2022）"
    assert page.input_value("#reason") == "年度自评"
    assert (
        ops.history(app.extensions["scoring"], Actor(0, "x", "admin", None), "gucun", SCHEME) == []
    )

    # correct it and submit
    page.fill("#f-org_leadership_score", str(facts["org_leadership_score"]))
    page.click("button[value=self]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/admin/units/gucun/schemes/{SCHEME}/score")
    assert "已提交第1版（自评）" in page.inner_text(".flash.ok")
    assert "已提交自评" in page.inner_text("#cycle")
    sign_out(page)

    # the reviewer completes the review and computes the official score on the unit's page
    sign_in(page, site, "reviewer", PASSWORD)
    assert page.url.endswith("/admin/")
    page.goto(f"{site}/admin/units/gucun")
    page.click(f"#steps-{SCHEME} button:has-text('完成评审')")
    page.wait_for_load_state()
    assert "已完成评审" in page.inner_text(".flash.ok")
    assert "已评审" in page.inner_text(f"#scheme-{SCHEME}")
    page.click(f"#steps-{SCHEME} button:has-text('计算正式得分')")
    page.wait_for_load_state()
    assert "正式得分" in page.inner_text("#kind")
    assert page.inner_text("#total") == display(totals["顾村镇"])
    rank = order.index("顾村镇") + 1
    assert f"第{rank}名" in page.inner_text("#grade")
    assert "依据第1版提交" in page.inner_text(".scorehead")
    assert scheme.version[:12] in page.inner_text(".scorehead")
    clause = page.locator("#c-1\\.1\\.1")
    assert "本项得3分（满分3分）" in clause.inner_text()
    incident = page.locator(
        '[id="c-减分1"]'
    ).inner_text()  # the deduction, and the veto of 优秀 above
    assert "本项扣5分" in incident
    assert "不得评优秀" in page.inner_text("main")

    # the ranking
    page.goto(f"{site}/admin/schemes/{SCHEME}/ranking")
    rows = page.locator("#ranking tbody tr")
    assert rows.count() == 3
    for i, unit in enumerate(order):
        cells = rows.nth(i).locator("td")
        assert cells.nth(1).inner_text() == unit
        assert cells.nth(2).inner_text() == display(totals[unit])
    assert page.locator("svg rect").count() >= 3 * 5  # a bar per unit, a segment per category
    labels = page.locator("svg > text").all_text_contents()
    assert all(labels.count(unit) == 1 for unit in order)  # every unit's bar is labelled

    # the workbook
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "ranking.xlsx"
    download.value.save_as(path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["排名", *order]
    ws = wb["排名"]
    header = [c.value for c in ws[4]]
    # each top-level category's subtotal between 总分 and 名次
    admin = Actor(0, "x", "admin", None)
    ranking = ops.ranking(app.extensions["scoring"], admin, SCHEME, with_traces=True)
    cats = [t for _id, t in export.top_categories(ranking["traces"])]
    assert header == ["序号", "单位", "总分", *cats, "名次", "等级", "说明", "状态"]
    for i, unit in enumerate(order):
        row = dict(zip(header, (c.value for c in ws[5 + i])))
        assert row["序号"] == i + 1 and row["单位"] == unit
        assert Decimal(str(row["总分"])) == totals[unit] and row["名次"] == i + 1
        assert row["等级"].startswith("A")  # all three are within the top 6
    sheet = wb["顾村镇"]
    assert [c.value for c in sheet[4]] == [
        "序号",
        "考核项目",
        "分值",
        "自评",
        "评审",
        "差异",
        "说明",
    ]
    clause_rows = {r[1]: r for r in sheet.iter_rows(min_row=5, values_only=True) if r[1]}
    first = clause_rows["1.1.1 加强组织领导，落实工作责任，单位领导出席区质量工作会议"]
    assert first[0] == 1 and first[2] == 3 and first[4] == 3 and "评审给分3分" in first[6]
    assert first[3] == 3 and first[5] == 0  # the review kept what the unit assessed
    assert clause_rows["一、质量环境"][2] == 10
    total_row = clause_rows["合计"]
    assert Decimal(str(total_row[4])) == totals["顾村镇"]
    numbered = [r[0] for r in clause_rows.values() if isinstance(r[0], int)]
    assert numbered == list(range(1, len(scheme.clauses) + 1))  # every clause, numbered 序号 1..n

    # a unit's submitter cannot open another unit's page
    sign_out(page)
    sign_in(page, site, "submitter", PASSWORD)
    assert page.url.endswith("/admin/units/gucun")
    for path in ("/admin/units/dachang", f"/admin/units/dachang/schemes/{SCHEME}/score"):
        response = page.goto(site + path)
        assert response.status == 403
        assert "没有权限" in page.inner_text("h1")
        assert "单位填报人只能访问本单位的数据" in page.inner_text("main")
    page.close()


def test_enter_in_a_field_keeps_the_draft_which_another_browser_finds(app, site, browser):
    """Issue 9: Enter in a field used to post the form's first button, 丢弃草稿; now it saves the
    draft, the draft is on the server (another browser, after sign-out, shows it), and discarding
    asks on a page of its own."""
    scheme = "zhenxing-2010"
    rate = forms.layout(app.extensions["scoring"].registry.get(scheme)).fields["inspection_rate"]
    field = f"#{rate.dom_id}"
    facts = f"{site}/admin/units/gucun/schemes/{scheme}/facts"
    browser.clear_cookies()  # whoever an earlier test left signed in
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, site, "submitter", PASSWORD)
    page.goto(facts)
    page.fill(field, "96.5")
    page.click("button[value=draft]")
    page.wait_for_load_state()
    assert "草稿已保存" in page.inner_text(".flash.ok")
    assert "正在显示您于" in page.inner_text("main")

    # with the draft shown, change a field and press Enter in it
    page.fill(field, "97")
    with page.expect_navigation():
        page.press(field, "Enter")
    assert "草稿已保存" in page.inner_text(".flash.ok")
    assert page.input_value(field) == "97"
    assert "正在显示您于" in page.inner_text("main")
    sign_out(page)
    page.close()

    # as another browser would come: no cookie of the first session (one Playwright per process,
    # so the same browser, its cookies cleared; the pages keep nothing else in the browser)
    browser.clear_cookies()
    page = browser.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, site, "submitter", PASSWORD)
    page.goto(facts)
    assert page.input_value(field) == "97"
    # 丢弃草稿 asks first; declining keeps the draft
    page.click("#discard-draft")
    page.wait_for_load_state()
    assert "丢弃后无法恢复" in page.inner_text("main")
    page.click("text=不丢弃，继续填写")
    page.wait_for_load_state()
    assert page.input_value(field) == "97"
    page.click("#discard-draft")
    page.wait_for_load_state()
    page.click("#confirm-discard")
    page.wait_for_load_state()
    assert "草稿已丢弃" in page.inner_text(".flash.ok")
    assert page.input_value(field) == ""
    page.close()
    assert dialogs == []  # nothing needed a script dialog
