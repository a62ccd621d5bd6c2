"""The rules page's comparison of two versions: a GET form, the changes grouped by clause."""

from __future__ import annotations

import html
import re
import shutil

from ..conftest import MINIMAL
from .conftest import csrf_token, make_app, sign_in


def test_rules_page_compares_two_versions(tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    app = make_app(tmp_path, engine, rules)
    try:
        client = app.test_client()
        sign_in(client, "editor")
        old = app.extensions["scoring"].registry.get("minimal").version
        clause = rules / "minimal" / "clauses" / "01-rate.yaml"
        text = clause.read_text(encoding="utf-8")
        # the band moved, and the clause's own case at 3.01 with it (a reload runs the cases)
        clause.write_text(
            text.replace('"(1, 3]", points: -3', '"(1, 4]", points: -3')
            .replace('"(3, inf)"', '"(4, inf)"')
            .replace(
                "{name: 差3.01, facts: {target: 95, actual: 91.99}, points: 0,",
                "{name: 差3.01, facts: {target: 95, actual: 91.99}, points: 2,",
            ),
            encoding="utf-8",
        )
        page = client.get("/admin/rules")
        # the form offers every archived version, with no script needed
        assert re.search(r'<form method="get" action="/admin/rules/compare#compare"', page.text)
        assert f'<option value="{old}"' in page.text
        r = client.post("/admin/rules/reload", data={"csrf_token": csrf_token(page.text)})
        assert r.status_code == 200, r.text
        new = app.extensions["scoring"].registry.get("minimal").version

        shown = client.get(f"/admin/rules/compare?from={old}&to={new}")
        assert shown.status_code == 200
        text = html.unescape(shown.text)
        assert "共 2 处改动" in text
        assert "<h3>第1条 合格率</h3>" in text
        assert '<li data-kind="band_high">第1条第3档上限由3改为4</li>' in text
        assert '<li data-kind="band_low">第1条第4档下限由3改为4</li>' in text
        assert f'<option value="{old}" selected>' in shown.text  # the choice stays made

        same = client.get(f"/admin/rules/compare?from={new}&to={new}")
        assert "两个版本没有差别" in same.text
        missing = client.get(f"/admin/rules/compare?from={old}&to={'0' * 64}")
        assert missing.status_code == 404 and "没有版本为" in missing.text
        assert client.get("/admin/rules/compare?from=x").status_code == 422

        other = app.test_client()
        sign_in(other, "reviewer")
        assert other.get(f"/admin/rules/compare?from={old}&to={new}").status_code == 403
    finally:
        app.extensions["scoring"].db.engine.dispose()
