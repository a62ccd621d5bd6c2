"""The rules page says when the rules directory and the product differ (issue 10)."""

from __future__ import annotations

import html
import shutil

from service import releases
from service.rulefiles import edit

from ..conftest import MINIMAL
from .conftest import make_app, sign_in
from .test_pages import _actor

NOTE = "磁盘上的规则与产品中的不同"


def test_the_rules_page_names_the_schemes_whose_disk_copy_differs(tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    app = make_app(tmp_path, engine, rules)
    ctx = app.extensions["scoring"]
    try:
        client = app.test_client()
        sign_in(client, "auditor")
        assert NOTE not in client.get("/admin/rules").text  # disk and product agree
        editor, admin = _actor(app, "editor"), _actor(app, "admin")
        draft = releases.draft_from_disk(ctx, editor, "minimal")
        draft = releases.edit(
            ctx,
            editor,
            draft.id,
            draft.lock,
            lambda files: edit.set_clause_field(files, "1", "title", "产品合格率"),
            "改标题",
        )
        draft = releases.propose(ctx, editor, draft.id, draft.lock, "")
        releases.approve(ctx, admin, draft.id, draft.lock, 2026)
        page = html.unescape(client.get("/admin/rules").text)
        assert f"{NOTE}：测试用细则（minimal" in page
        assert "可以导入为草案" in page
    finally:
        ctx.db.engine.dispose()
