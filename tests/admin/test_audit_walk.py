"""Issue 11's done-when, in real headless Chromium, as the auditor: open a unit's official score,
read one fact's provenance and its history, replay the score (已复现), open the rule version it was
computed under with its publication record and files, replay the round's official scores as a
background job and read its report, filter the journal to that unit and export it, and
download the score's workbook (its 事实来源 sheet) and, from the round's board, the round's audit
workbook, whose cells are checked with openpyxl."""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service import operations, rounds
from service.db import Round, Score
from tools.browser import chromium, serve, sign_in

from ..apps import make_app
from ..conftest import RULES
from .conftest import PASSWORD, JobWorker, actor
from .test_browser import _browser_available

pytestmark = pytest.mark.e2e

SCHEME = "gumeilu-2022"
SELF = {"leader_evaluation_score": 4, "featured_quality_score": 30,
        "featured_quality_reason": "特色工作扎实"}  # fmt: skip


@pytest.fixture
def desk(tmp_path, engine):
    """顾村镇 self-assessed by its submitter (v1, with evidence), one fact corrected by the reviewer
    with its reason (v2), the review completed and the official score computed."""
    _browser_available()
    app, _tokens = make_app(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}", engine, RULES)
    ctx = app.extensions["scoring"]
    submitter, reviewer = actor(app, "submitter"), actor(app, "reviewer")
    with ctx.db.transaction() as s:
        rid = s.scalar(select(Round.id).where(Round.scheme_id == SCHEME))
    operations.submit(ctx, submitter, "gucun", SCHEME, "self", SELF,
                      {"featured_quality_score": ["附件1：特色工作总结"]}, "", None)  # fmt: skip
    operations.submit(ctx, reviewer, "gucun", SCHEME, "review",
                      {**SELF, "featured_quality_score": 36}, {}, "", '"1"',
                      {"featured_quality_score": "现场核查后上调"})  # fmt: skip
    rounds.complete_review(ctx, reviewer, rid, "gucun")
    score = operations.compute_score(ctx, reviewer, "gucun", SCHEME, kind="official")
    yield app, rid, score.id
    ctx.db.engine.dispose()


def _text(locator) -> str:
    return re.sub(r"\s+", " ", locator.inner_text()).strip()


def test_the_auditor_traces_replays_filters_exports_and_downloads(desk, tmp_path):
    app, rid, score_id = desk
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        stored = s.get(Score, score_id)
        total, rules_version = Decimal(stored.trace["total"]), stored.rules_version
    with serve(app) as site, chromium() as browser, JobWorker(app):
        page = browser.new_page()
        sign_in(page, site, "auditor", PASSWORD)

        # the unit's official score, and one fact's provenance beside it
        page.goto(f"{site}/admin/units/gucun/schemes/{SCHEME}/score")
        assert "正式得分" in _text(page.locator("#kind"))
        fact = page.locator('li.prov[data-fact="featured_quality_score"]')
        words = _text(fact)
        for part in ("36", "第2版", "评审", "reviewer", "现场核查后上调", "共改动 1 次"):
            assert part in words, (part, words)
        assert "第1版" in _text(page.locator('li.prov[data-fact="leader_evaluation_score"]'))
        # its workbook carries the same provenance in a sheet 事实来源
        with page.expect_download() as download:
            page.click("a.btn:has-text('下载 Excel')")
        saved = tmp_path / "score.xlsx"
        download.value.save_as(saved)
        sources = {
            str(r[1]).rsplit("（", 1)[-1].rstrip("）"): r
            for r in load_workbook(saved)["事实来源"].iter_rows(min_row=4, values_only=True)
            if isinstance(r[0], int)
        }
        row = sources["featured_quality_score"]
        assert (row[2], row[4], row[5], row[7], row[9]) == (36, "第2版", "评审", "reviewer",
                                                             "现场核查后上调")  # fmt: skip
        assert sources["leader_evaluation_score"][4:6] == ("第1版", "自评")

        # one click: that fact's whole history across versions
        fact.locator("a.prov-history").click()
        page.wait_for_load_state()
        rows = page.locator("#fact-history tbody tr")
        assert rows.count() == 2
        assert "现场核查后上调" in _text(rows.nth(0)) and "reviewer" in _text(rows.nth(0))
        assert "附件1：特色工作总结" in _text(rows.nth(1)) and "自评" in _text(rows.nth(1))

        # 复核: the score recomputed under its own rules version and facts
        page.goto(f"{site}/admin/units/gucun/schemes/{SCHEME}/score")
        page.click("#replay")
        page.wait_for_load_state()
        assert _text(page.locator("#replay-result")) == "已复现"
        assert Decimal(_text(page.locator("#replayed-total"))) == total.quantize(Decimal("0.01"))

        # the rule version this score was computed under, from the replay, and its publication
        # record: imported from the rules directory at the start, still served, pinned by the round
        page.click("#replay-version")
        page.wait_for_load_state()
        assert _text(page.locator("#version-hash")) == rules_version
        assert page.locator("#version-origin").get_attribute("data-origin") == "directory"
        assert "使用中" in _text(page.locator("#version-serving"))
        [imported] = page.locator("#served tbody tr").all()
        assert imported.get_attribute("data-how") == "start"
        assert "（启动）" in _text(imported) and "仍在使用" in _text(imported)
        assert page.locator(f"#version-rounds li[data-round='{rid}']").count() == 1
        assert page.locator("#version-clauses section.clause").count() == len(
            ctx.registry.by_version(rules_version).clauses
        )
        # and the same page from the score page's link, its files as a zip of the stored bytes
        page.goto(f"{site}/admin/units/gucun/schemes/{SCHEME}/score")
        page.click("#rules-version")
        page.wait_for_load_state()
        assert _text(page.locator("#version-hash")) == rules_version
        with page.expect_download() as download:
            page.click("#version-zip")
        with zipfile.ZipFile(download.value.path()) as archive:
            inside = {n.split("/", 1)[1]: archive.read(n).decode() for n in archive.namelist()}
        assert inside == ctx.registry.by_version(rules_version).texts

        # the round's official scores replayed as a background job: progress, then the report
        page.goto(f"{site}/admin/audit")
        page.click(f"tr[data-round='{rid}'] button.replay-round")
        page.wait_for_load_state()
        page.wait_for_selector("#job-state:has-text('已完成')", timeout=30_000)
        page.click("#replay-report-link")
        page.wait_for_load_state()
        assert "已复现 1" in _text(page.locator("#replay-counts"))

        # the journal, filtered to the unit, and its export
        page.goto(f"{site}/admin/journal")
        page.fill("#f-unit", "gucun")
        page.click("#f-apply")
        page.wait_for_load_state()
        units = page.locator("#journal tbody tr").evaluate_all(
            "rows => rows.map(r => r.getAttribute('data-unit'))"
        )
        assert units and set(units) == {"gucun"}
        assert "scores.replay" in _text(page.locator("#journal"))
        with page.expect_download() as download:
            page.click("#journal-export")
        saved = tmp_path / "journal.xlsx"
        download.value.save_as(saved)
        ws = load_workbook(saved)["操作日志"]
        exported = [r for r in ws.iter_rows(min_row=3, values_only=True) if isinstance(r[0], int)]
        assert len(exported) >= len(units) and {r[6] for r in exported} == {"gucun"}
        assert any(r[4] == "scores.replay" and r[2] == "auditor" for r in exported)

        # the round's audit workbook, straight from the round's board (the 审计 page links the same)
        page.goto(f"{site}/admin/audit")
        listed = page.locator(f"tr[data-round='{rid}'] a.audit-xlsx").get_attribute("href")
        page.goto(f"{site}/admin/rounds/{rid}")
        assert page.locator("#audit-workbook").get_attribute("href") == listed
        with page.expect_download() as download:
            page.click("#audit-workbook")
        saved = tmp_path / "audit.xlsx"
        download.value.save_as(saved)
    book = load_workbook(saved)
    summary = next(
        r for r in book["汇总"].iter_rows(min_row=4, values_only=True) if r[1] == "顾村镇"
    )
    assert summary[3] == score_id and Decimal(str(summary[4])) == total
    assert (summary[6], summary[7], summary[11]) == (rules_version, "第2版", "已复现")
    facts = {
        r[2]: r for r in book["事实来源"].iter_rows(min_row=4, values_only=True) if r[0] == "顾村镇"
    }
    assert facts["featured_quality_score"][3:9] == (36, "第2版", "评审", "reviewer",
                                                   facts["featured_quality_score"][7],
                                                   "现场核查后上调")  # fmt: skip
    assert facts["leader_evaluation_score"][4:7] == ("第1版", "自评", "submitter")
    replayed = next(
        r for r in book["复核"].iter_rows(min_row=4, values_only=True) if r[1] == "顾村镇"
    )
    assert replayed[2] == score_id and replayed[5] == "已复现"
    assert book["汇总"].oddFooter.right.text.startswith("审核人")
