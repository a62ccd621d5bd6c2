"""The yearly rules cycle in real headless Chromium, through the pages alone (issue 10's "done when").

An editor takes 古美路 2022 to a 2023 draft: copies it for 2023 on the rules page; changes two
clauses' points (4: 4 → 5, 6: 6 → 5) and their categories' subtotals; moves clause 4's threshold
(work information 10 → 12 a year: 古美路 has no bands, its thresholds are in ``when``); changes a
cap (clause 13's deaths part 3 → 4); removes clause 16 (its facts leave every scheme test) and adds
clause 19 with a test case; sees a failing test reported beside its case (clause 4's "工作信息9篇"
and the scheme test "有加分有扣分") and fixes it; reads the comparison; runs the impact preview
over the three units whose 2022 facts were reviewed and scored; proposes. A second admin approves
for 2023 and opens a 2023 round on the rounds page, which takes the approved version, and replays
(复核) a 2022 score on its score page: reproduced under the 2022 version. The draft's zip,
downloaded from its page, passes ``scoring check`` and ``scoring test`` (subprocesses).

Outside the browser, through the service layer: the setup (the three units' 2022 facts taken to
official scores), then a new 2023 submission scored officially under the 2023 version, and every
2022 score replayed exactly under its own version.

The changes are those of tests/unit/test_rule_edits.py's ``_gumeilu_2023`` (the same edits made
there through service.rulefiles.edit), so every expected total is worked out there.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from decimal import Decimal

import pytest

from service import audit, releases, rounds
from service import operations as ops
from service.cli import read_facts_file
from service.commands import add_user
from service.config import PROJECT_ROOT
from service.rulefiles.loader import version_of
from tools.browser import chromium, serve, sign_in, sign_out

from ..apps import make_app
from ..conftest import RULES
from .conftest import PASSWORD, JobWorker, actor, official
from .test_browser import _browser_available

pytestmark = pytest.mark.e2e

GUMEILU = RULES / "minhang-gumeilu" / "2022"
UNITS = {"示例街道甲": "gucun", "示例街道乙": "dachang", "示例街道丙": "bsip"}


@pytest.fixture
def walk_app(tmp_path, engine):
    app, _tokens = make_app(tmp_path, f"sqlite:///{tmp_path / 'walk.db'}", engine, RULES)
    add_user(app.extensions["scoring"].db, "admin2", "admin", None, PASSWORD,
             min_password_length=6)  # fmt: skip
    yield app
    app.extensions["scoring"].db.engine.dispose()


def _example_facts() -> dict[str, dict]:
    return read_facts_file(PROJECT_ROOT / "examples" / "gumeilu-2022.yaml")


def _save(page, button="#save-clause"):
    page.click(button)
    page.wait_for_load_state()


def _fill(page, values: dict) -> None:
    for name, value in values.items():
        page.fill(f"[name='{name}']", value)


def _test_number(page, name: str) -> str:
    """The row number of a clause's test case in blockforms' table (``t.<n>.name``)."""
    field = page.locator(f"input[name$='.name'][value='{name}']").first.get_attribute("name")
    return field.split(".")[1]


def _scheme_test_fact(page, fact: str, value: str, cases: list[str]) -> None:
    """The draft page's scheme tests form: one fact given to the chosen cases."""
    page.select_option("#s-fact-case", cases)
    _fill(page, {"s.fact.name": fact, "s.fact.value": value})
    _save(page, "#tests button[type=submit]")
    assert "已保存：修改细则测试用例" in _main(page), _main(page)[:1500]


def _main(page) -> str:
    return page.inner_text("main")


def test_gumeilu_2022_to_2023_through_the_pages(walk_app, tmp_path):
    _browser_available()
    ctx = walk_app.extensions["scoring"]
    # three units' 2022 facts reviewed and scored officially (the impact preview's population)
    scored_2022 = {
        code: official(walk_app, code, "gumeilu-2022", facts)
        for name, facts in _example_facts().items()
        for code in [UNITS[name]]
    }
    with serve(walk_app) as site, chromium() as context, JobWorker(walk_app):
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())
        sign_in(page, site, "editor", PASSWORD)

        # 1. copy 2022 for 2023 on the rules page
        page.goto(f"{site}/admin/rules")
        page.select_option("#copy-version", version_of(GUMEILU))
        page.fill("#copy-year", "2023")
        _save(page, "#copy-form button[type=submit]")
        assert "/admin/rules/drafts/" in page.url, _main(page)[:800]
        draft_url = page.url
        draft_id = int(draft_url.rsplit("/", 1)[1])
        assert "gumeilu-2023" in _main(page) and "检查通过" in _main(page)

        # 2. clause 4: 5 points (r2 3), the threshold moved 10 → 12, its first case following;
        # "工作信息9篇" is left expecting 2 (it now gets 3): a failing case to be seen and fixed
        page.goto(f"{draft_url}/clauses/4")
        _fill(page, {
            "c.points": "5", "r.r2.points": "3",
            "r.r1.when": "work_info_reports >= 12", "r.r1.title": "质量工作信息全年不少于12篇",
            "t.1.fact.work_info_reports": "12", "t.1.name": "12篇与1篇，刚好达到",
            "t.1.points": "5",
        })  # fmt: skip
        _save(page)
        assert "已保存第4条" in _main(page), _main(page)[:1500]
        # clause 6: 6 → 5 points, its reviewer's bound and full-marks case with it
        page.goto(f"{draft_url}/clauses/6")
        _fill(page, {"c.points": "5", "f.brand_building_score.max": "5",
                     "t.1.fact.brand_building_score": "5", "t.1.points": "5"})  # fmt: skip
        _save(page)
        assert "已保存第6条" in _main(page), _main(page)[:1500]
        # the two categories' subtotals: 组织领导 14 → 15, 质量发展 26 → 25
        page.goto(draft_url)
        _fill(page, {"c.组织领导.points": "15", "c.质量发展.points": "25"})
        _save(page, "#categories button[type=submit]")
        assert "已保存：修改类别" in _main(page)

        # the scheme tests' full marks now need 12 reports and 5 for brand building
        numbers = {
            page.locator(f"#s-fact-case option:has-text('{name}')").get_attribute("value"): name
            for name in (
                "全部工作满分、无加分无扣分",
                "各加分项都到封顶、无扣分：加分项不设总计上限",
                "各加分项封顶且扣分项扣满",
                "有加分有扣分",
            )  # fmt: skip
        }
        full = [n for n, name in numbers.items() if name != "有加分有扣分"]
        _scheme_test_fact(page, "work_info_reports", "12", full)
        _scheme_test_fact(page, "brand_building_score", "5", full)

        # 3. the failing case, beside its case on the draft page and in the clause's test table
        failing = page.locator("[data-clause='4'] pre.failing[data-case='4 工作信息9篇']")
        assert "期望2分，实得3分" in failing.inner_text()
        page.goto(f"{draft_url}/clauses/4")
        row = _test_number(page, "工作信息9篇")
        assert "期望2分，实得3分" in page.inner_text(f"#cf-t-{row}")
        _fill(page, {f"t.{row}.points": "3"})
        _save(page)
        assert "已保存第4条" in _main(page)
        assert "期望" not in page.inner_text(f"#cf-t-{row}")  # the case passes now

        # 4. a cap: clause 13's deaths part capped at 4 (the clause at 7), its cases following
        page.goto(f"{draft_url}/clauses/13")
        _fill(page, {"r.r2.cap": "4", "c.points": "7"})
        for name, points in (("死亡2人扣3分", "-4"), ("死亡5人仍扣3分", "-4"),
                             ("两部分都到上限，扣6分", "-7"), ("两部分都超上限，仍扣6分", "-7")):  # fmt: skip
            _fill(page, {f"t.{_test_number(page, name)}.points": points})
        _save(page)
        assert "已保存第13条" in _main(page), _main(page)[:1500]

        # 5. clause 16 removed, its facts taken out of every scheme test (the page names them)
        page.goto(draft_url)
        _save(page, "tr[data-clause='16'] a:has-text('删除')")
        asked = _main(page)  # the confirmation says what will change before anything does
        assert "删除第16条" in asked and "scheme.yaml：有加分有扣分" in page.inner_text(
            "#remove-touched"
        )
        _save(page, "#confirm-remove")
        said = _main(page)
        assert "已删除第16条。它的事实已从这些测试用例中去掉" in said
        assert "scheme.yaml：有加分有扣分" in said

        # 6. clause 19 added with a test case
        _fill(page, {
            "n.id": "19", "n.title": "质量月活动", "n.points": "1",
            "n.fact": "quality_month_event", "n.label": "是否组织开展质量月活动",
            "n.ref": "六 加分项 序号19", "n.source": "19、组织开展质量月活动的加1分。",
            "n.test_name": "开展质量月活动", "n.test_value": "是", "n.test_points": "1",
        })  # fmt: skip
        page.select_option("#n-category", "加分项")
        page.select_option("#n-kind", "fixed")
        _save(page, "#add-clause button[type=submit]")
        assert page.locator("tr[data-clause='19']").count() == 1, _main(page)[:1500]

        # 7. the scheme tests follow: a failing one reported beside its case, then fixed
        case = page.locator("#tests pre.failing[data-case='有加分有扣分']")
        assert "✗ minhang-gumeilu/2023/scheme.yaml:" in case.inner_text()
        _scheme_test_fact(page, "quality_month_event", "是", full[1:])
        mixed = next(n for n, name in numbers.items() if name == "有加分有扣分")
        _fill(page, {f"s.{mixed}.total": "92.175", f"s.{full[2]}.total": "105"})
        _save(page, "#tests button[type=submit]")
        _save(page, "#check-button")
        assert "检查通过" in page.inner_text("#check"), page.inner_text("#check")[:2000]

        # 8. the comparison with 2022, in words
        _save(page, "#compare button[type=submit]")
        compared = page.inner_text("#compare-result")
        for sentence in (
            "第4条分值由4分改为5分",
            "第6条分值由6分改为5分",
            "第13条分值由6分改为7分",
        ):
            assert sentence in compared, compared[:3000]
        assert "第16条" in compared and "第19条" in compared

        # 9. the impact preview over the three reviewed units
        page.goto(draft_url)
        _save(page, "#impact-link")
        _save(page, "#draft-impact-form button[type=submit]")
        for _ in range(60):  # the result page refreshes itself until the job has ended
            if "刷新" not in page.inner_text("#impact-progress"):
                break
            page.wait_for_timeout(1000)
            page.reload()
        progress = page.inner_text("#impact-progress")
        assert "2/3 个单位已比较" in progress, progress
        units = page.inner_text("#impact-units")
        assert "大场镇" in units and "宝山工业园区" in units, units
        assert "80.675 → 79.175" in units  # 大场镇: clause 4 loses 1, clause 16's 0.5 goes
        # 顾村镇's reviewed 6 for brand building is beyond 2023's 5 points: named, not scored
        assert "顾村镇：已评审的事实不符合版本" in progress and "超出范围" in progress
        assert "是否组织开展质量月活动" in page.inner_text("#impact-missing")  # missing, not 0

        # 10. proposed with a note
        page.goto(draft_url)
        page.fill("#note", "2023年度细则：4、6、13条调整，删去16条，新增19条")
        _save(page, "#propose button[type=submit]")
        assert page.locator("#state").get_attribute("data-state") == "proposed"

        # 11. the zip downloaded from the draft's page
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "gumeilu-2023.zip"
        download.value.save_as(saved)
        sign_out(page)

        # 12. a second admin approves it for 2023
        sign_in(page, site, "admin2", PASSWORD)
        page.goto(draft_url)
        page.fill("#effective_year", "2023")
        _save(page, "#approve button[type=submit]")
        assert page.locator("#state").get_attribute("data-state") == "published", _main(page)[:800]
        assert "自2023年度起生效" in _main(page)

        # 13. a round of 2023 opened on the rounds page takes the 2023 version
        page.goto(f"{site}/admin/rounds")
        page.select_option("#scheme", "gumeilu-2023")
        page.fill("#year", "2023")
        for name, when in (
            ("self_deadline", "2099-01-10T17:00"),
            ("review_deadline", "2099-02-10T17:00"),
            ("publication_start", "2099-02-11T09:00"),
            ("appeal_deadline", "2099-02-18T17:00"),
            ("publication_end", "2099-02-20T17:00"),
        ):
            page.fill(f"#d-{name}", when)
        _save(page, "#open-round button[type=submit]")
        assert "/admin/rounds/" in page.url, _main(page)[:800]

        # 14. a 2022 score replayed in the pages (复核): reproduced under its own 2022 version
        row = scored_2022["gucun"]
        page.goto(f"{site}/admin/units/gucun/schemes/gumeilu-2022/score?id={row.id}")
        _save(page, "#replay")
        assert page.locator("#replay-result").inner_text() == "已复现", _main(page)[:800]
        assert version_of(GUMEILU)[:12] in _main(page)
        page.close()

    # the zip passes scoring check and scoring test from the command line
    with zipfile.ZipFile(saved) as archive:
        archive.extractall(tmp_path / "unzipped")
    for command in ("check", "test"):
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", command, "--rules", str(tmp_path / "unzipped")],
            capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    # the 2023 version scores a new submission: a round of 2023 pins it
    admin = actor(walk_app, "admin")
    draft = releases.read_draft(ctx, admin, draft_id)
    assert ctx.registry.get("gumeilu-2023").version == draft.version
    opened = rounds.list_rounds(ctx, admin, "gumeilu-2023")[0]
    assert opened.year == 2023 and opened.rules_version == draft.version
    facts = dict(_example_facts()["示例街道甲"], quality_month_event=True,
                 brand_building_score=Decimal(5))  # fmt: skip
    for gone in ("special_reports", "media_reports"):
        facts.pop(gone, None)
    score = official(walk_app, "gucun", "gumeilu-2023", facts)
    assert score.rules_version == draft.version
    clauses = {c["id"] for c in score.trace["clauses"]}
    assert "19" in clauses and "16" not in clauses
    what_if = ops.evaluate(ctx, admin, "gumeilu-2023", facts)
    assert Decimal(str(score.total)) == what_if.total

    # and every 2022 score still replays exactly under its own version
    for code, row in scored_2022.items():
        again = audit.replay_score(ctx, admin, row.id)
        assert again["reproduced"], (code, again)
        assert again["rules_version"] == version_of(GUMEILU)
