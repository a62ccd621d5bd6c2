"""The ranking endpoint: a unit whose grade-veto fact is missing is not awarded 优秀 (issue 9)."""

from __future__ import annotations

import html
import io

from openpyxl import load_workbook

from .test_audit import _browser
from .test_endpoints import B1, CODE_OF, DEMO_UNITS, EXAMPLE, post_json, web  # noqa: F401


def test_ranking_marks_excellence_pending_when_the_incident_fact_is_missing(web):  # noqa: F811
    api = web
    seeded = {u["code"] for u in api.get("/api/units", "admin").json}
    for code, name, kind in DEMO_UNITS:
        if code not in seeded:
            made = api.post(
                "/api/units",
                "admin",
                json={"code": code, "name": name, "kind": kind, "district": "宝山区"},
            )
            assert made.status_code == 201, made.json
    for name, facts in EXAMPLE.items():
        if name == "罗店镇":
            facts = {k: v for k, v in facts.items() if k != "major_quality_incident"}
        api.official(CODE_OF[name], B1, facts)

    response = api.get(f"/api/schemes/{B1}/ranking", "editor")
    assert response.status_code == 200, response.json
    entries = {e["unit"]: e for e in response.json["entries"]}
    luodian = entries["罗店镇"]
    assert luodian["rank"] <= 3 and luodian["grade"] == "A"
    assert luodian["distinctions"] == [] and luodian["pending_distinctions"] == ["优秀"]
    assert luodian["grade_pending"] is False and luodian["complete"] is False
    assert "待定" in luodian["explanation"]
    assert any("重大质量安全事故" in why for why in luodian["pending"])
    # the distinction is not passed down, and the other two of the top 3 are unchanged
    assert sum(1 for e in entries.values() if e["distinctions"]) == 1
    assert all(e["pending_distinctions"] == [] for n, e in entries.items() if n != "罗店镇")

    # the page and the workbook say the same
    client = _browser(api, "editor")
    page = client.get(f"/admin/schemes/{B1}/ranking")
    assert page.status_code == 200 and "data-grade" in page.text
    assert ">A（优秀待定）</span>" in page.text
    book = client.get(f"/admin/schemes/{B1}/ranking.xlsx")
    ws = load_workbook(io.BytesIO(book.data)).worksheets[0]
    header = [c.value for c in ws[4]]  # category columns stand between 总分 and 名次
    rows = {r[1]: dict(zip(header, r)) for r in ws.iter_rows(min_row=5, values_only=True) if r[1]}
    assert rows["罗店镇"]["等级"] == "A（优秀待定）"
    assert "待定" in rows["罗店镇"]["说明"]
    # and the unit's score page: 优秀待定, not 优秀
    shown = _browser(api, "reviewer").get(f"/admin/units/{CODE_OF['罗店镇']}/schemes/{B1}/score")
    assert shown.status_code == 200, shown.status_code
    assert ">A（优秀待定）</div>" in html.unescape(shown.text)
