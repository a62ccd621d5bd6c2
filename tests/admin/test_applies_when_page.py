"""The facts form does not ask for a fact that does not apply (applies_when): it marks it 不适用."""

from __future__ import annotations

import html
import shutil

from ..conftest import FIXTURES
from .conftest import csrf_token, make_app, sign_in


def test_the_form_marks_the_chair_not_applicable_without_a_committee(tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "applies", rules / "applies")
    app = make_app(tmp_path, engine, rules)
    try:
        client = app.test_client()
        sign_in(client, "reviewer")
        path = "/admin/units/gucun/schemes/applies/facts"
        page = client.get(path)
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert "仅当“成立质量工作委员会”成立时填写" in text and "不适用</span>" not in text
        saved = client.post(
            path,
            data={
                "csrf_token": csrf_token(page.text),
                "action": "draft",
                "f.committee_established": "false",
            },
            follow_redirects=True,
        )
        assert saved.status_code == 200
        text = html.unescape(client.get(path).text)
        assert "不适用</span>" in text
        assert "本项不适用，不必填写" in text
    finally:
        app.extensions["scoring"].db.engine.dispose()


def test_the_api_lists_when_a_fact_applies(tmp_path, engine):
    from ..apps import make_app as build_app

    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "applies", rules / "applies")
    app, tokens = build_app(tmp_path, f"sqlite:///{tmp_path / 'scoring.db'}", engine, rules)
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {tokens['editor']}"}
        detail = client.get("/api/schemes/applies", headers=auth)
        assert detail.status_code == 200, detail.json
        facts = {f["name"]: f for f in detail.json["facts"]}
        assert facts["chair_is_principal"]["applies_when"] == "committee_established"
        assert facts["committee_established"]["applies_when"] is None
    finally:
        app.extensions["scoring"].db.engine.dispose()
