"""The publication outputs (issue 9): the ranking workbook and the printed pages carry the round,
the rules version, each unit's stage, the category subtotals, the unit's self-assessment (自评)
beside the review (评审) per clause, page numbers, print date and the sign-off line; and the grade
reads the same in every output.

Three units of 表B.1 through the cycle to official scores: 大场镇 (its self-assessment claimed 2
points for 1.1.2, the reviewer corrected the fact to what earns 1; 优秀), 顾村镇 (a major quality
incident: 优秀 barred, A) and 宝山工业园区 (the incident fact left out: 优秀待定).  One app per
module and database (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import html
import io
import re
import shutil
import unicodedata
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from admin import export
from admin.present import CST
from service import operations as ops
from service import panel, rounds, selfassessment
from service.cli import read_facts_file
from service.config import PROJECT_ROOT
from service.db import Score, User
from service.exceptions import Forbidden

from ..api.conftest import DATABASES
from ..conftest import FIXTURES
from .conftest import SCHEME, actor, make_app, official, round_of, self_submit, sign_in

EXAMPLES = read_facts_file(PROJECT_ROOT / "examples" / f"{SCHEME}.yaml")
FACT = "policy_funding_score"  # 1.1.2: the fact the reviewer corrects
GRADES = {"大场镇": "A（优秀）", "顾村镇": "A", "宝山工业园区": "A（优秀待定）"}
CODES = {"大场镇": "dachang", "顾村镇": "gucun", "宝山工业园区": "bsip"}
SIGN_OFF = "审核人：________ 日期：________"


@pytest.fixture(scope="module")
def published(app):
    """The three units with official scores; 大场镇's reviewer changed one fact."""
    ctx = app.extensions["scoring"]
    reviewer = actor(app, "reviewer")
    claimed = {**EXAMPLES["大场镇"], FACT: 2}
    assert EXAMPLES["大场镇"][FACT] == 1
    self_submit(app, "dachang", SCHEME, claimed)
    ops.submit(ctx, reviewer, "dachang", SCHEME, "review", dict(EXAMPLES["大场镇"]), {},
               "现场核查：经费落实不全，下调", '"1"')  # fmt: skip
    rounds.complete_review(ctx, reviewer, round_of(app, SCHEME), "dachang")
    ops.compute_score(ctx, reviewer, "dachang", SCHEME, kind="official")
    official(app, "gucun", SCHEME, EXAMPLES["顾村镇"])
    missing = {k: v for k, v in EXAMPLES["宝山工业园区"].items() if k != "major_quality_incident"}
    official(app, "bsip", SCHEME, missing)
    ranking = ops.ranking(ctx, reviewer, SCHEME, with_traces=True)
    assert {e["unit"] for e in ranking["entries"]} == set(GRADES)
    return ranking


def _client(app, username="reviewer"):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _workbook(app, username="reviewer"):
    book = _client(app, username).get(f"/admin/schemes/{SCHEME}/ranking.xlsx")
    assert book.status_code == 200, book.text[:500]
    return load_workbook(io.BytesIO(book.data))


def _rows(ws, first=5):
    """The data rows under the header of row ``first - 1``, as dicts by header."""
    header = [c.value for c in ws[first - 1]]
    return [dict(zip(header, r)) for r in ws.iter_rows(min_row=first, values_only=True) if r[1]]


def _clause_id(trace, fact):
    return next(c["id"] for c in trace["clauses"] if fact in (c.get("facts") or {}))


def test_the_ranking_sheet_has_the_category_subtotals_after_the_total(app, published):
    ws = _workbook(app)["排名"]
    header = [c.value for c in ws[4]]
    some = next(iter(published["traces"].values()))
    top = [c for c in some["categories"] if c["parent"] is None]
    assert len(top) >= 3
    titles = [t for _id, t in export.top_categories(published["traces"])]
    assert header[2] == "总分" and header[3 : 3 + len(top)] == titles
    assert header[3 + len(top) :] == list(export.RANK_HEADER[3:])
    rows = {r["单位"]: r for r in _rows(ws)}
    for e in published["entries"]:
        trace = published["traces"][e["unit_code"]]
        got = rows[e["unit"]]
        for cat, title in zip(top, titles, strict=True):
            assert Decimal(str(got[title])) == Decimal(cat_points(trace, cat["id"])), title
        assert Decimal(str(got["总分"])) == Decimal(e["total"])
        assert got["状态"] == "已评审"
    # the round (title, year, stage) and the rules version, as before
    rnd = published["round"]
    assert rnd["title"] in ws["A2"].value and "2026年度" in ws["A2"].value
    assert rnd["stage_words"] in ws["A2"].value and published["version"][:12] in ws["A2"].value


def cat_points(trace, cid):
    return next(c["points"] for c in trace["categories"] if c["id"] == cid)


def test_the_unit_sheet_sets_the_self_assessment_beside_the_review(app, published):
    wb = _workbook(app)
    ws = wb["大场镇"]
    assert [c.value for c in ws[4]] == list(export.COMPARED_HEADER)
    trace = published["traces"]["dachang"]
    clause = _clause_id(trace, FACT)
    rows = {str(r["考核项目"]).split(" ")[0]: r for r in _rows(ws)}
    changed = rows[clause]
    # what the unit claimed (the 2 points its fact earns) beside what the review decided
    assert (changed["自评"], changed["评审"], changed["差异"]) == (2, 1, -1)
    own = ops.evaluate(
        app.extensions["scoring"], actor(app, "reviewer"), SCHEME, {**EXAMPLES["大场镇"], FACT: 2}
    )
    assert Decimal(str(rows["合计"]["自评"])) == own.total
    assert Decimal(str(rows["合计"]["评审"])) == Decimal(trace["total"])
    assert Decimal(str(rows["合计"]["差异"])) == Decimal(trace["total"]) - own.total == -1
    untouched = [r for k, r in rows.items() if k != clause and isinstance(r["序号"], int)]
    assert untouched and all(r["差异"] == 0 for r in untouched)
    # the unit's state and the round in the unit sheet too
    info = ws["A2"].value
    assert "状态：已评审" in info and published["round"]["title"] in info and "2026年度" in info
    assert "自评 第1版提交" in info and "提交版本 第2版" in info
    # a unit the review did not change: no difference anywhere
    same = {str(r["考核项目"]).split(" ")[0]: r for r in _rows(wb["顾村镇"])}
    assert all(r["差异"] == 0 for r in same.values() if r["差异"] is not None)


def test_the_self_assessed_points_are_computed_not_stored(app, published):
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        before = s.scalar(select(func.count()).select_from(Score))
    own = selfassessment.self_assessed(ctx, actor(app, "editor"), SCHEME)
    with ctx.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Score)) == before
    assert set(own) == {"dachang", "gucun", "bsip"}
    clause = _clause_id(published["traces"]["dachang"], FACT)
    assert own["dachang"].version == 1 and own["dachang"].clauses[clause] == 2
    # a unit's submitter reads its own unit only, as with its scores
    submitter = actor(app, "submitter")
    assert set(selfassessment.self_assessed(ctx, submitter, SCHEME, "gucun")) == {"gucun"}
    with pytest.raises(Forbidden):
        selfassessment.self_assessed(ctx, submitter, SCHEME)
    with pytest.raises(Forbidden):
        selfassessment.self_assessed(ctx, submitter, SCHEME, "dachang")


def test_every_sheet_prints_page_numbers_print_date_and_the_sign_off(app, published):
    wb = _workbook(app)
    assert wb.sheetnames[0] == "排名" and set(wb.sheetnames[1:]) == set(GRADES)
    for ws in wb.worksheets:
        assert ws.oddFooter.center.text == "第 &P 页，共 &N 页", ws.title
        assert ws.oddFooter.left.text == "打印日期：&D", ws.title
        assert ws.oddFooter.right.text == SIGN_OFF, ws.title
        assert published["round"]["title"] in ws.oddHeader.center.text, ws.title
        assert published["version"][:12] in ws.oddHeader.center.text, ws.title
        last = max(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value is not None)
        assert ws.cell(last, 1).value == SIGN_OFF, ws.title
        assert ws.print_title_rows == "$4:$4"  # the header row on every printed page
    # the unit's own workbook too (its official score: 自评 beside 评审)
    book = _client(app).get(f"/admin/units/dachang/schemes/{SCHEME}/score.xlsx")
    ws = load_workbook(io.BytesIO(book.data)).active
    assert [c.value for c in ws[4]] == list(export.COMPARED_HEADER)
    assert ws.oddFooter.right.text == SIGN_OFF and ws.oddFooter.center.text == "第 &P 页，共 &N 页"
    assert "状态：已评审" in ws["A2"].value


def test_a_header_cannot_be_turned_into_codes_by_a_name():
    # "&" starts a code in a print header (&P, &D): a unit's own "&" is doubled, and it is cut short
    assert export._header_text("A&B镇") == "A&&B镇"
    assert len(export._header_text("长" * 300)) == 80


def _page_grades(text):
    table = text.split('id="ranking"')[1].split("</table>")[0]
    out = {}
    for row in table.split("<tr>")[1:]:
        unit = re.search(r"<a href=\"[^\"]+\">([^<]+)</a>", row)
        grade = re.search(r"data-grade[^>]*>([^<]+)<", row)
        if unit and grade:
            out[unit.group(1)] = grade.group(1)
    return out


def test_the_grade_is_the_same_in_every_output(app, published):
    client = _client(app)
    page = html.unescape(client.get(f"/admin/schemes/{SCHEME}/ranking").text)
    assert _page_grades(page) == GRADES
    wb = _workbook(app)
    assert {r["单位"]: r["等级"] for r in _rows(wb["排名"])} == GRADES
    for name, grade in GRADES.items():
        assert re.search(r"等级：([^　]+)　", wb[name]["A2"].value).group(1) == grade, name
        score = html.unescape(client.get(f"/admin/units/{CODES[name]}/schemes/{SCHEME}/score").text)
        assert re.search(r"data-grade>([^<]+)<", score).group(1) == grade, name
        book = client.get(f"/admin/units/{CODES[name]}/schemes/{SCHEME}/score.xlsx")
        info = load_workbook(io.BytesIO(book.data)).active["A2"].value
        assert re.search(r"等级：([^　]+)　", info).group(1) == grade, name
    # and the barred unit is marked so on the page
    gucun = page.split('id="ranking"')[1].split("顾村镇")[1].split("</tr>")[0]
    assert "等级否决" in gucun


def test_the_printed_pages_carry_the_date_and_a_sign_off_block(app, published):
    client = _client(app)
    today = datetime.now(CST).strftime("%Y-%m-%d")
    rid = round_of(app, SCHEME)
    for url in (
        f"/admin/schemes/{SCHEME}/ranking",
        f"/admin/units/dachang/schemes/{SCHEME}/score",
        f"/admin/rounds/{rid}",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        text = html.unescape(page.text)
        block = text.split('id="sign-off"')[1].split("</div>")[0]
        assert 'class="printonly signoff"' in text.split('id="sign-off"')[0][-60:], url
        assert SIGN_OFF in block and f'打印日期：<span id="print-date">{today}</span>' in block
        # the page footer of every printed page: the date beside the page numbers
        assert f'@bottom-left {{ content: "打印日期：{today}"; }}' in text, url
    score = html.unescape(client.get(f"/admin/units/dachang/schemes/{SCHEME}/score").text)
    block = score.split('id="sign-off"')[1].split("</div>")[0]
    assert "已评审" in block and published["round"]["title"] in block
    css = client.get("/admin/static/admin.css").text
    assert 'counter(page) " 页，共 " counter(pages)' in css and SIGN_OFF in css
    assert ".printonly { display: none; }" in css


@pytest.mark.e2e
def test_chromium_prints_page_numbers_the_date_and_the_sign_off_on_every_page(app, published):
    """Printed by Debian's Chromium (to PDF, the page's own @page size and margins, as Ctrl+P
    does): every page's margin has 第 i 页，共 n 页, the print date and the sign-off line."""
    from pypdf import PdfReader

    from tools.browser import chromium, serve
    from tools.browser import sign_in as browser_sign_in

    from .test_browser import _browser_available

    _browser_available()
    today = datetime.now(CST).strftime("%Y-%m-%d")
    with serve(app) as base, chromium() as browser:
        page = browser.new_page()
        browser_sign_in(page, base, "reviewer", "secret")
        for url in (
            f"/admin/schemes/{SCHEME}/ranking",
            f"/admin/units/dachang/schemes/{SCHEME}/score",
        ):
            page.goto(base + url)
            pdf = PdfReader(io.BytesIO(page.pdf(prefer_css_page_size=True)))
            n = len(pdf.pages)
            assert n >= 1
            for i, printed in enumerate(pdf.pages, start=1):
                # the PDF's text maps some glyphs to radicals (⼈ for 人): NFKC reads them back
                # (and makes the full-width punctuation narrow); 页 comes out as the radical ⻚,
                # which has no such mapping
                text = unicodedata.normalize("NFKC", printed.extract_text())
                assert re.search(rf"第 {i} ., ?共 {n} .", text), (url, i, text[-300:])
                sign_off = unicodedata.normalize("NFKC", SIGN_OFF)
                assert sign_off in text and f"打印日期:{today}" in text, (url, i)


@pytest.fixture(params=DATABASES)
def panel_app(request, tmp_path, engine):
    """The fixture scheme tests/fixtures/panel (clause 1 scored by 3 reviewers), with 2 reviewers
    more than the seeded one."""
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "panel", rules / "panel")
    made = make_app(tmp_path, engine, rules, database=request.param)
    with made.extensions["scoring"].db.transaction() as s:
        s.add_all(
            User(username=f"expert{i}", display_name=f"专家{i}", role="reviewer", active=True)
            for i in (2, 3)
        )
    yield made
    made.extensions["scoring"].db.engine.dispose()


def test_a_units_submitter_sees_no_panel_marks_in_its_self_assessment_before_publication(
    panel_app,
):
    app, ctx = panel_app, panel_app.extensions["scoring"]
    rid = round_of(app, "panel")
    self_submit(app, "gucun", "panel", {})
    for who, points in (("reviewer", 6), ("expert2", 8), ("expert3", 10)):
        panel.enter_mark(ctx, actor(app, who), rid, "gucun", "1", points, "现场评审")
    rounds.complete_review(ctx, actor(app, "reviewer"), rid, "gucun")
    score = ops.compute_score(ctx, actor(app, "reviewer"), "gucun", "panel", kind="official")
    marked = next(c for c in score.trace["clauses"] if c["id"] == "1")
    assert Decimal(marked["points"]) > 0
    # the reviewer's workbook: the same marks on both sides, no difference the unit caused
    seen = selfassessment.self_assessed(ctx, actor(app, "reviewer"), "panel")["gucun"]
    assert seen.clauses["1"] == Decimal(marked["points"])
    # the unit's own: the marks are not public yet (as in its previews)
    own = selfassessment.self_assessed(ctx, actor(app, "submitter"), "panel", "gucun")["gucun"]
    assert own.clauses["1"] != seen.clauses["1"]
