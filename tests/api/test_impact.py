"""The impact preview of a rule change (service/impact.py), on SQLite and on PostgreSQL: three
units reviewed under the fixture scheme, a band edge moved and reloaded, the job ``rules.impact``
run by hand, and each unit's totals, ranks, grades and changed clauses before → after asserted
exactly, with a fact the new version reads and a unit lacks listed as missing (never zero); the
workbook's cells; and the errors."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from service import jobs

from ..unit.test_scoring import FULL
from .shapes import assert_error, check_every_response
from .test_rules_api import SCHEME, edit

BAND_MOVED = "低于目标值的百分点"


def _move_band(folder) -> None:
    """(1, 3] becomes (1, 4]: a unit 3.5 points below its target loses 3 points, not 5."""
    clause = folder / "clauses/01-rate.yaml"
    edit(clause, '"(1, 3]", points: -3', '"(1, 4]", points: -3')
    edit(clause, '"(3, inf)"', '"(4, inf)"')
    # the clause's own case at 3.01 moves with the band (a reload runs the cases)
    edit(
        clause,
        "{name: 差3.01, facts: {target: 95, actual: 91.99}, points: 0,",
        "{name: 差3.01, facts: {target: 95, actual: 91.99}, points: 2,",
    )


def _reviewed_and_changed(api) -> tuple[str, str]:
    before = api.ctx.registry.get(SCHEME).version
    api.official("gucun", SCHEME, {**FULL, "actual": 91.5})  # 3.5 below: -5 → -3
    api.official("dachang", SCHEME, FULL)  # at target: no change
    lacking = {k: v for k, v in FULL.items() if k != "bureau_score"}
    api.official("bsip", SCHEME, {**lacking, "actual": 93})  # 2 below: -3 under both
    _move_band(api.rules_dir / SCHEME)
    assert api.post("/api/rules/reload", "editor").status_code == 200
    after = api.ctx.registry.get(SCHEME).version
    assert after != before
    return before, after


def test_impact_of_a_moved_band(api_on_copy):
    api = api_on_copy
    check_every_response(api)
    before, after = _reviewed_and_changed(api)

    started = api.post("/api/rules/impact", "editor", json={"from": before, "to": after})
    assert started.status_code == 201, started.json
    job = started.json
    assert (job["kind"], job["state"], job["total"]) == ("rules.impact", "queued", 3)
    assert job["params"]["from"] == before and job["params"]["to"] == after

    # the year's round, named: the same three units (the test app opens its rounds for 2026)
    by_year = api.post(
        "/api/rules/impact", "admin", json={"from": before, "to": after, "year": 2026}
    )
    assert by_year.status_code == 201, by_year.json
    assert (by_year.json["params"]["year"], by_year.json["total"]) == (2026, 3)
    assert by_year.json["params"]["round"] == job["params"]["round"] == api.round_of(SCHEME)

    waiting = api.get(f"/api/rules/impact/{job['id']}", "editor")
    assert waiting.status_code == 200 and waiting.json["done"] == 0
    assert waiting.json["finished"] is False and waiting.json["units"] == []

    assert jobs.Worker(api.ctx).run_once() is True
    progress = api.get(f"/api/jobs/{job['id']}", "admin").json
    assert (progress["state"], progress["done"], progress["percent"]) == ("done", 3, 100)
    assert progress["result"] == {"done": 3, "failed": 0, "units": 3, "totals_changed": 1}

    got = api.get(f"/api/rules/impact/{job['id']}", "editor")
    assert got.status_code == 200, got.json
    result = got.json
    assert result["finished"] is True and (result["total"], result["done"]) == (3, 3)
    assert result["from"]["version"] == before and result["to"]["version"] == after
    assert result["changed"] == 1
    rows = {
        u["unit_code"]: (
            u["total_before"], u["total_after"], u["change"],
            u["rank_before"], u["rank_after"], u["grade_before"], u["grade_after"],
        )
        for u in result["units"]
    }  # fmt: skip
    assert rows == {
        "dachang": ("20", "20", "0", 1, 1, "优秀", "优秀"),
        "gucun": ("15", "17", "2", 2, 2, "合格", "合格"),
        "bsip": ("13", "13", "0", 3, 3, "合格", "合格"),
    }
    assert [u["unit_code"] for u in result["units"]] == ["dachang", "gucun", "bsip"]
    by_code = {u["unit_code"]: u for u in result["units"]}
    [clause] = by_code["gucun"]["clauses"]
    assert (clause["clause"], clause["title"]) == ("1", "合格率")
    assert (clause["before"], clause["after"], clause["change"]) == ("0", "2", "2")
    assert BAND_MOVED in clause["why_before"] and "3.5" in clause["why_before"]
    assert clause["why_before"] != clause["why_after"]
    assert by_code["dachang"]["clauses"] == [] and by_code["bsip"]["clauses"] == []
    # the fact the new version reads and bsip's facts lack: listed, never taken as zero
    assert by_code["bsip"]["missing"] == [{"fact": "bureau_score", "label": "区局考核分数"}]
    assert by_code["gucun"]["missing"] == [] and by_code["dachang"]["missing"] == []

    book = api.get(f"/api/rules/impact/{job['id']}/workbook", "admin")
    assert book.status_code == 200
    assert book.headers["Content-Disposition"] == f'attachment; filename="impact-{job["id"]}.xlsx"'
    wb = load_workbook(io.BytesIO(book.data))
    assert wb.sheetnames == ["单位", "条款变化", "事实对应"]
    units = [[c.value for c in row] for row in wb["单位"].iter_rows()]
    assert units[0][:9] == [
        "单位编号", "单位", "原总分", "新总分", "变化", "原名次", "新名次", "原等级", "新等级",
    ]  # fmt: skip
    assert units[1:] == [
        ["dachang", "大场镇", 20, 20, 0, 1, 1, "优秀", "优秀", None, None, None],
        ["gucun", "顾村镇", 15, 17, 2, 2, 2, "合格", "合格", None, None, None],
        ["bsip", "宝山工业园区", 13, 13, 0, 3, 3, "合格", "合格", "区局考核分数", None, None],
    ]
    changes = [[c.value for c in row] for row in wb["条款变化"].iter_rows()]
    assert len(changes) == 2
    assert changes[1][:7] == ["gucun", "顾村镇", "1", "合格率", 0, 2, 2]
    assert changes[1][7] == clause["why_before"] and changes[1][8] == clause["why_after"]


def test_impact_errors_and_access(api_on_copy):
    api = api_on_copy
    check_every_response(api)
    served = api.ctx.registry.get(SCHEME).version
    zeros = "0" * 64
    assert_error(api.post("/api/rules/impact", json={"from": served, "to": served}), 401)
    for role in ("submitter", "reviewer", "auditor"):
        assert_error(api.post("/api/rules/impact", role, json={"from": served, "to": served}), 403)
    assert_error(
        api.post("/api/rules/impact", "editor", json={"from": served, "to": zeros}),
        422,
        "unknown_rules_version",
        fields=["params.to"],
    )
    assert_error(
        api.post("/api/rules/impact", "editor", json={"from": "abc", "to": served}),
        422,
        fields=["from"],
    )
    # nobody reviewed yet: nothing to compare, and nothing is queued
    assert_error(
        api.post("/api/rules/impact", "editor", json={"from": served, "to": served}),
        409,
        "nothing_to_compare",
    )
    assert_error(
        api.post("/api/rules/impact", "editor", json={"from": served, "to": served, "year": 2001}),
        409,
        "no_round",
    )
    assert api.get("/api/jobs", "admin").json == []
    assert_error(api.get("/api/rules/impact/999999", "editor"), 404, "unknown_job")
    assert_error(api.get("/api/rules/impact/1", "auditor"), 403)


def test_impact_in_the_admin_pages(api_on_copy):
    """The rules page starts the preview (an editor: no job list needed), the result page shows
    each unit before → after with both explanations one click away, and links the workbook; the
    job page of an impact preview links both."""
    from ..admin.conftest import csrf_token, sign_in

    api = api_on_copy
    before, after = _reviewed_and_changed(api)
    editor = api.app.test_client()
    assert sign_in(editor, "editor").status_code == 302
    page = editor.get("/admin/rules")
    assert 'id="impact-form"' in page.text
    started = editor.post(
        "/admin/rules/impact",
        data={"from": before, "to": after, "year": "", "csrf_token": csrf_token(page.text)},
    )
    assert started.status_code == 302
    where = started.headers["Location"]
    assert where.startswith("/admin/rules/impact/")
    job_id = int(where.rsplit("/", 1)[1])
    waiting = editor.get(where)
    assert waiting.status_code == 200 and "0/3" in waiting.text
    assert '<meta http-equiv="refresh"' in waiting.text

    jobs.Worker(api.ctx).run_once()
    shown = editor.get(where)
    text = shown.text
    assert "3/3" in text and '<meta http-equiv="refresh"' not in text
    assert "15 → <strong>17</strong>" in text and "1 合格率：0 → 2" in text
    assert "区局考核分数" in text
    assert f'href="/admin/rules/impact/{job_id}.xlsx"' in text
    book = editor.get(f"/admin/rules/impact/{job_id}.xlsx")
    assert book.status_code == 200
    assert load_workbook(io.BytesIO(book.data))["单位"]["B3"].value == "顾村镇"

    admin = api.app.test_client()
    sign_in(admin, "admin")
    job_page = admin.get(f"/admin/jobs/{job_id}").text
    assert 'id="impact-link"' in job_page and 'id="impact-xlsx"' in job_page
    assert editor.get(f"/admin/jobs/{job_id}").status_code == 403  # the job list is not an editor's
    auditor = api.app.test_client()
    sign_in(auditor, "auditor")
    assert auditor.get(where).status_code == 403


def test_a_clause_removed_and_one_added_reading_a_new_fact():
    """Without a database (``compare_units`` / ``rank_both``, what ``scoring impact`` runs): the
    awards clause removed, a complaints clause added that reads a fact last year's facts lack;
    the removed clause's points go, the new clause is listed with its fact missing, never zero;
    a unit lacking a grade veto's fact has its grade 待定 under both."""
    from service.engine.oracle import OracleMatcher
    from service.impact import compare_units, rank_both, render_text
    from service.rulefiles.loader import load_files

    from ..conftest import MINIMAL

    texts = {
        p.relative_to(MINIMAL).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(MINIMAL.rglob("*.yaml"))
    }
    old = load_files(texts, "old")
    changed = {k: v.replace(" awards: 0,", "") for k, v in texts.items() if "06-awards" not in k}
    changed["clauses/08-complaints.yaml"] = (
        'id: "8"\ntitle: 投诉\ncategory: C\npoints: 2\n'
        "source: {document: test, text: 每起有效投诉扣1分，最高2分}\n"
        "facts:\n  - {name: complaints, type: integer, label: 有效投诉起数, min: 0, max: 100}\n"
        "rules:\n  - {id: r1, kind: per_unit, count: complaints, each: -1, cap: 2}\n"
        "tests:\n  - {name: 3起扣2, facts: {complaints: 3}, points: -2, fired: [r1]}\n"
    )
    bonus = "  - {id: B, title: 加分项, kind: bonus, cap: 2}\n"  # no clause left in it
    assert bonus in changed["scheme.yaml"]
    changed["scheme.yaml"] = changed["scheme.yaml"].replace(bonus, "")
    new = load_files(changed, "new")
    units = {
        "甲街道": {**FULL, "awards": 2},
        "乙街道": {k: v for k, v in FULL.items() if k != "major_incident"},
    }
    result = rank_both(old, new, compare_units(old, new, units, OracleMatcher(), "oracle"))
    first, second = result["units"]
    assert (first["unit"], first["total_before"], first["total_after"]) == ("甲街道", "22", "20")
    assert (first["rank_before"], first["rank_after"]) == (1, 1)
    assert [(c["clause"], c["before"], c["after"]) for c in first["clauses"]] == [
        ("6", "2", None),
        ("8", None, "0"),
    ]
    assert first["clauses"][0]["why_after"] == f"版本 {new.version[:8]} 没有这一条款"
    assert first["missing"] == [{"fact": "complaints", "label": "有效投诉起数"}]
    assert (second["unit"], second["total_before"], second["total_after"]) == ("乙街道", "16", "16")
    assert (second["grade_before"], second["grade_pending_before"]) == (None, True)
    assert [m["fact"] for m in second["missing"]] == ["complaints", "major_incident"]
    # the new clause's points are 0 for now because its fact is missing, and it says so
    assert second["clauses"][1]["why_after"] == "缺少事实：有效投诉起数（缺失不等于0），本项暂计0分"
    text = render_text(result)
    assert "甲街道：总分 22 → 20（-2），名次 1 → 1，等级 优秀 → 优秀" in text
    assert "  · 第6条 获奖：2 → 无此条" in text and "  · 第8条 投诉：无此条 → 0" in text
    assert "乙街道：总分 16 → 16（+0），名次 2 → 2，等级 待定 → 待定" in text
